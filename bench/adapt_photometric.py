"""``lumde adapt`` with and without its photometric term, on a real KITTI raw drive with OXTS poses.

Run: ``.venv/bin/python bench/adapt_photometric.py [--drive DIR] [--weights 0 1 10 30] [--seeds 0 1]
[--steps 200] [--runs DIR]``. Writes the table into ``docs/training.md`` (section ``adapt_photometric``).

Each (weight, seed) is one ``lumde adapt`` run on the drive (``holdout`` 0.3: the last frames are never
trained on; ``threads`` 1), kept in ``--runs`` (a run whose ``report.json`` exists is reused). Two scores
on the held-out frames, both for the model as the node runs it (full resolution, all of the frame's LiDAR
as input for the second):

- the run's own report: RMSE / MAE against 20 % of the LiDAR points held out of the input;
- the photometric error of the completed depth: each held-out frame's neighbour among the held-out
  frames warped into it through that depth and the OXTS relative pose (``0.85 (1 - SSIM) / 2 + 0.15 L1``,
  pixels inside the neighbour's view), over all pixels and over the rows above the LiDAR's top row, where
  no LiDAR point constrains the depth (lower is better; it is what the photometric term trains for, on
  frames it never saw).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import machine, write_section  # noqa: E402
from lumde_depth.data.recording import open_recording  # noqa: E402
from lumde_depth.data.rig_frame import RigFrame  # noqa: E402
from lumde_depth.distill.selfsup import photometric_errors, warp_sources  # noqa: E402
from lumde_depth.engine.adapt import adapt  # noqa: E402
from lumde_depth.inference import DepthCompleter  # noqa: E402

DOC = ROOT / "docs" / "training.md"
DRIVE = ROOT.parent / "shared" / "data" / "kitti_raw_tiny" / "2011_09_26" / "2011_09_26_drive_0023_sync"
HOLDOUT = 0.3


def above_lidar(sparse: np.ndarray) -> np.ndarray:
    """Rows above the first row in which at least 1 % of the columns have a LiDAR point."""
    rows = np.nonzero((sparse > 0).mean(1) >= 0.01)[0]
    mask = np.zeros(sparse.shape, bool)
    mask[:rows[0] if rows.size else sparse.shape[0]] = True
    return mask


def photometric_score(completer: DepthCompleter, frames: list[RigFrame]) -> tuple[float, float]:
    """Mean photometric error (all pixels, above the LiDAR) of each frame warped from the next / previous."""
    errors_all, errors_top = [], []
    for target, source in [(a, b) for a, b in zip(frames, frames[1:])] + [(b, a) for a, b in zip(frames, frames[1:])]:
        depth = completer.complete(target.rgb, target.depth, target.K)
        image = lambda f: torch.from_numpy(f.rgb.transpose(2, 0, 1).astype(np.float32) / 255)[None]  # noqa: E731
        pose = torch.from_numpy(np.linalg.inv(source.T_world_cam) @ target.T_world_cam).float()[None, None]
        d = torch.from_numpy(depth)[None, None]
        warped, inside = warp_sources(image(source)[:, None], d.clamp_min(0.1), pose,
                                      torch.from_numpy(target.K).float()[None])
        error = photometric_errors(image(target), warped)[0, 0].numpy()
        valid = inside[0, 0].numpy() & (depth > 0)
        errors_all.append(error[valid].mean())
        errors_top.append(error[valid & above_lidar(target.depth)].mean())
    return float(np.mean(errors_all)), float(np.mean(errors_top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drive", type=Path, default=DRIVE)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 10.0, 30.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench_adapt_photometric"))
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    recording = open_recording(args.drive)
    held_out = list(recording.frames(range(len(recording) - round(HOLDOUT * len(recording)), len(recording))))
    rows = ["| photometric weight | seed | RMSE before → after (mm) | MAE before → after (mm) | network only RMSE "
            "after (mm) | photometric error, all / above the LiDAR | s / step |", "|---:|---:|---|---|---:|---|---:|"]
    shipped = photometric_score(DepthCompleter.load(backend="torch", warmup=0), held_out)
    classical = photometric_score(DepthCompleter.load(backend="classical"), held_out)
    for seed in args.seeds:
        for weight in args.weights:
            out = args.runs / f"w{weight:g}_s{seed}"
            if not (out / "report.json").is_file():
                adapt(recording, out, config={"steps": args.steps, "holdout": HOLDOUT, "threads": 1, "seed": seed,
                                              "photometric": weight, "progress": False, "log_every": 50})
            report = json.loads((out / "report.json").read_text())
            before, after = report["before"]["before"], report["after"]["after"]
            log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
            per_step = log[-1]["time_s"] / log[-1]["step"]
            photo = photometric_score(DepthCompleter.load(out / "model.pt", backend="torch", warmup=0), held_out)
            rows.append(f"| {weight:g} | {seed} | {before['rmse']:.1f} → {after['rmse']:.1f} | {before['mae']:.1f} → "
                        f"{after['mae']:.1f} | {report['after']['after, network only']['rmse']:.1f} | "
                        f"{photo[0]:.4f} / {photo[1]:.4f} | {per_step:.2f} |")
            print(rows[-1], flush=True)
    table = "\n".join([
        f"Command: `.venv/bin/python bench/adapt_photometric.py --weights {' '.join(f'{w:g}' for w in args.weights)} "
        f"--seeds {' '.join(map(str, args.seeds))} --steps {args.steps}`. Machine: {machine()} (1 thread). "
        f"Drive: `{args.drive.name}` ({len(recording)} frames, OXTS poses), `lumde adapt` {args.steps} steps on the "
        f"first {len(recording) - len(held_out)} frames, scored on the last {len(held_out)} (never trained on); the "
        "seed also draws the scoring hold-out, so compare rows of the same seed. Photometric error of the "
        f"completed depth on the held-out pair (lower is better): shipped student {shipped[0]:.4f} / {shipped[1]:.4f}, "
        f"IP-Basic {classical[0]:.4f} / {classical[1]:.4f}. Seconds per step: the run's own clock on a shared, "
        "loaded machine (indicative only).", "", *rows])
    print(table)
    if not args.no_doc:
        write_section("adapt_photometric", table, DOC)


if __name__ == "__main__":
    main()
