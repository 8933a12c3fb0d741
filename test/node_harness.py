"""Helpers for the real-DDS node tests and the node benches (node_latency, soak): frames, a student
model file, the node process, :class:`LiveNode` (the node driven from this process), the accounting
identities the node's diagnostics must satisfy, and a publisher process.

Run as a script, this module is the *publisher process*: it loads a frame file (``save_frame``),
waits until the node subscribes, then publishes image + camera_info + cloud at a rate and prints one
JSON line per published set (its stamp); with ``--cameras``, a rig file (``save_rig``): each camera's
image + camera_info under its name and one cloud, with one stamp. Its QoS, topic names and a list of bad-input cases are
command-line options.

rclpy is imported inside the functions that need it, so the frame helpers work without ROS.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lumde_depth.data.depth_io import read_velodyne_bin

ROOT = Path(__file__).resolve().parents[1]
KITTI_FRAME = "000001"   # 1242x375, 120k points
STUDENT_INPUT_SIZE = (64, 208)
TOPICS = ("image", "camera_info", "points")
PJLAB_FRAME = "lidar2camera/auto_calib_v2.0/data/ours/3"   # calibrated (ours/1 and /2 hold the tool's start guess)


def loopback_profile(folder: Path) -> Path:
    """config/fastdds_large_messages.xml with its UDP transport limited to 127.0.0.1 (DDS stays on this host)."""
    from lumde_depth.ros import dds
    return dds.loopback_profile(dds.shipped_profile(), folder)


def use_large_messages_profile() -> Path:
    """Make this process and its ROS children use :func:`loopback_profile` (shared memory for KITTI-sized
    messages); call before rclpy creates a participant. Returns the profile's path."""
    path = loopback_profile(Path(tempfile.mkdtemp(prefix="lumde_fastdds_")))
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    return path


def kitti_frame(shared: Path | None) -> dict[str, np.ndarray]:
    """A KITTI-sized frame: the real KITTI object frame KITTI_FRAME when the shared data is there, else
    a generated one of the same size (1242x375, ~120k points, KITTI intrinsics)."""
    if shared is not None and (shared / "kitti_object" / "training").is_dir():
        from PIL import Image

        from lumde_depth.geometry import read_kitti_object_calib
        root = shared / "kitti_object" / "training"
        rgb = np.asarray(Image.open(root / "image_2" / f"{KITTI_FRAME}.png").convert("RGB"))
        calib = read_kitti_object_calib(root / "calib" / f"{KITTI_FRAME}.txt")
        points = read_velodyne_bin(root / "velodyne" / f"{KITTI_FRAME}.bin")
        return {"rgb": rgb, "points": points, "P": calib.P, "T": calib.T_cam_lidar}
    return synthetic_frame(375, 1242, 120_000)


def synthetic_frame(height: int, width: int, n_points: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A textured image and a 64-beam-like scan of a ground plane and a wall (LiDAR frame x forward, z up)."""
    rng = np.random.default_rng(seed)
    f = 721.5377 * width / 1242.0
    P = np.array([[f, 0, width / 2 - 0.5, 44.857], [0, f, height * 0.46, 0.2163], [0, 0, 1, 0.0027]])
    T = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27], [0, 0, 0, 1.0]])
    az = rng.uniform(-np.pi, np.pi, n_points)
    el = np.radians(rng.uniform(-24.8, 2.0, n_points))
    ground = np.where(el < 0, 1.73 / np.maximum(np.tan(-el), 1e-3), np.inf)
    rng_m = np.minimum(np.minimum(ground, 40.0), 120.0) + rng.normal(0, 0.02, n_points)
    points = np.stack([rng_m * np.cos(el) * np.cos(az), rng_m * np.cos(el) * np.sin(az), rng_m * np.sin(el),
                       rng.uniform(0, 1, n_points)], 1).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([(xx * 7) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    return {"rgb": rgb, "points": points, "P": P, "T": T}


def pjlab_frame(shared: Path, name: str = PJLAB_FRAME) -> dict[str, np.ndarray]:
    """A real raw (distorted) 1920x1200 PJLab frame with its K, D (plumb_bob), P = [K | 0] and extrinsic."""
    from lumde_depth.data.opencalib import read_frame

    frame = read_frame(shared / "pjlab_lidar2camera" / name)
    points = frame.points()
    xyzi = np.stack([points[f] for f in ("x", "y", "z", "intensity")], -1).astype(np.float32)
    return {"rgb": frame.rgb(), "points": xyzi[np.isfinite(xyzi).all(1)], "K": frame.K, "D": frame.D,
            "distortion_model": "plumb_bob", "P": np.hstack([frame.K, np.zeros((3, 1))]), "T": frame.T_cam_lidar}


def lidar_pixels(frame: dict[str, np.ndarray], distorted: bool = True):
    """``(rows, cols, xyz in the camera frame, pixels the distortion moved the point by)`` of the nearest
    LiDAR point per pixel, by OpenCV's radial-tangential formula (plain numpy, independent of the package)."""
    T, K = frame["T"], frame["K"]
    cam = frame["points"][:, :3].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    cam = cam[cam[:, 2] > 1.0]
    x, y = cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2]
    k1, k2, p1, p2, k3 = np.r_[frame["D"], 0.0][:5] if distorted else np.zeros(5)
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd, yd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u, v = K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]
    moved = np.hypot(u - K[0, 0] * x - K[0, 2], v - K[1, 1] * y - K[1, 2])
    cols, rows = np.floor(u + 0.5).astype(int), np.floor(v + 0.5).astype(int)
    height, width = frame["rgb"].shape[:2]
    inside = (np.hypot(x, y) < 0.6) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    order = np.flatnonzero(inside)[np.argsort(cam[inside, 2])]
    _, first = np.unique(rows[order] * width + cols[order], return_index=True)
    keep = order[first]
    return rows[keep], cols[keep], cam[keep], moved[keep]


RIG_LIDAR_FRAME = "LIDAR"   # frame_id of a rig's cloud (the publisher's --cameras mode)


def save_rig(path: Path, cameras: dict[str, dict[str, np.ndarray]], points: np.ndarray) -> Path:
    """A rig for the publisher's ``--cameras`` mode: per camera ``rgb``, ``P`` (3x4 or K) and ``T`` (LiDAR ->
    camera), and the shared cloud ``points`` (N, 4)."""
    arrays = {"points": points, "cameras": np.array(list(cameras))}
    for name, camera in cameras.items():
        arrays.update({f"{key}__{name}": camera[key] for key in ("rgb", "P", "T")})
    np.savez(path, **arrays)
    return path


def load_rig(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """``(cameras, points)`` of :func:`save_rig`."""
    data = np.load(path)
    cameras = {str(name): {key: data[f"{key}__{name}"] for key in ("rgb", "P", "T")} for name in data["cameras"]}
    return cameras, data["points"]


def save_frame(path: Path, frame: dict[str, np.ndarray]) -> Path:
    np.savez(path, **frame)
    return path


def ros_env(domain_id: int | str | None = None) -> dict[str, str]:
    """The environment for a ROS child process: loopback discovery, the given (or current) domain."""
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1",
               PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def node_command(params: dict[str, object], remaps: dict[str, str] | None = None, name: str = "") -> list[str]:
    """``lumde_depth_node --ros-args -p k:=v ... -r from:=to [-r __node:=name]``."""
    exe = Path(sys.executable).parent / "lumde_depth_node"
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "lumde_depth.ros.node_main"]
    cmd.append("--ros-args")
    for key, value in params.items():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            value = "[" + ",".join(value) + "]"
        elif isinstance(value, (list, tuple, np.ndarray)):   # positional: yaml 1.1 reads 1e-05 as a string
            value = "[" + ",".join(np.format_float_positional(float(v), unique=True, trim="0") for v in value) + "]"
        elif isinstance(value, bool):
            value = str(value).lower()
        cmd += ["-p", f"{key}:={value}"]
    for src, dst in {**(remaps or {}), **({"__node": name} if name else {})}.items():
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def start_node(params: dict[str, object], remaps: dict[str, str] | None = None, log: Path | None = None,
               env: dict[str, str] | None = None, name: str = "") -> subprocess.Popen:
    out = open(log, "w") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(node_command(params, remaps, name), env=env or ros_env(), stdout=out,
                            stderr=subprocess.STDOUT)


def start_publisher(frame: Path, *, rate: float = 2.0, count: int = 10, reliability: str = "reliable",
                    topics: tuple[str, str, str] = ("image", "camera_info", "points"), bad: str = "",
                    seconds: float = 0.0, no_points: bool = False, cloud_offset_ms: float = 10.0,
                    env: dict[str, str] | None = None, cameras: tuple[str, ...] = ()) -> subprocess.Popen:
    """The publisher process; ``cameras``: ``frame`` is a :func:`save_rig` file, these cameras are published."""
    cmd = [sys.executable, str(Path(__file__).resolve()), str(frame), "--rate", str(rate), "--count", str(count),
           "--reliability", reliability, "--topics", *topics, "--seconds", str(seconds),
           "--cloud-offset-ms", str(cloud_offset_ms)]
    if cameras:
        cmd += ["--cameras", *cameras]
    if bad:
        cmd += ["--bad", bad]
    if no_points:
        cmd.append("--no-points")
    return subprocess.Popen(cmd, env=env or ros_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGINT (the node shuts down cleanly), then kill if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def save_student(path: Path, input_size: tuple[int, int] = STUDENT_INPUT_SIZE) -> Path:
    """A random-init cdspn x32 completion model (the shipped student's cost, untrained) saved at ``path``."""
    import torch

    from lumde_depth.models import build
    from lumde_depth.models.io import save_model
    torch.manual_seed(0)
    return save_model(path, build("cdspn", scale=32),
                      {"input_size": list(input_size), "depth_range": [0.5, 80.0], "kind": "completion"})


def frame_messages(frame: dict[str, np.ndarray], camera: str = "camera", lidar: str = "lidar") -> tuple:
    """``(Image rgb8, CameraInfo, PointCloud2 x,y,z,intensity)`` of a frame, stamp 0. A frame with ``D``
    (a raw, distorted image) also has ``K`` and ``distortion_model``, published in its CameraInfo."""
    from lumde_depth.ros import convert

    height, width = frame["rgb"].shape[:2]
    header, cloud_header = convert.make_header(0, camera), convert.make_header(0, lidar)
    lens = {"K": frame["K"], "D": frame["D"], "distortion_model": str(frame["distortion_model"])} if "D" in frame \
        else {}
    return (convert.numpy_to_image(frame["rgb"], "rgb8", header),
            convert.make_camera_info(header, width, height, P=frame["P"], **lens),
            convert.xyzi_to_cloud(frame["points"].astype(np.float32), cloud_header))


# --------------------------------------------------------------------------------------------------
# the node's accounting (keys of its /diagnostics, lumde_depth.ros.diagnostics)

def counts(diag: dict[str, str]) -> dict[str, int]:
    """The integer counters among diagnostics values."""
    return {key: int(value) for key, value in diag.items() if isinstance(value, str) and value.isdigit()}


def delivery_gaps(sent: dict[str, int], counters: dict[str, int]) -> dict[str, int]:
    """Per input: messages sent - received by the node - reported lost by DDS (0: every one accounted for;
    > 0: still in flight, or overwritten unread in a KEEP_LAST history, which DDS reports nowhere)."""
    return {topic: n - counters.get(f"received: {topic}", 0) - counters.get(f"lost by DDS: {topic}", 0)
            for topic, n in sent.items()}


def unaccounted(diag: dict[str, str]) -> list[str]:
    """The node's accounting identities these diagnostics break (empty: every message accounted for).

    Per synchronizer ``S`` and input ``t``: ``received: t = S: t matched + evicted + pending`` and
    ``S: t matched = S: sets``; for the worker: ``synchronized sets = processed + dropped + bad frames``
    (+ the camera sets waiting for the rest of their sweep, with several cameras);
    the synchronizers' sets are the synchronized sets plus the camera-only sets not processed (mode
    auto while the LiDAR is live, or no monocular model)."""
    c = counts(diag)
    syncs = [key[: -len(": sets")] for key in c if key.startswith("sync ") and key.endswith(": sets")]
    problems = []
    for sync in syncs:
        for topic in sync[len("sync "):].split("+"):
            parts = [c.get(f"{sync}: {topic} {what}", 0) for what in ("matched", "evicted", "pending")]
            if c.get(f"received: {topic}", 0) != sum(parts):
                problems.append(f"{topic}: received {c.get(f'received: {topic}', 0)} != matched + evicted + "
                                f"pending {parts} in {sync}")
            if parts[0] != c[f"{sync}: sets"]:
                problems.append(f"{sync}: {topic} matched {parts[0]} != sets {c[f'{sync}: sets']}")
    handled = c.get("processed", 0) + c.get("dropped (replaced before processing)", 0) + c.get("bad frames", 0) \
        + c.get("camera sets waiting for their sweep", 0)   # several cameras: sets gathered by LiDAR sweep
    if c.get("synchronized sets", -1) != handled:
        problems.append(f"synchronized sets {c.get('synchronized sets')} != processed + dropped + bad {handled}")
    skipped = sum(n for key, n in c.items() if key.startswith("camera-only sets not processed: "))
    sets = sum(c[f"{sync}: sets"] for sync in syncs)
    if syncs and sets != c.get("synchronized sets", -1) + skipped:
        problems.append(f"synchronizer sets {sets} != synchronized sets {c.get('synchronized sets')} + "
                        f"camera-only sets not processed {skipped}")
    return problems


# --------------------------------------------------------------------------------------------------
# the node driven from this process

class Listener:
    """Subscribes to the node's outputs in this process and keeps what arrives."""

    def __init__(self, context: Any, topics: dict[str, type], reliability: Any = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.node = rclpy.create_node("lumde_test_listener", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.got: dict[str, list] = {name: [] for name in topics}
        self.node_name = "lumde_depth_node"
        qos = QoSProfile(depth=10, reliability=reliability or ReliabilityPolicy.RELIABLE)
        for name, msg_type in topics.items():
            self.node.create_subscription(msg_type, name, lambda m, n=name: self.got[n].append(m),
                                          10 if name == "/diagnostics" else qos)

    def spin_until(self, condition: Callable[[], object], timeout: float, procs: tuple = (),
                   log: Path | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
            for proc in procs:
                if proc.poll() is not None:
                    text = log.read_text() if log is not None and log.exists() else ""
                    raise AssertionError(f"process {proc.args[:2]} exited early with code {proc.returncode}:\n{text}")
        return False

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def diag_values(listener: Listener) -> dict[str, str]:
    """The key/values of the newest /diagnostics status of the listener's node (plus ``_message``, ``_level``)."""
    for array in reversed(listener.got["/diagnostics"]):
        for status in array.status:
            if status.name.startswith(f"{listener.node_name}:"):
                return {kv.key: kv.value for kv in status.values} | {"_message": status.message,
                                                                      "_level": status.level}
    return {}


class LiveNode:
    """The node process on its own domain, with reliable publishers of its inputs and a Listener of its
    outputs here. ``history``: the publishers' KEEP_LAST depth (a burst deeper than it would make
    ``publish()`` overwrite samples not yet delivered)."""

    def __init__(self, tmp: Path, params: dict[str, object], domain: int, frame: dict[str, np.ndarray],
                 history: int = 10, clock: bool = False, listen: dict[str, type] | None = None) -> None:
        """``clock``: also publish ``/clock`` (for ``use_sim_time``), here at ``self.stamp`` until the node is up;
        ``listen``: outputs to keep besides ``depth/image`` and ``/diagnostics`` (topic -> message type)."""
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from lumde_depth.ros import convert
        self.domain, self.frame = domain, frame
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self.domain)
        self.listener = Listener(self.context, {"depth/image": Image, "/diagnostics": DiagnosticArray,
                                                **(listen or {})})
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=history, reliability=ReliabilityPolicy.RELIABLE)
        node = self.listener.node
        self.pubs = {topic: node.create_publisher(msg_type, topic, qos)
                     for topic, msg_type in zip(TOPICS, (Image, CameraInfo, PointCloud2))}
        self.sent = dict.fromkeys(TOPICS, 0)
        self.clock = node.create_publisher(Clock, "/clock", 10) if clock else None
        self.log = tmp / "node.log"
        self.proc = start_node(params, log=self.log, env=ros_env(self.domain))
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

    def good_set(self) -> tuple:
        return frame_messages(self.frame)

    def send(self, image: Any = None, info: Any = None, cloud: Any = None, stamp: int | None = None,
             cloud_stamp: int | None = None) -> int:
        """Publish the given messages (None = not sent) with one image stamp; returns it."""
        from lumde_depth.ros import convert

        stamp = self.next_stamp() if stamp is None else stamp
        for topic, msg, ns in (("image", image, stamp), ("camera_info", info, stamp),
                               ("points", cloud, stamp if cloud_stamp is None else cloud_stamp)):
            if msg is not None:
                msg.header.stamp = convert.make_stamp(ns)
                self.pubs[topic].publish(msg)
                self.sent[topic] += 1
        return stamp

    def send_good(self) -> int:
        return self.send(*self.good_set())

    # ------------------------------------------------------------------ observing
    def diag(self) -> dict[str, str]:
        return diag_values(self.listener)

    def count(self, key: str) -> int:
        return int(self.diag().get(key, 0))

    def published(self) -> set[int]:
        from lumde_depth.ros import convert

        return {convert.stamp_to_ns(m.header.stamp) for m in self.listener.got["depth/image"]}

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        ok = self.listener.spin_until(condition, timeout, (self.proc,), self.log)
        assert ok, f"{what}; diagnostics: {self.diag()}\nnode log:\n{self.log.read_text()[-4000:]}"

    def settle(self) -> None:
        """Wait until the diagnostics account for every synchronized set (processed + dropped + bad)."""
        start = time.time_ns()
        self.wait(lambda: self.diag_after(start) and self.accounted(), 30.0, "sets unaccounted for")

    def delivered(self, timeout: float) -> bool:
        """Spin until every message sent from here was received by the node or reported lost (False on timeout)."""
        return self.listener.spin_until(
            lambda: all(gap <= 0 for gap in delivery_gaps(self.sent, counts(self.diag())).values()), timeout)

    def accounted(self) -> bool:
        d = self.diag()
        return int(d.get("synchronized sets", -1)) == (int(d.get("processed", 0)) + int(d.get("bad frames", 0))
                                                       + int(d.get("dropped (replaced before processing)", 0)))

    def diag_after(self, ns: int) -> bool:
        from lumde_depth.ros import convert

        arrays = self.listener.got["/diagnostics"]
        return bool(arrays) and convert.stamp_to_ns(arrays[-1].header.stamp) >= ns

    def close(self) -> None:
        stop(self.proc)
        self.listener.close()
        self.context.try_shutdown()


# --------------------------------------------------------------------------------------------------
# the publisher process

BAD_CASES = ("size_mismatch", "empty_cloud", "nan_cloud", "bad_encoding", "uncalibrated")


def _publish(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from lumde_depth.ros import convert

    rclpy.init()
    node = rclpy.create_node("lumde_test_publisher")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                     reliability=ReliabilityPolicy.RELIABLE if args.reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    if args.cameras:   # a rig: each camera's image and camera_info under its name, one cloud
        cameras, points = load_rig(args.frame)
        pubs, good = [], []
        for name in args.cameras:
            image, info, _cloud = frame_messages({**cameras[name], "points": points[:0]}, name, RIG_LIDAR_FRAME)
            pubs += [node.create_publisher(Image, f"{name}/image", qos),
                     node.create_publisher(CameraInfo, f"{name}/camera_info", qos)]
            good += [image, info]
        pubs.append(node.create_publisher(PointCloud2, "points", qos))
        good.append(convert.xyzi_to_cloud(points.astype(np.float32), convert.make_header(0, RIG_LIDAR_FRAME)))

        def messages(_case: str) -> list:
            return good
    else:
        frame = dict(np.load(args.frame))
        rgb, points, P = frame["rgb"], frame["points"].astype(np.float32), frame["P"]
        types = (Image, CameraInfo, PointCloud2)[:2 if args.no_points else 3]
        pubs = [node.create_publisher(t, name, qos) for t, name in zip(types, args.topics)]
        one = frame_messages(frame, "camera_color_left", "velo_link")

        def messages(case: str) -> list:
            return list(_messages(case, one, rgb, points, P, convert))[:len(pubs)]
    deadline = time.monotonic() + 60.0
    while any(p.get_subscription_count() == 0 for p in pubs) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)   # let the other side's discovery finish (its publishers -> our subscribers)
    sequence = [c for c in args.bad.split(",") if c] + ["good"] * args.count
    period = 1.0 / args.rate
    start = time.monotonic()
    i = 0
    while i < len(sequence) or (args.seconds > 0 and time.monotonic() - start < args.seconds):
        case = sequence[i] if i < len(sequence) else "good"
        msgs = messages(case)
        stamp = node.get_clock().now().nanoseconds
        cloud_stamp = stamp + int(args.cloud_offset_ms * 1e6)   # approximate sync must pair them
        for msg in msgs:   # the cloud last: image (and camera_info) stamp, then the cloud's
            msg.header.stamp = convert.make_stamp(cloud_stamp if isinstance(msg, PointCloud2) else stamp)
        for pub, msg in zip(pubs, msgs):
            pub.publish(msg)
        print(json.dumps({"case": case, "stamp": stamp}), flush=True)
        i += 1
        time.sleep(max(0.0, start + i * period - time.monotonic()))
    time.sleep(1.0)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _messages(case: str, good: tuple, rgb: np.ndarray, points: np.ndarray, P: np.ndarray, convert) -> tuple:
    image, info, cloud = good
    header, cloud_header = image.header, cloud.header
    if case == "size_mismatch":
        info = convert.make_camera_info(header, rgb.shape[1] // 2, rgb.shape[0], P=P)
    elif case == "empty_cloud":
        cloud = convert.xyzi_to_cloud(np.zeros((0, 4), np.float32), cloud_header)
    elif case == "nan_cloud":
        cloud = convert.xyzi_to_cloud(np.full((1000, 4), np.nan, np.float32), cloud_header)
    elif case == "bad_encoding":
        image = convert.numpy_to_image(rgb[..., 0].astype(np.float32), "32FC1", header)
    elif case == "uncalibrated":
        info = convert.make_camera_info(header, rgb.shape[1], rgb.shape[0], K=np.zeros((3, 3)))
    return image, info, cloud


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("frame")
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.0, help="keep publishing good sets this long")
    parser.add_argument("--reliability", choices=("reliable", "best_effort"), default="reliable")
    parser.add_argument("--topics", nargs=3, default=("image", "camera_info", "points"))
    parser.add_argument("--cloud-offset-ms", type=float, default=10.0, help="cloud stamp minus image stamp")
    parser.add_argument("--no-points", action="store_true", help="publish no clouds (a silent LiDAR)")
    parser.add_argument("--bad", default="", help=f"comma-separated bad sets first: {', '.join(BAD_CASES)}")
    parser.add_argument("--cameras", nargs="+", default=[],
                        help="the frame file is a rig (save_rig): publish <camera>/image and <camera>/camera_info "
                             "of these cameras and one cloud on points")
    return _publish(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
