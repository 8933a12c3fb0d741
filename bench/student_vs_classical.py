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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import machine, write_section  # noqa: E402
from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics, nyu_metrics  # noqa: E402
from lumde_depth.inference import DepthCompleter  # noqa: E402
from lumde_depth.data import real_sets  # noqa: E402
from lumde_depth.data.rig_frame import RigFrame  # noqa: E402

MODEL_CARD = ROOT / "docs" / "model_card.md"
DRAWS = 3   # hold-out draws per real KITTI frame: the figure averages over draws, not one lucky split
Frame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # rgb, sparse input, gt, K


def synthetic_frames(count: int, seed: int) -> Iterator[Frame]:
    from lumde_depth.data.synth import render_frames

    for f, K in render_frames(count, seed):
        yield f.rgb, f.sparse, f.groundtruth, K


def lidar_frames(frames: Iterator[RigFrame], seed: int) -> Iterator[Frame]:
    """Sparse-to-sparse: per frame, DRAWS seeded hold-outs of 20 % of its LiDAR pixels as ground truth."""
    rng = np.random.default_rng(seed)
    for f in frames:
        for _ in range(DRAWS):
            yield (f.rgb, *real_sets.holdout(f.depth, rng), f.K)


def sampled_frames(frames: Iterator[RigFrame], seed: int) -> Iterator[Frame]:
    """NYUv2 protocol: 500 points of the dense depth as input, the dense depth as ground truth."""
    rng = np.random.default_rng(seed)
    for f in frames:
        yield f.rgb, real_sets.sample_points(f.depth, rng), f.depth, f.K


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
                  lambda: lidar_frames(real_sets.kitti_object_frames(args.data), args.seed)),
                 ("KITTI raw 2011_09_26_0023, real (7 frames x 3 draws, 20% LiDAR held out)",
                  lambda: lidar_frames(real_sets.kitti_raw_frames(args.data), args.seed))]
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
                  sampled_frames(real_sets.redwood_frames(args.data, 10), args.seed), nyu_metrics),
                 ("NYU v2 + SUN RGB-D + TUM, real indoor sensors (3 frames, 500 samples)", "nyu",
                  sampled_frames(real_sets.rgbd_sensor_frames(args.data), args.seed), nyu_metrics)]
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
