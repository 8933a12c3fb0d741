"""LiDAR -> image projection speed: lumde_depth.geometry.project_points (vectorized numpy) against a
plain per-point Python loop, on a 120,000-point cloud into a 1242x375 KITTI image.

Run: ``.venv/bin/python bench/projection.py [--runs 100] [--loop-runs 3]``. Uses a real KITTI
HDL-64E scan (>= 120k points) from ../shared/data when present, else a generated 64-beam scan. Prints a table and
writes the ``projection`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.geometry import project_to_pixels, read_kitti_object_calib, splat_nearest  # noqa: E402
from lumde_depth.geometry import project_points  # noqa: E402
from lumde_depth.data.depth_io import read_velodyne_bin  # noqa: E402

N_POINTS = 120_000
WIDTH, HEIGHT = 1242, 375
TARGET_MS = 5.0


def shared_data() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("LUMDE_SHARED_DATA", root.parent / "shared" / "data"))


def generated_scan(n: int, seed: int = 0) -> np.ndarray:
    """A 64-beam scan of a flat road with walls 8 m either side (HDL-64E angles, 1.73 m mount)."""
    rng = np.random.default_rng(seed)
    elevation = np.deg2rad(rng.choice(np.linspace(-24.8, 2.0, 64), n))
    azimuth = rng.uniform(-np.pi, np.pi, n)
    direction = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                          np.sin(elevation)], axis=1)
    with np.errstate(divide="ignore"):
        to_ground = np.where(direction[:, 2] < 0, -1.73 / direction[:, 2], np.inf)
        to_wall = np.abs(8.0 / direction[:, 1])
    rng_m = np.minimum(np.minimum(to_ground, to_wall), 120.0) + rng.normal(0, 0.02, n)
    return np.c_[direction * rng_m[:, None], rng.uniform(0, 1, n)].astype(np.float32)


def load_cloud() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(points, T_cam_lidar, P, description of the source)."""
    root = shared_data() / "kitti_object" / "training"
    scans = sorted(root.glob("velodyne/*.bin"), key=lambda p: p.stat().st_size) if root.is_dir() else []
    scans = [p for p in scans if p.stat().st_size >= N_POINTS * 16]  # float32 x, y, z, reflectance
    if scans:
        scan = read_velodyne_bin(scans[-1])
        calib = read_kitti_object_calib(root / "calib" / f"{scans[-1].stem}.txt")
        source = (f"real KITTI HDL-64E scan kitti_object/training/velodyne/{scans[-1].name} of {len(scan):,} "
                  f"points, cut to the first {N_POINTS:,}")
        return scan[:N_POINTS], calib.T_cam_lidar, calib.P, source
    P = np.array([[721.5377, 0, 609.5593, 44.85728], [0, 721.5377, 172.854, 0.2163791], [0, 0, 1, 0.002745884]])
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    T[:3, 3] = [0.06, -0.08, -0.27]
    return generated_scan(N_POINTS), T, P, "generated 64-beam scan (no shared data found)"


def python_loop(points: np.ndarray, T: np.ndarray, P: np.ndarray, width: int, height: int,
                min_depth: float = 0.1) -> np.ndarray:
    """The obvious per-point implementation: one Python iteration per point."""
    depth = [[0.0] * width for _ in range(height)]
    R, t, K = T[:3, :3].tolist(), T[:3, 3].tolist(), P[:, :3].tolist()
    for x, y, z, *_ in points.tolist():
        cx = R[0][0] * x + R[0][1] * y + R[0][2] * z + t[0]
        cy = R[1][0] * x + R[1][1] * y + R[1][2] * z + t[1]
        cz = R[2][0] * x + R[2][1] * y + R[2][2] * z + t[2]
        if not cz >= min_depth or math.isinf(cz):
            continue
        col = math.floor(K[0][0] * cx / cz + K[0][2] + 0.5)
        row = math.floor(K[1][1] * cy / cz + K[1][2] + 0.5)
        if 0 <= col < width and 0 <= row < height and (depth[row][col] == 0.0 or cz < depth[row][col]):
            depth[row][col] = cz
    return np.asarray(depth, dtype=np.float32)


def timed(fn, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and thread CPU time of each run, in ms (CPU time leaves out waiting for a core)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return np.array(wall) * 1e3, np.array(cpu) * 1e3


def minimum_at(rows: np.ndarray, cols: np.ndarray, z: np.ndarray) -> np.ndarray:
    out = np.full((HEIGHT, WIDTH), np.inf, dtype=np.float32)
    np.minimum.at(out, (rows, cols), z)
    out[np.isinf(out)] = 0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="timed runs of the numpy projection")
    parser.add_argument("--loop-runs", type=int, default=3, help="timed runs of the Python loop")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    points, T, P, source = load_cloud()
    ours = project_points(points, T, P, WIDTH, HEIGHT)
    loop = python_loop(points, T, P, WIDTH, HEIGHT)
    if not np.allclose(ours, loop, rtol=1e-5):
        print(f"MISMATCH: numpy and loop projections differ at {int(np.sum(~np.isclose(ours, loop)))} pixels")
        return 1
    timed(lambda: project_points(points, T, P, WIDTH, HEIGHT), 5)  # warm-up
    numpy_ms, numpy_cpu = timed(lambda: project_points(points, T, P, WIDTH, HEIGHT), args.runs)
    loop_ms, loop_cpu = timed(lambda: python_loop(points, T, P, WIDTH, HEIGHT), args.loop_runs)
    rows, cols, z, _ = project_to_pixels(points, T, P, WIDTH, HEIGHT)
    sort_ms = timed(lambda: splat_nearest(rows, cols, z, HEIGHT, WIDTH), args.runs)[1]
    at_ms = timed(lambda: minimum_at(rows, cols, z), args.runs)[1]

    speedup = np.median(loop_ms) / np.median(numpy_ms)
    verdict = "meets" if np.median(numpy_ms) <= TARGET_MS else "MISSES"
    table = "\n".join([
        "| implementation | runs | median ms | p90 ms | median CPU ms | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| `project_points` (numpy, vectorized) | {args.runs} | {np.median(numpy_ms):.2f} | "
        f"{np.percentile(numpy_ms, 90):.2f} | {np.median(numpy_cpu):.2f} | {speedup:.0f}x |",
        f"| per-point Python loop | {args.loop_runs} | {np.median(loop_ms):.1f} | "
        f"{np.percentile(loop_ms, 90):.1f} | {np.median(loop_cpu):.1f} | 1x |",
        "",
        f"z-buffer step alone ({len(z):,} in-image points, CPU ms): sort of int64 keys (used) "
        f"{np.median(sort_ms):.2f}, `np.minimum.at` {np.median(at_ms):.2f} (median of {args.runs}).",
    ])
    markdown = "\n".join([
        "## LiDAR -> image projection",
        "",
        f"`.venv/bin/python bench/projection.py` — {N_POINTS:,} points ({source}, "
        f"{int(np.count_nonzero(ours)):,} pixels hit) into {WIDTH}x{HEIGHT}, backend numpy {np.__version__}, "
        f"{platform.system()} {platform.machine()}; {machine()}. Both implementations give the same depth image.",
        "",
        table,
        "",
        f"Target median (wall clock) <= {TARGET_MS:.0f} ms: {verdict}. 1-minute load average at the end of the "
        f"run {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other jobs inflate wall-clock times, the CPU "
        f"time column is the work itself.",
    ])
    print(markdown)
    if not args.no_write:
        write_section("projection", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
