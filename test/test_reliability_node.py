"""Fault injection into the live node (real rclpy, loopback DDS): one node process serves every case.

Each case publishes one bad (or unusual) set from this process, then checks that the node is alive,
counted the set in ``/diagnostics`` under the expected kind, logged the expected line, and still
publishes depth for the next good set.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")

from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField  # noqa: E402

from lumde_depth.ros import convert  # noqa: E402

import node_harness as harness  # noqa: E402
from conftest import next_domain_id  # noqa: E402

pytestmark = pytest.mark.ros
INPUT_SIZE = harness.STUDENT_INPUT_SIZE
HEIGHT, WIDTH = 96, 320
FRAME = harness.synthetic_frame(HEIGHT, WIDTH, 20_000)
BURST = 200


def live_node(tmp: Path, params: dict[str, object], clock: bool = False) -> harness.LiveNode:
    """The node on a fresh domain; our publishers keep a whole burst (a full reliable history would overwrite)."""
    return harness.LiveNode(tmp, params, next_domain_id(), FRAME, history=BURST, clock=clock)


# --------------------------------------------------------------------------------------------------
# messages

def header(frame_id: str = "camera") -> object:
    return convert.make_header(0, frame_id)


def good_set(points: np.ndarray | None = None) -> tuple:
    return harness.frame_messages(FRAME if points is None else {**FRAME, "points": points})


def image_msg(encoding: str, step_delta: int = 0, cut: int = 0) -> Image:
    rgb = FRAME["rgb"]
    pixels = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "mono8": rgb[..., 0],
              "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
              "bgra8": np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 255, np.uint8)]),
              "bayer_rggb8": rgb[..., 0], "mono16": rgb[..., 0].astype(np.uint16) * 256,
              "16UC3": rgb.astype(np.uint16), "32FC1": rgb[..., 0].astype(np.float32)}[encoding]
    pixels = np.ascontiguousarray(pixels)
    msg = Image(header=header(), height=HEIGHT, width=WIDTH, encoding=encoding, is_bigendian=0,
                step=pixels.strides[0] + step_delta, data=pixels.tobytes())
    if cut:
        msg.data = msg.data[:-cut]
    return msg


def raw_cloud(data: bytes, fields: list[tuple[str, int, int]], point_step: int, width: int, height: int = 1,
              row_step: int | None = None) -> PointCloud2:
    return PointCloud2(header=header("lidar"), height=height, width=width,
                       fields=[PointField(name=n, offset=o, datatype=t, count=1) for n, o, t in fields],
                       is_bigendian=False, point_step=point_step,
                       row_step=point_step * width if row_step is None else row_step, data=data, is_dense=False)


def xyz_fields(offset: int = 0, datatype: int = 7, size: int = 4) -> list[tuple[str, int, int]]:
    return [(name, offset + i * size, datatype) for i, name in enumerate("xyz")]


def packed(points: np.ndarray, dtype: np.dtype) -> bytes:
    out = np.zeros(len(points), dtype)
    for i, name in enumerate("xyz"):
        out[name] = points[:, i]
    return out.tobytes()


def odd_step_cloud() -> PointCloud2:
    """13-byte points: x, y, z float32 at unaligned offsets 1, 5, 9 after a 1-byte ring number."""
    dtype = np.dtype({"names": ["ring", "x", "y", "z"], "formats": ["u1", "<f4", "<f4", "<f4"],
                      "offsets": [0, 1, 5, 9], "itemsize": 13})
    return raw_cloud(packed(FRAME["points"], dtype), [("ring", 0, 2)] + xyz_fields(1), 13, len(FRAME["points"]))


def organized_cloud() -> PointCloud2:
    """64 rows (like an HDL-64E scan) with padded rows (row_step > width * point_step)."""
    points = FRAME["points"][: 64 * 300]
    rows = np.zeros((64, 320 * 16), np.uint8)
    rows[:, : 300 * 16] = np.ascontiguousarray(points).view(np.uint8).reshape(64, 300 * 16)
    return raw_cloud(rows.tobytes(), [(n, 4 * i, 7) for i, n in enumerate(("x", "y", "z", "intensity"))],
                     16, 300, height=64, row_step=320 * 16)


def million_points(n: int = 2_000_000) -> np.ndarray:
    return np.tile(FRAME["points"], (n // len(FRAME["points"]) + 1, 1))[:n]


# --------------------------------------------------------------------------------------------------
# the cases: (name, what to send, outcome = "published" or a bad-frame kind, expected log text)

@dataclass
class Case:
    name: str
    build: Callable[[], tuple]          # (image, info, cloud) ; None = not sent
    outcome: str                        # "published", or the diagnostics kind it is counted under
    log: str = ""


def _with(image=None, info=None, cloud=None) -> Callable[[], tuple]:
    def build() -> tuple:
        g = good_set()
        return (image() if image else g[0], info() if info else g[1], cloud() if cloud else g[2])
    return build


def _info(K: np.ndarray | None = None, P: np.ndarray | None = None, width: int = WIDTH) -> Callable[[], CameraInfo]:
    return lambda: convert.make_camera_info(header(), width, HEIGHT, K=K, P=P)


NAN_K = np.array([[np.nan, 0, 160], [0, np.nan, 48], [0, 0, 1.0]])
NAN_CX_K = np.array([[200.0, 0, np.nan], [0, 200.0, 48], [0, 0, 1.0]])
CASES = [
    *[Case(f"image_{enc}", _with(image=lambda e=enc: image_msg(e)), "published")
      for enc in ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")],
    *[Case(f"image_{enc}", _with(image=lambda e=enc: image_msg(e)), "bad_image",
           f"[bad_image] image encoding '{enc}' is not accepted on the camera input: publish rgb8, bgr8, rgba8, bgra8 "
           "or mono8") for enc in ("bayer_rggb8", "mono16", "16UC3", "32FC1")],
    Case("image_step_too_small", _with(image=lambda: image_msg("rgb8", step_delta=-3)), "bad_image",
         "[bad_image] image step 957 is smaller than width*bytes_per_pixel = 960"),
    Case("image_truncated", _with(image=lambda: image_msg("rgb8", cut=100)), "bad_image",
         "the message is truncated"),
    Case("cloud_empty", _with(cloud=lambda: convert.xyzi_to_cloud(np.zeros((0, 4), np.float32), header("lidar"))),
         "empty_cloud", "[empty_cloud] the LiDAR cloud has no finite points"),
    Case("cloud_all_nan_inf", _with(cloud=lambda: convert.xyzi_to_cloud(
        np.where(np.arange(4000)[:, None] % 2, np.nan, np.inf).repeat(4, 1).astype(np.float32), header("lidar"))),
         "empty_cloud", "[empty_cloud]"),
    Case("cloud_missing_z", _with(cloud=lambda: raw_cloud(
        FRAME["points"][:, :2].tobytes(), xyz_fields()[:2], 8, len(FRAME["points"]))),
         "bad_cloud", "[bad_cloud] cannot read the cloud: cloud has no field(s) ['z']"),
    Case("cloud_float64_xyz", _with(cloud=lambda: raw_cloud(
        packed(FRAME["points"], np.dtype([("x", "<f8"), ("y", "<f8"), ("z", "<f8")])), xyz_fields(0, 8, 8), 24,
        len(FRAME["points"]))), "published"),
    Case("cloud_odd_point_step_13", _with(cloud=odd_step_cloud), "published"),
    Case("cloud_point_step_too_small", _with(cloud=lambda: raw_cloud(
        FRAME["points"].tobytes(), xyz_fields(), 8, len(FRAME["points"]))),
         "bad_cloud", "do not fit point_step 8"),
    Case("cloud_row_step_too_small", _with(cloud=lambda: raw_cloud(
        FRAME["points"].tobytes(), xyz_fields(), 16, len(FRAME["points"]), row_step=16)),
         "bad_cloud", "is smaller than width*point_step"),
    Case("cloud_truncated", _with(cloud=lambda: raw_cloud(
        FRAME["points"].tobytes()[:-160], xyz_fields(), 16, len(FRAME["points"]))),
         "bad_cloud", "the message is truncated"),
    Case("cloud_organized_padded_rows", _with(cloud=organized_cloud), "published"),
    Case("cloud_2_million_points", _with(cloud=lambda: convert.xyzi_to_cloud(million_points(), header("lidar"))),
         "published"),
    Case("cloud_in_base_link", _with(cloud=lambda: convert.xyzi_to_cloud(FRAME["points"], header("base_link"))),
         "wrong_cloud_frame", "[wrong_cloud_frame] cloud frame_id 'base_link' is not 'lidar', the frame T_cam_lidar maps from"),
    Case("cloud_in_camera_frame", _with(cloud=lambda: convert.xyzi_to_cloud(FRAME["points"], header("camera"))),
         "wrong_cloud_frame", "[wrong_cloud_frame] cloud frame_id 'camera' is not 'lidar'"),
    Case("camera_info_plumb_bob_raw", _with(info=lambda: convert.make_camera_info(
        header(), WIDTH, HEIGHT, P=FRAME["P"], K=FRAME["P"][:, :3], D=np.array([-0.2, 0.05, 0.001, -0.001, 0.0]))),
         "published"),
    Case("camera_info_distortion_model_unknown", _with(info=lambda: convert.make_camera_info(
        header(), WIDTH, HEIGHT, P=FRAME["P"], K=FRAME["P"][:, :3], D=np.array([0.1, 0.0, 0.0, 0.0]),
        distortion_model="fisheye")), "bad_camera_info",
         "[bad_camera_info] camera_info: the lens distortion D has 4 coefficients (1 nonzero) but distortion_model is "
         "'fisheye': set it to one of plumb_bob, rational_polynomial, equidistant"),
    Case("camera_info_zero", _with(info=_info(K=np.zeros((3, 3)))), "bad_camera_info",
         "[bad_camera_info] camera info is uncalibrated: both K and P are all zero"),
    Case("camera_info_nan", _with(info=_info(K=NAN_K)), "bad_camera_info",
         "[bad_camera_info] camera_info: camera matrix has a zero or non-finite focal length"),
    Case("camera_info_nan_cx", _with(info=_info(K=NAN_CX_K)), "bad_camera_info",
         "[bad_camera_info] camera_info: camera matrix has a non-finite principal point: cx=nan"),
    Case("camera_info_size_differs", _with(info=_info(P=FRAME["P"], width=WIDTH * 2)), "size_mismatch",
         "[size_mismatch] camera_info is 640x96 but the image is 320x96"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> harness.LiveNode:
    tmp = tmp_path_factory.mktemp("live")
    params = {"model": str(harness.save_student(tmp / "student.pt")), "backend": "torch", "device": "cpu",
              "T_cam_lidar": FRAME["T"].ravel(), "publish_colored": False, "diagnostics_period": 0.2,
              "log_throttle": 0.3, "threads": 1, "qos_depth": BURST}
    node = live_node(tmp, params)
    try:
        first = node.send_good()
        node.wait(lambda: first in node.published(), 120.0, "the first good set was not published")
        yield node
    finally:
        node.close()


def assert_recovers(live: harness.LiveNode) -> None:
    """The node is alive and publishes depth for the next good set; every set is accounted for."""
    stamp = live.send_good()
    live.wait(lambda: stamp in live.published(), 60.0, "the next good set was not published")
    live.settle()
    assert harness.unaccounted(live.diag()) == []
    assert live.proc.poll() is None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(live: harness.LiveNode, case: Case) -> None:
    before = live.count(f"bad frames: {case.outcome}")
    time.sleep(0.35)   # past log_throttle, so this case's first warning is logged
    stamp = live.send(*case.build())
    if case.outcome == "published":
        live.wait(lambda: stamp in live.published(), 60.0, f"{case.name}: not published")
        depth = convert.image_to_numpy(next(m for m in live.listener.got["depth/image"]
                                            if convert.stamp_to_ns(m.header.stamp) == stamp))
        assert depth.shape == (HEIGHT, WIDTH) and np.isfinite(depth).mean() > 0.5
    else:
        live.wait(lambda: live.count(f"bad frames: {case.outcome}") > before, 60.0,
                  f"{case.name}: not counted as {case.outcome}")
        assert stamp not in live.published()
        assert case.log in live.log.read_text()
    assert_recovers(live)


def test_no_camera_info_is_reported_and_recovers(live: harness.LiveNode) -> None:
    """Images and clouds without any camera_info: nothing is synchronized, diagnostics and the log say
    which input is missing; the next complete set is processed."""
    live.settle()
    synced = live.count("synchronized sets")
    reported = False
    for _ in range(40):   # images and clouds for 6 s: camera_info silent longer than node.INPUT_SILENT_S
        image, _info, cloud = good_set()
        live.send(image, None, cloud)
        live.listener.spin_until(lambda: False, 0.15)
        reported = reported or "no camera_info on '/camera_info'" in live.diag().get("_message", "")
    assert reported, live.diag()
    assert live.count("synchronized sets") == synced
    assert "[missing_input] no camera_info" in live.log.read_text()
    assert_recovers(live)


@pytest.mark.parametrize("kind", ["zero", "backwards_100s", "future_11_days"])
def test_unusual_stamps_are_processed(live: harness.LiveNode, kind: str) -> None:
    """A zero stamp, a jump backwards (a bag loop), a stamp far in the future: processed, counted under
    ``stamp not used for latency: <zero|backward|future>`` and kept out of the latency figures; then the
    old clock goes on."""
    counter = "stamp not used for latency: " + {"zero": "zero", "backwards_100s": "backward",
                                                "future_11_days": "future"}[kind]
    before = live.count(counter)
    stamp = {"zero": 0, "backwards_100s": live.stamp - 100 * 10 ** 9, "future_11_days": live.stamp + 10 ** 15}[kind]
    sent = live.send(*good_set(), stamp=stamp)
    live.wait(lambda: sent in live.published() and live.count(counter) > before, 60.0, "unusual stamp not counted")
    assert_recovers(live)
    diag = live.diag()
    assert 0 < float(diag["latency p99 (ms)"]) < 60_000, diag   # seconds at most, not days (1.8e11 ms before)


def test_bag_loop_with_sim_time(tmp_path) -> None:
    """use_sim_time with /clock jumping 100 s back (``bag play --loop``): the node keeps its diagnostics timer,
    does not call the looped sets stale (max_stamp_age 2 s), and processes them."""
    from rosgraph_msgs.msg import Clock

    params = {"model": str(harness.save_student(tmp_path / "student.pt")), "backend": "torch", "device": "cpu",
              "T_cam_lidar": FRAME["T"].ravel(), "publish_colored": False, "diagnostics_period": 0.2,
              "threads": 1, "use_sim_time": True, "max_stamp_age": 2.0}
    live = live_node(tmp_path, params, clock=True)
    try:
        for loop in range(2):
            live.stamp = 1_000 * 10 ** 9   # the bag starts again at the same time
            published = []
            for _ in range(10):
                stamp = live.next_stamp()
                live.clock.publish(Clock(clock=convert.make_stamp(stamp + 20_000_000)))
                published.append(live.send(*good_set(), stamp=stamp))
                live.listener.spin_until(lambda: False, 0.25)
            live.wait(lambda: published[-1] in live.published(), 30.0, f"loop {loop}: last set not published")
            arrays = live.listener.got["/diagnostics"]
            assert convert.stamp_to_ns(arrays[-1].header.stamp) <= published[-1] + 10 ** 9   # sim time, not wall

        def ticked_and_accounted() -> bool:   # sim time: the diagnostics timer runs only while /clock advances
            live.clock.publish(Clock(clock=convert.make_stamp(live.next_stamp())))
            return live.count("synchronized sets") == 20 and live.accounted()

        live.wait(ticked_and_accounted, 30.0, "sets unaccounted for")
        assert live.count("bad frames") == 0 and live.proc.poll() is None
        assert live.count("stamp not used for latency: backward") == 1   # the loop's first set

        # a stamp a day ahead of /clock does not pass max_stamp_age either
        live.clock.publish(Clock(clock=convert.make_stamp(live.next_stamp())))
        live.send(*good_set(), stamp=live.stamp + 86_400 * 10 ** 9)

        def refused() -> bool:
            live.clock.publish(Clock(clock=convert.make_stamp(live.next_stamp())))
            return live.count("bad frames: future_stamp") == 1

        live.wait(refused, 30.0, "a stamp a day ahead passed max_stamp_age")
        assert "ahead of this node's clock (max_stamp_age 2.0 s): synchronize the clocks" in live.log.read_text()
    finally:
        live.close()


@pytest.mark.real_libs
def test_out_of_order_sets_are_each_accounted_for(live: harness.LiveNode) -> None:
    """Three sets sent newest first: each is published or counted as dropped, none lost."""
    base = live.stamp + 1_000_000_000
    before = live.count("synchronized sets")
    for k in (2, 1, 0):
        live.send(*good_set(), stamp=base + k * 100_000_000)
    live.stamp = base + 300_000_000
    live.wait(lambda: live.count("synchronized sets") >= before + 3, 30.0, "out-of-order sets not synchronized")
    assert_recovers(live)


@pytest.mark.real_libs
def test_burst_of_200_sets(live: harness.LiveNode) -> None:
    """200 sets at once over a reliable path that holds the whole burst (our history and the node's
    qos_depth are both >= 200): every message DDS was given reaches the node's callbacks, and every
    one of them is accounted for: matched into a set, evicted from the synchronizer's queue, or pending;
    every set is processed, dropped by the newest-frame policy, or bad. The newest set is published."""
    live.settle()
    before, sent = harness.counts(live.diag()), dict(live.sent)
    image, info, cloud = good_set()
    stamps = [live.send(image, info, cloud) for _ in range(BURST)]
    live.wait(lambda: stamps[-1] in live.published(), 90.0, "the newest set of the burst was not published")
    live.settle()
    after = harness.counts(live.diag())
    d = {key: after[key] - before.get(key, 0) for key in after}
    sync = "sync image+camera_info+points"
    assert {topic: live.sent[topic] - sent[topic] for topic in harness.TOPICS} == dict.fromkeys(harness.TOPICS, BURST)
    assert harness.delivery_gaps(dict.fromkeys(harness.TOPICS, BURST), d) == dict.fromkeys(harness.TOPICS, 0), d
    for topic in harness.TOPICS:
        assert d.get(f"lost by DDS: {topic}", 0) == 0, (topic, d)
        assert d[f"received: {topic}"] == sum(d[f"{sync}: {topic} {what}"] for what in ("matched", "evicted",
                                                                                       "pending")), (topic, d)
    assert d[f"{sync}: sets"] == d["synchronized sets"] == (d["processed"] + d["bad frames"]
                                                            + d["dropped (replaced before processing)"]), d
    assert d["processed"] >= 1 and d["bad frames"] == 0
    assert harness.unaccounted(live.diag()) == []
    assert_recovers(live)


def test_a_burst_of_bad_frames_logs_once_per_throttle_period(live: harness.LiveNode) -> None:
    before = live.count("bad frames: size_mismatch")
    text_before = live.log.read_text().count("[size_mismatch]")
    image, info, cloud = _with(info=_info(P=FRAME["P"], width=WIDTH * 2))()
    for _ in range(10):   # within 0.25 s, shorter than log_throttle 0.3 s; spaced so each one is checked
        live.send(image, info, cloud)
        live.listener.spin_until(lambda: False, 0.025)
    live.settle()
    counted = live.count("bad frames: size_mismatch") - before
    logged = live.log.read_text().count("[size_mismatch]") - text_before
    assert counted >= 3 and 1 <= logged <= 2, (counted, logged)
    assert_recovers(live)


@pytest.mark.real_libs
def test_node_process_stayed_up(live: harness.LiveNode) -> None:
    assert live.proc.poll() is None and "Traceback" not in live.log.read_text()
    assert "Warning" not in live.log.read_text()   # no raw numpy / Python warnings among the log lines
    assert os.path.getsize(live.log) > 0


def test_auto_mode_lidar_stops_and_returns_and_camera_stops(tmp_path) -> None:
    """mode auto: completion -> the LiDAR stops (monocular fallback) -> it returns (completion again);
    then the camera stops (reported as the missing input) and comes back."""
    import torch

    from lumde_depth.models import build
    from lumde_depth.models.io import save_model
    torch.manual_seed(0)
    mono = save_model(tmp_path / "mono.pt", build("lumde_student", width=0.5),
                      {"input_size": list(INPUT_SIZE), "depth_range": [0.5, 80.0], "kind": "monocular"})
    params = {"model": str(harness.save_student(tmp_path / "student.pt")), "mono_model": str(mono), "mode": "auto",
              "lidar_timeout": 0.5, "backend": "torch", "device": "cpu", "T_cam_lidar": FRAME["T"].ravel(),
              "publish_colored": False, "diagnostics_period": 0.2, "log_throttle": 0.3, "threads": 1}
    live = live_node(tmp_path, params)
    try:
        def phase(sets: int, image: bool, cloud: bool, state: str | None) -> list[int]:
            stamps = []
            for _ in range(sets):
                g = good_set()
                stamps.append(live.send(g[0] if image else None, g[1] if image else None, g[2] if cloud else None))
                live.listener.spin_until(lambda: False, 0.2)
            if state is not None:
                live.wait(lambda: live.diag().get("state") == state and stamps[-1] in live.published(), 30.0,
                          f"not in state {state!r}")
            return stamps

        first = phase(8, True, True, "completion")
        # diagnostics are periodic: the last one may predate the last set's publication
        live.wait(lambda: harness.unaccounted(live.diag()) == [], 10.0, "camera-only sets not accounted for")
        assert harness.counts(live.diag()).get("camera-only sets not processed: lidar live", 0) > 0, live.diag()
        mono_stamps = phase(10, True, False, "camera-only (monocular)")
        assert "LiDAR" in live.diag()
        phase(8, True, True, "completion")
        assert any(s in live.published() for s in first) and mono_stamps[-1] in live.published()

        reported = False
        for _ in range(20):   # clouds only for 4 s: the camera is silent longer than node.INPUT_SILENT_S
            live.send(None, None, good_set()[2])
            live.listener.spin_until(lambda: False, 0.2)
            reported = reported or "no image on '/image'" in live.diag().get("_message", "")
        assert reported, live.diag()
        assert "[missing_input] no image on '/image'" in live.log.read_text()
        assert_recovers(live)
        assert live.proc.poll() is None and "Traceback" not in live.log.read_text()
    finally:
        live.close()
