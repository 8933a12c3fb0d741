"""The shipped monocular student as the node runs it in camera-only mode, on held-out and real frames.

Run: ``.venv/bin/python bench/mono_student.py [--model FILE] [--compare LABEL=FILE ...]``; writes the
``mono_student`` section of docs/model_card.md.

Each frame goes through ``DepthCompleter.complete(rgb, None, K)`` at the camera's full resolution.
Two scales, as in the node: ``median`` (per image, from the ground truth: the monocular protocol,
shape only) and ``LiDAR`` (``median(LiDAR / prediction)`` over the frame's input LiDAR points:
what mode ``auto`` multiplies by while the LiDAR is down). Sets (those of
``bench/student_vs_classical.py``): synthetic held-out frames (dense ground truth, <= 80 m), and the
real KITTI object and raw frames, whose projected LiDAR is split 80 % input (the scale) / 20 % held
out (the ground truth). The untrained network is the floor a trained one must leave.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import machine, write_section  # noqa: E402
from student_vs_classical import Frame, add_set_arguments, outdoor_sets  # noqa: E402
from lumde_depth.engine.metrics import MetricAccumulator, mono_metrics  # noqa: E402
from lumde_depth.geometry.scale import lidar_scale  # noqa: E402
from lumde_depth.inference import DEFAULT_MONO_MODEL, DepthCompleter  # noqa: E402
from lumde_depth.models import build  # noqa: E402
from lumde_depth.models.io import load_model, save_model  # noqa: E402

MODEL_CARD = ROOT / "docs" / "model_card.md"


def scaled_metrics(completer: DepthCompleter, frames: Iterator[Frame]) -> dict[str, dict[str, float]]:
    """Mean monocular metrics with the median (ground-truth) scale and with the LiDAR scale."""
    median, lidar = MetricAccumulator(mono_metrics), MetricAccumulator(mono_metrics, median_scale=False)
    scales = []
    for rgb, sparse, gt, K in frames:
        depth = completer.complete(rgb, None, K)
        median.update(depth, gt)
        scales.append(lidar_scale(depth, sparse))
        if np.isfinite(scales[-1]):
            lidar.update(depth * scales[-1], gt)
    return {"median": median.result(), "lidar": {**lidar.result(), "scale": float(np.nanmedian(scales))}}


def untrained_like(model_file: Path, out: Path) -> Path:
    """A model file with the same architecture and metadata as ``model_file`` and seed-0 initial weights."""
    model, meta = load_model(model_file)
    torch.manual_seed(0)
    return save_model(out, build(model.arch_name, **model.arch_kwargs), meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MONO_MODEL, help="default: the shipped one")
    parser.add_argument("--compare", nargs="*", default=[], metavar="LABEL=FILE",
                        help="other monocular model files to put beside it")
    add_set_arguments(parser)
    args = parser.parse_args(argv)

    floor = untrained_like(args.model, Path(os.environ.get("TMPDIR", "/tmp")) / "lumde_mono_untrained.pt")
    files = {"shipped monocular student" if args.model == DEFAULT_MONO_MODEL else args.model.name: args.model,
             **dict(item.split("=", 1) for item in args.compare), "untrained (floor)": floor}
    completers = {label: DepthCompleter.load(path, backend="auto") for label, path in files.items()}
    rows = []
    for title, frames in outdoor_sets(args):
        for label, completer in completers.items():
            m = scaled_metrics(completer, frames())
            rows.append(f"| {title} | {label} | {m['median']['d1']:.3f} | {m['median']['abs_rel']:.3f} | "
                        f"{m['lidar']['d1']:.3f} | {m['lidar']['abs_rel']:.3f} | {m['lidar']['rmse']:.2f} | "
                        f"{m['lidar']['scale']:.3g} |")
            print(rows[-1], flush=True)
    shipped = completers[next(iter(completers))]
    h, w = shipped.input_size
    table = "\n".join([
        "## Monocular student: camera-only depth (measured)",
        "",
        f"Command: `.venv/bin/python bench/mono_student.py{''.join(f' --compare {c!r}' for c in args.compare)}`. "
        "Machine: "
        f"{machine()}. Backend {shipped.backend_name} on {shipped.device}; the image is resized to the network's "
        f"{w}x{h} and the depth back, as in the node. δ1 and AbsRel with the per-image median scale (shape "
        "only), then with the LiDAR scale the node uses in mode `auto` (median LiDAR / prediction over the "
        "frame's input points): δ1, AbsRel, RMSE (m) and the median scale factor. Depth capped at 80 m.",
        "",
        "| data | model | δ1, median scale ↑ | AbsRel, median scale ↓ | δ1, LiDAR scale ↑ | AbsRel, LiDAR scale ↓ "
        "| RMSE (m), LiDAR scale ↓ | LiDAR scale factor |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows])
    if not args.no_write:
        write_section("mono_student", table, doc=MODEL_CARD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
