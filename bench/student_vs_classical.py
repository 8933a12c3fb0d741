"""The shipped student against the classical baseline (IP-Basic), on held-out and real data.

Run: ``.venv/bin/python bench/student_vs_classical.py [--model FILE] [--frames 12]``.
Writes the table into ``docs/model_card.md`` (section ``student_vs_classical``).

Sets, each through ``DepthCompleter.complete`` at the camera's full resolution, as the node runs it:

- ``synthetic held-out``: frames rendered in memory from a seed the student never saw (KITTI-like
  semi-dense ground truth: <= 80 m, no sky); KITTI metrics.
- ``KITTI object`` / ``KITTI raw`` (real, ../shared/data): no dense ground truth exists, so 20% of
  the projected LiDAR pixels (seeded) are held out as ground truth and the other 80% are the input
  (sparse-to-sparse, as in the data README), in 3 independent draws per frame; KITTI metrics.
- ``Redwood`` and ``NYU v2 / SUN RGB-D / TUM`` (real indoor RGB-D, dense sensor depth): the NYUv2
  protocol's 500 sparse samples as input, NYU metrics (m). The student was trained outdoors only.

Methods: the student as the node runs it (``lidar_align`` on, the default), the student's network
alone (``lidar_align`` off) and IP-Basic (the ``classical`` backend, full resolution).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import machine, write_section  # noqa: E402
from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics, nyu_metrics  # noqa: E402
from lumde_depth.inference import DepthCompleter  # noqa: E402
from lumde_depth.data.depth_io import read_velodyne_bin  # noqa: E402
from lumde_depth.data.rgbd_formats import (read_mm_depth, read_nyu_raw_depth, read_sun_depth,  # noqa: E402
                                           read_tum_depth)

MODEL_CARD = ROOT / "docs" / "model_card.md"
HOLDOUT = 0.2
DRAWS = 3   # hold-out draws per real KITTI frame: the figure averages over draws, not one lucky split
Frame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # rgb, sparse input, gt, K


def holdout(sparse: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split the LiDAR pixels: (input with 80% of them, ground truth with the other 20%)."""
    held = (sparse > 0) & (rng.random(sparse.shape) < HOLDOUT)
    return np.where(held, 0.0, sparse).astype(np.float32), np.where(held, sparse, 0.0).astype(np.float32)


def synthetic_frames(count: int, seed: int) -> Iterator[Frame]:
    from lumde_depth.data.synth import render_frames

    for f, K in render_frames(count, seed):
        yield f.rgb, f.sparse, f.groundtruth, K


def kitti_object_frames(data: Path, seed: int) -> Iterator[Frame]:
    from lumde_depth.geometry import read_kitti_object_calib, project_points

    root = data / "kitti_object" / "training"
    rng = np.random.default_rng(seed)
    for image_path in sorted((root / "image_2").glob("*.png")):
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        h, w = rgb.shape[:2]
        calib = read_kitti_object_calib(root / "calib" / f"{image_path.stem}.txt", image_size=(w, h))
        scan = read_velodyne_bin(root / "velodyne" / f"{image_path.stem}.bin")
        sparse = project_points(scan, calib.T_cam_lidar, calib.P, w, h)
        for _ in range(DRAWS):
            yield (rgb, *holdout(sparse, rng), calib.K)


def kitti_raw_frames(data: Path, seed: int) -> Iterator[Frame]:
    from lumde_depth.data import build_dataset
    from lumde_depth.data.sample import rgb_array

    rng = np.random.default_rng(seed)
    ds = build_dataset("kitti_raw", data / "kitti_raw_tiny", "all")
    for i in range(len(ds)):
        s = ds[i]
        rgb = rgb_array(s["rgb"])
        for _ in range(DRAWS):
            yield (rgb, *holdout(s["sparse"][0].numpy(), rng), s["K"].numpy())


PRIMESENSE_K = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]], np.float32)


def sample_500(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The NYUv2 protocol's input: 500 pixels of the dense depth, drawn uniformly among the valid ones."""
    valid = np.flatnonzero(gt > 1e-4)
    sparse = np.zeros_like(gt)
    pick = rng.choice(valid, size=min(500, valid.size), replace=False)
    sparse.flat[pick] = gt.flat[pick]
    return sparse


def redwood_frames(data: Path, count: int, seed: int) -> Iterator[Frame]:
    root = data / "redwood_livingroom"
    rng = np.random.default_rng(seed)
    images = sorted((root / "image").glob("*.jpg"))
    depths = sorted((root / "depth").glob("*.png"))
    for k in np.linspace(0, len(images) - 1, count).astype(int):
        gt = read_mm_depth(depths[k])
        yield np.asarray(Image.open(images[k]).convert("RGB")), sample_500(gt, rng), gt, PRIMESENSE_K


def indoor_sensor_frames(data: Path, seed: int) -> Iterator[Frame]:
    """One real frame each of NYU v2 (raw Kinect), SUN RGB-D and TUM RGB-D (PrimeSense intrinsics)."""
    root = data / "rgbd_samples" / "other_formats"
    rng = np.random.default_rng(seed)
    for color, depth, reader in (("NYU_color.ppm", "NYU_depth.pgm", read_nyu_raw_depth),
                                 ("SUN_color.jpg", "SUN_depth.png", read_sun_depth),
                                 ("TUM_color.png", "TUM_depth.png", read_tum_depth)):
        gt = reader(root / depth)
        yield np.asarray(Image.open(root / color).convert("RGB")), sample_500(gt, rng), gt, PRIMESENSE_K


def evaluate(completers: dict[str, DepthCompleter], frames: Iterator[Frame],
             metric: Callable[[np.ndarray, np.ndarray], dict[str, float]]) -> dict[str, dict[str, float]]:
    accs = {name: MetricAccumulator(metric) for name in completers}
    for rgb, sparse, gt, K in frames:
        for name, completer in completers.items():
            accs[name].update(completer.complete(rgb, sparse, K), gt)
    return {name: acc.result() for name, acc in accs.items()}


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the held-out sets (shared by the benches that evaluate on them)."""
    parser.add_argument("--frames", type=int, default=12, help="synthetic held-out frames")
    parser.add_argument("--seed", type=int, default=20261121, help="seed of the held-out synthetic drive")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("LUMDE_SHARED_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--no-write", action="store_true", help="print only")


def outdoor_sets(args: argparse.Namespace) -> list[tuple[str, Callable[[], Iterator[Frame]]]]:
    """(title, frames) of the synthetic held-out drive and, where the shared data is, the real KITTI frames."""
    sets = [(f"synthetic held-out (seed {args.seed}, {args.frames} frames, 1242x375)",
             lambda: synthetic_frames(args.frames, args.seed))]
    if args.data.is_dir():
        sets += [("KITTI object, real (6 frames x 3 draws, 20% LiDAR held out)",
                  lambda: kitti_object_frames(args.data, args.seed)),
                 ("KITTI raw 2011_09_26_0023, real (5 frames x 3 draws, 20% LiDAR held out)",
                  lambda: kitti_raw_frames(args.data, args.seed))]
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model file (default: the shipped student)")
    add_set_arguments(parser)
    args = parser.parse_args(argv)
    completers = {"student": DepthCompleter.load(args.model, backend="auto"),
                  "student, network only": DepthCompleter.load(args.model, backend="auto", lidar_align=False),
                  "IP-Basic": DepthCompleter.load(backend="classical")}
    sets: list[tuple[str, str, Iterator[Frame], Callable]] = [
        (title, "kitti", frames(), kitti_metrics) for title, frames in outdoor_sets(args)]
    if args.data.is_dir():
        sets += [("Redwood living room, real indoor (10 frames, 500 samples)", "nyu",
                  redwood_frames(args.data, 10, args.seed), nyu_metrics),
                 ("NYU v2 + SUN RGB-D + TUM, real indoor sensors (3 frames, 500 samples)", "nyu",
                  indoor_sensor_frames(args.data, args.seed), nyu_metrics)]
    rows = []
    for title, protocol, frames, metric in sets:
        result = evaluate(completers, frames, metric)
        for name, m in result.items():
            rmse = f"{m['rmse']:.1f} mm" if protocol == "kitti" else f"{m['rmse']:.3f} m"
            extra = (f"MAE {m['mae']:.1f} mm, iRMSE {m['irmse']:.2f} 1/km" if protocol == "kitti"
                     else f"REL {m['rel']:.3f}, d1 {m['d1']:.3f}")
            rows.append(f"| {title} | {name} | {rmse} | {extra} |")
            print(rows[-1], flush=True)
    student = completers["student"]
    table = "\n".join([
        "## Student vs the classical baseline (measured)",
        "",
        f"Command: `.venv/bin/python bench/student_vs_classical.py`. Machine: {machine()}. Student backend: "
        f"{student.backend_name} on {student.device}, network input {student.input_size[1]}x{student.input_size[0]} "
        "(the image is resized to it and the depth back, as in the node); IP-Basic: lumde_depth's `classical` "
        "backend. `student` is what the node publishes (`lidar_align` on: the depth rescaled to meet the "
        "LiDAR points at the image's resolution); `student, network only` is the network's depth resized "
        "back, without it. Lower RMSE is better.",
        "",
        "| data | method | RMSE | other |",
        "|---|---|---:|---|",
        *rows])
    if not args.no_write:
        write_section("student_vs_classical", table, doc=MODEL_CARD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
