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

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField  # noqa: E402

from lumde_depth.ros import convert  # noqa: E402

import node_harness as harness  # noqa: E402
from conftest import next_domain_id  # noqa: E402
from test_node import Listener, _diag_values  # noqa: E402

pytestmark = pytest.mark.ros
INPUT_SIZE = (64, 208)
HEIGHT, WIDTH = 96, 320
FRAME = harness.synthetic_frame(HEIGHT, WIDTH, 20_000)
BURST = 200


def save_student(path: Path) -> Path:
    import torch

    from lumde_depth.models import build
    from lumde_depth.models.io import save_model
    torch.manual_seed(0)
    return save_model(path, build("cdspn", scale=32),
                      {"input_size": list(INPUT_SIZE), "depth_range": [0.5, 80.0], "kind": "completion"})


class LiveNode:
    """The node process on its own domain, with publishers of its inputs and a Listener of its outputs here."""

    def __init__(self, tmp: Path, params: dict[str, object], clock: bool = False) -> None:
        """``clock``: also publish ``/clock`` (for ``use_sim_time``), here at ``self.stamp`` until the node is up."""
        from rosgraph_msgs.msg import Clock
        self.domain = next_domain_id()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self.domain)
        self.listener = Listener(self.context, {"depth/image": Image, "/diagnostics": DiagnosticArray})
        # deep enough for a 200-set burst: a full reliable history would block publish() and then fail it
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=BURST, reliability=ReliabilityPolicy.RELIABLE)
        node = self.listener.node
        self.pubs = {"image": node.create_publisher(Image, "image", qos),
                     "camera_info": node.create_publisher(CameraInfo, "camera_info", qos),
                     "points": node.create_publisher(PointCloud2, "points", qos)}
        self.clock = node.create_publisher(Clock, "/clock", 10) if clock else None
        self.log = tmp / "node.log"
        self.proc = harness.start_node(params, log=self.log, env=harness.ros_env(self.domain))
        self.stamp = time.time_ns()

        def ready() -> bool:
            if self.clock is not None:
                self.clock.publish(Clock(clock=convert.make_stamp(self.stamp)))
            return all(p.get_subscription_count() > 0 for p in self.pubs.values()) and bool(self.diag())

        self.wait(ready, 90.0, "the node did not subscribe and publish diagnostics")
        # our writers see the node's readers before the node's readers see our writers; samples sent in
        # between are not delivered (volatile durability), so let discovery finish on the node's side too
        self.listener.spin_until(lambda: False, 1.0)

    # ------------------------------------------------------------------ publishing
    def next_stamp(self) -> int:
        self.stamp += 100_000_000   # 0.1 s apart: farther than the sync slop, so sets never mix
        return self.stamp

    def send(self, image=None, info=None, cloud=None, stamp: int | None = None,
             cloud_stamp: int | None = None) -> int:
        """Publish the given messages (None = not sent) with one image stamp; returns it."""
        stamp = self.next_stamp() if stamp is None else stamp
        for topic, msg, ns in (("image", image, stamp), ("camera_info", info, stamp),
                               ("points", cloud, stamp if cloud_stamp is None else cloud_stamp)):
            if msg is not None:
                msg.header.stamp = convert.make_stamp(ns)
                self.pubs[topic].publish(msg)
        return stamp

    def send_good(self) -> int:
        return self.send(*good_set())

    # ------------------------------------------------------------------ observing
    def diag(self) -> dict[str, str]:
        return _diag_values(self.listener)

    def count(self, key: str) -> int:
        return int(self.diag().get(key, 0))

    def published(self) -> set[int]:
        return {convert.stamp_to_ns(m.header.stamp) for m in self.listener.got["depth/image"]}

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        ok = self.listener.spin_until(condition, timeout, [self.proc], self.log)
        assert ok, f"{what}; diagnostics: {self.diag()}\nnode log:\n{self.log.read_text()[-4000:]}"

    def settle(self) -> None:
        """Wait until the diagnostics account for every synchronized set (processed + dropped + bad)."""
        start = time.time_ns()
        self.wait(lambda: self.diag_after(start) and self.accounted(), 30.0, "sets unaccounted for")

    def accounted(self) -> bool:
        d = self.diag()
        return int(d.get("synchronized sets", -1)) == (int(d.get("processed", 0)) + int(d.get("bad frames", 0))
                                                       + int(d.get("dropped (replaced before processing)", 0)))

    def diag_after(self, ns: int) -> bool:
        arrays = self.listener.got["/diagnostics"]
        return bool(arrays) and convert.stamp_to_ns(arrays[-1].header.stamp) >= ns

    def close(self) -> None:
        harness.stop(self.proc)
        self.listener.close()
        self.context.try_shutdown()


# --------------------------------------------------------------------------------------------------
# messages

def header(frame_id: str = "camera") -> object:
    return convert.make_header(0, frame_id)


def good_set(points: np.ndarray | None = None) -> tuple:
    return (convert.numpy_to_image(FRAME["rgb"], "rgb8", header()),
            convert.make_camera_info(header(), WIDTH, HEIGHT, P=FRAME["P"]),
            convert.xyzi_to_cloud(FRAME["points"] if points is None else points, header("lidar")))


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
CASES = [
    *[Case(f"image_{enc}", _with(image=lambda e=enc: image_msg(e)), "published")
      for enc in ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")],
    Case("image_bayer", _with(image=lambda: image_msg("bayer_rggb8")), "bad_image",
         "[bad_image] unsupported image encoding 'bayer_rggb8'"),
    Case("image_mono16", _with(image=lambda: image_msg("mono16")), "bad_image",
         "[bad_image] image encoding 'mono16' is not a colour or mono8 image"),
    Case("image_16UC3", _with(image=lambda: image_msg("16UC3")), "bad_image",
         "[bad_image] image encoding '16UC3' is neither colour"),
    Case("image_32FC1", _with(image=lambda: image_msg("32FC1")), "bad_image",
         "[bad_image] image encoding '32FC1' is not a colour or mono8 image"),
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
    Case("camera_info_zero", _with(info=_info(K=np.zeros((3, 3)))), "bad_camera_info",
         "[bad_camera_info] camera info is uncalibrated: both K and P are all zero"),
    Case("camera_info_nan", _with(info=_info(K=NAN_K)), "bad_camera_info", "[bad_camera_info]"),
    Case("camera_info_size_differs", _with(info=_info(P=FRAME["P"], width=WIDTH * 2)), "size_mismatch",
         "[size_mismatch] camera_info is 640x96 but the image is 320x96"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveNode:
    tmp = tmp_path_factory.mktemp("live")
    params = {"model": str(save_student(tmp / "student.pt")), "backend": "torch", "device": "cpu",
              "T_cam_lidar": FRAME["T"].ravel(), "publish_colored": False, "diagnostics_period": 0.2,
              "log_throttle": 0.3, "threads": 1, "qos_depth": 10}
    node = LiveNode(tmp, params)
    try:
        first = node.send_good()
        node.wait(lambda: first in node.published(), 120.0, "the first good set was not published")
        yield node
    finally:
        node.close()


def assert_recovers(live: LiveNode) -> None:
    """The node is alive and publishes depth for the next good set; every set is accounted for."""
    stamp = live.send_good()
    live.wait(lambda: stamp in live.published(), 60.0, "the next good set was not published")
    live.settle()
    assert live.proc.poll() is None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(live: LiveNode, case: Case) -> None:
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


def test_no_camera_info_is_reported_and_recovers(live: LiveNode) -> None:
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
def test_unusual_stamps_are_processed(live: LiveNode, kind: str) -> None:
    """A zero stamp, a jump backwards (a bag loop), a stamp far in the future: processed, then the old clock goes on."""
    stamp = {"zero": 0, "backwards_100s": live.stamp - 100 * 10 ** 9, "future_11_days": live.stamp + 10 ** 15}[kind]
    sent = live.send(*good_set(), stamp=stamp)
    live.wait(lambda: sent in live.published(), 60.0, "unusual stamp not processed")
    assert_recovers(live)


def test_bag_loop_with_sim_time(tmp_path) -> None:
    """use_sim_time with /clock jumping 100 s back (``bag play --loop``): the node keeps its diagnostics timer,
    does not call the looped sets stale (max_stamp_age 2 s), and processes them."""
    from rosgraph_msgs.msg import Clock

    params = {"model": str(save_student(tmp_path / "student.pt")), "backend": "torch", "device": "cpu",
              "T_cam_lidar": FRAME["T"].ravel(), "publish_colored": False, "diagnostics_period": 0.2,
              "threads": 1, "use_sim_time": True, "max_stamp_age": 2.0}
    live = LiveNode(tmp_path, params, clock=True)
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
    finally:
        live.close()


def test_out_of_order_sets_are_each_accounted_for(live: LiveNode) -> None:
    """Three sets sent newest first: each is published or counted as dropped, none lost."""
    base = live.stamp + 1_000_000_000
    before = live.count("synchronized sets")
    for k in (2, 1, 0):
        live.send(*good_set(), stamp=base + k * 100_000_000)
    live.stamp = base + 300_000_000
    live.wait(lambda: live.count("synchronized sets") >= before + 3, 30.0, "out-of-order sets not synchronized")
    assert_recovers(live)


def test_burst_of_200_sets(live: LiveNode) -> None:
    """200 sets at once: the node stays alive, keeps the newest, and processed + dropped + bad = synchronized."""
    keys = ("synchronized sets", "processed", "dropped (replaced before processing)", "received: image",
            "lost by DDS: image")
    before = {k: live.count(k) for k in keys}
    image, info, cloud = good_set()
    stamps = [live.send(image, info, cloud) for _ in range(BURST)]
    live.wait(lambda: stamps[-1] in live.published(), 90.0, "the newest set of the burst was not published")
    live.settle()
    d = {k: live.count(k) - v for k, v in before.items()}
    assert d["synchronized sets"] >= 1 and d["processed"] >= 1
    assert d["processed"] + d["dropped (replaced before processing)"] == d["synchronized sets"]
    # the rest were overwritten in the node's KEEP_LAST(qos_depth) input queues before its callbacks took them
    # (DDS reports those it knows of as lost); the burst is bounded, never queued whole
    assert d["synchronized sets"] <= d["received: image"] and d["received: image"] + d["lost by DDS: image"] <= BURST
    assert_recovers(live)


def test_a_burst_of_bad_frames_logs_once_per_throttle_period(live: LiveNode) -> None:
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


def test_node_process_stayed_up(live: LiveNode) -> None:
    assert live.proc.poll() is None and "Traceback" not in live.log.read_text()
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
    params = {"model": str(save_student(tmp_path / "student.pt")), "mono_model": str(mono), "mode": "auto",
              "lidar_timeout": 0.5, "backend": "torch", "device": "cpu", "T_cam_lidar": FRAME["T"].ravel(),
              "publish_colored": False, "diagnostics_period": 0.2, "log_throttle": 0.3, "threads": 1}
    live = LiveNode(tmp_path, params)
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
