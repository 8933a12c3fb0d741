"""Message <-> numpy conversion speed (lumde_depth.ros.convert) on KITTI-sized data, rclpy and rosbags messages.

Compares, in one run: a 1242x375 image to / from ``sensor_msgs/Image`` (rgb8, bgr8, 32FC1), a
120,000-point cloud to (N, 3) xyz (KITTI layout, 16-byte points; and an Ouster-like 48-byte
layout with x, y, z at offset 16 and padded rows), the organized XYZRGB output cloud, and the
``compat.point_cloud2.read_points_numpy`` API on the same cloud. Uses a real KITTI image and scan
from ../shared/data when present.

Run: ``.venv/bin/python bench/convert.py [--runs 50]``. Prints a table and writes the ``convert``
section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.ros import convert  # noqa: E402
from lumde_depth.ros.compat import FALLBACKS, point_cloud2  # noqa: E402
from lumde_depth.data.depth_io import read_velodyne_bin  # noqa: E402

N_POINTS = 120_000
WIDTH, HEIGHT = 1242, 375


def shared_data() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("LUMDE_SHARED_DATA", root.parent / "shared" / "data"))


def load_inputs() -> tuple[np.ndarray, np.ndarray, str]:
    """(rgb image (375, 1242, 3) uint8, scan (120000, 4) float32, source description)."""
    root = shared_data() / "kitti_object" / "training"
    scans = sorted(root.glob("velodyne/*.bin"), key=lambda p: p.stat().st_size) if root.is_dir() else []
    scans = [p for p in scans if p.stat().st_size >= N_POINTS * 16]
    if scans:
        from PIL import Image

        scan = read_velodyne_bin(scans[-1])[:N_POINTS]
        with Image.open(root / "image_2" / f"{scans[-1].stem}.png") as img:
            rgb = np.asarray(img.convert("RGB").resize((WIDTH, HEIGHT)))
        return rgb, scan, f"real KITTI frame {scans[-1].stem} (kitti_object), scan cut to {N_POINTS:,} points"
    rng = np.random.default_rng(0)
    return (rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8),
            rng.normal(0, 10, (N_POINTS, 4)).astype(np.float32), "generated (no shared data found)")


def timed(fn, runs: int) -> tuple[float, float]:
    """(median, minimum) milliseconds of ``fn()`` over ``runs`` runs (after one warm-up); the minimum is the
    figure least disturbed by other processes on a shared machine."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times)), 1e3 * float(np.min(times))


def ouster_like(scan: np.ndarray, header, typestore) -> object:
    """The scan as 48-byte points (t, intensity, pad, x, y, z, ring, ...) in 1200-point rows with 32 bytes padding."""
    dt = np.dtype({"names": ["t", "intensity", "x", "y", "z", "ring"], "formats": ["<u4", "<f4", "<f4", "<f4", "<f4", "<u2"],
                   "offsets": [0, 4, 16, 20, 24, 28], "itemsize": 48})
    pts = np.zeros(len(scan), dt)
    pts["x"], pts["y"], pts["z"], pts["intensity"] = scan.T
    msg = convert.structured_to_cloud(pts.reshape(-1, 1200), header, typestore=typestore)
    rows = np.zeros((msg.height, msg.row_step + 32), np.uint8)
    rows[:, :msg.row_step] = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, -1)
    return convert.with_data(type(msg), rows, header=msg.header, height=msg.height, width=msg.width, fields=msg.fields,
                             is_bigendian=msg.is_bigendian, point_step=msg.point_step, row_step=msg.row_step + 32,
                             is_dense=msg.is_dense)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    from rosbags.typesys import Stores, get_typestore

    rgb, scan, source = load_inputs()
    stores = {"rosbags": get_typestore(Stores.LATEST)}
    try:
        import sensor_msgs.msg  # noqa: F401
        stores["rclpy"] = None
    except ImportError:
        pass
    depth = np.random.default_rng(1).uniform(1, 80, (HEIGHT, WIDTH)).astype(np.float32)
    xyz = np.random.default_rng(2).normal(size=(HEIGHT, WIDTH, 3)).astype(np.float32)
    rows = []
    for name, store in stores.items():
        header = convert.make_header(0, "cam", store)
        rgb_msg = convert.numpy_to_image(rgb, "rgb8", header, store)
        bgr_msg = convert.numpy_to_image(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", header, store)
        depth_msg = convert.numpy_to_image(depth, "32FC1", header, store)
        cloud = convert.xyzi_to_cloud(scan, header, store)
        padded = ouster_like(scan, header, store)
        cases = [
            (f"image_to_numpy rgb8 {WIDTH}x{HEIGHT}", lambda: convert.image_to_numpy(rgb_msg)),
            (f"image_to_numpy bgr8 {WIDTH}x{HEIGHT} (-> rgb)", lambda: convert.image_to_numpy(bgr_msg)),
            (f"image_to_numpy 32FC1 {WIDTH}x{HEIGHT}", lambda: convert.image_to_numpy(depth_msg)),
            (f"numpy_to_image rgb8 {WIDTH}x{HEIGHT}", lambda: convert.numpy_to_image(rgb, "rgb8", header, store)),
            (f"numpy_to_image 32FC1 {WIDTH}x{HEIGHT}", lambda: convert.numpy_to_image(depth, "32FC1", header, store)),
            (f"cloud_to_xyz {N_POINTS // 1000}k pts, 16 B (KITTI)", lambda: convert.cloud_to_xyz(cloud)),
            (f"cloud_to_xyz {N_POINTS // 1000}k pts, 48 B, padded rows", lambda: convert.cloud_to_xyz(padded)),
            (f"point_cloud2.read_points_numpy x,y,z {N_POINTS // 1000}k (a view, NaNs kept)",
             lambda: point_cloud2.read_points_numpy(cloud, field_names=["x", "y", "z"])),
            (f"xyzi_to_cloud {N_POINTS // 1000}k pts", lambda: convert.xyzi_to_cloud(scan, header, store)),
            (f"xyzrgb_to_cloud {WIDTH}x{HEIGHT} organized", lambda: convert.xyzrgb_to_cloud(xyz, rgb, header, store)),
        ]
        for label, fn in cases:
            rows.append((label, name, *timed(fn, args.runs)))
    pc2 = "numpy fallback" if "sensor_msgs_py.point_cloud2" in FALLBACKS else "real sensor_msgs_py"
    table = "| conversion | messages | median ms | min ms |\n| --- | --- | ---: | ---: |\n" + "\n".join(
        f"| {label} | {name} | {median:.2f} | {low:.2f} |" for label, name, median, low in rows)
    text = (f"Machine: {machine()}. Data: {source}. Backend: numpy (structured views, no Python loops); "
            f"point_cloud2 is the {pc2}. Median and minimum of {args.runs} runs; load average while "
            f"running {os.getloadavg()[0]:.1f}.\n\n"
            f"Command: `.venv/bin/python bench/convert.py`\n\n{table}\n")
    print(text)
    write_section("convert", "## Message conversion (lumde_depth.ros.convert)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
