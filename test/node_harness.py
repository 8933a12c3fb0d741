"""Helpers for the real-DDS node tests and bench/node_latency.py: frames, a publisher process, the node process.

Run as a script, this module is the *publisher process*: it loads a frame file (``save_frame``),
waits until the node subscribes, then publishes image + camera_info + cloud at a rate and prints one
JSON line per published set (its stamp). Its QoS, topic names and a list of bad-input cases are
command-line options.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lumde_depth.data.depth_io import read_velodyne_bin

ROOT = Path(__file__).resolve().parents[1]
KITTI_FRAME = "000001"   # 1242x375, 120k points


def loopback_profile(folder: Path) -> Path:
    """config/fastdds_large_messages.xml with its UDP transport limited to 127.0.0.1 (DDS stays on this host)."""
    xml = (ROOT / "config" / "fastdds_large_messages.xml").read_text()
    loopback = xml.replace("</receiveBufferSize>", "</receiveBufferSize>\n      <interfaceWhiteList>"
                           "<address>127.0.0.1</address></interfaceWhiteList>")
    if loopback == xml:
        raise ValueError("config/fastdds_large_messages.xml has no receiveBufferSize to attach the loopback allowlist to")
    path = folder / "fastdds_loopback.xml"
    path.write_text(loopback)
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
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "lumde_depth.ros.node"]
    cmd.append("--ros-args")
    for key, value in params.items():
        if isinstance(value, (list, tuple, np.ndarray)):   # positional: yaml 1.1 reads 1e-05 as a string
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
                    env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), str(frame), "--rate", str(rate), "--count", str(count),
           "--reliability", reliability, "--topics", *topics, "--seconds", str(seconds),
           "--cloud-offset-ms", str(cloud_offset_ms)]
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


# --------------------------------------------------------------------------------------------------
# the publisher process

BAD_CASES = ("size_mismatch", "empty_cloud", "nan_cloud", "bad_encoding", "uncalibrated")


def _publish(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from lumde_depth.ros import convert

    frame = dict(np.load(args.frame))
    rgb, points, P = frame["rgb"], frame["points"].astype(np.float32), frame["P"]
    height, width = rgb.shape[:2]
    rclpy.init()
    node = rclpy.create_node("lumde_test_publisher")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                     reliability=ReliabilityPolicy.RELIABLE if args.reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    types = (Image, CameraInfo, PointCloud2)[:2 if args.no_points else 3]
    pubs = [node.create_publisher(t, name, qos) for t, name in zip(types, args.topics)]
    header = convert.make_header(0, "camera_color_left")
    cloud_header = convert.make_header(0, "velo_link")
    good = (convert.numpy_to_image(rgb, "rgb8", header), convert.make_camera_info(header, width, height, P=P),
            convert.xyzi_to_cloud(points, cloud_header))
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
        image, info, cloud = _messages(case, good, rgb, points, P, convert)
        stamp = node.get_clock().now().nanoseconds
        cloud_stamp = stamp + int(args.cloud_offset_ms * 1e6)   # approximate sync must pair them
        for msg, ns in ((image, stamp), (info, stamp), (cloud, cloud_stamp)):
            msg.header.stamp = convert.make_stamp(ns)
        for pub, msg in zip(pubs, (image, info, cloud)):
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
    return _publish(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
