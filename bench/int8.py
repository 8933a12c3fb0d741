"""INT8 on the CPU route: is a statically quantized student faster than fp32 onnxruntime, and does
its accuracy hold?

Run: ``.venv/bin/python bench/int8.py [--model FILE] [--runs 20]``; writes the ``int8`` section of
docs/benchmarks.md.

Each network is exported to ONNX (``lumde_depth.engine.export``) at the shipped student's input size
and quantized by onnxruntime's static quantization (QDQ, per-channel int8 weights, uint8 activations,
calibrated on network inputs prepared by ``DepthCompleter`` from synthetic frames of a seed used
nowhere else), once with the convolutions alone quantized and once with every operator onnxruntime
can quantize. Latency: the node's onnxruntime backend on the CPU, 1 and 2 threads, the variants run
interleaved on the same input (median). Accuracy (the trained student only): the node's path
(``DepthCompleter`` with ``lidar_align``) on the held-out sets of ``bench/student_vs_classical.py``,
KITTI metrics.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import machine, write_section  # noqa: E402
from student_vs_classical import add_set_arguments, evaluate, outdoor_sets, synthetic_frames  # noqa: E402
from lumde_depth.engine.export import QUANTIZED_OPS, export_onnx, quantize_onnx  # noqa: E402
from lumde_depth.cli.export import CALIBRATION_SEED  # noqa: E402
from lumde_depth.engine.metrics import kitti_metrics  # noqa: E402
from lumde_depth.inference import DEFAULT_MODEL, DepthCompleter  # noqa: E402
from lumde_depth.inference.backends import OnnxBackend, median_times, set_inputs  # noqa: E402
from lumde_depth.models import build  # noqa: E402
from lumde_depth.models.io import load_model  # noqa: E402

VARIANTS = {"int8, convolutions": QUANTIZED_OPS, "int8, every quantizable op": None}


def latency(paths: dict[str, Path], size: tuple[int, int], feed: dict[str, np.ndarray], threads: int,
            runs: int) -> dict[str, float]:
    """Median milliseconds of one network run per file, through the node's onnxruntime backend, interleaved."""
    backends = [OnnxBackend(path, size, threads) for path in paths.values()]
    for backend in backends:
        set_inputs(backend, feed)
    return dict(zip(paths, median_times(backends, runs)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model file (default: the shipped student)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per variant and thread count")
    parser.add_argument("--calibration-frames", type=int, default=8)
    add_set_arguments(parser)
    args = parser.parse_args(argv)

    model, meta = load_model(args.model or DEFAULT_MODEL)
    size = tuple(meta["input_size"])
    params = sum(p.numel() for p in model.parameters()) / 1e6
    networks = {f"student ({model.arch_name}, {params:.2f}M)": (model, meta),
                "lspkd_student width 0.5 (7.90M, untrained: speed only)": (build("lspkd_student", width=0.5), meta)}
    work = Path(tempfile.mkdtemp(prefix="lumde_int8_"))
    files: dict[str, dict[str, Path]] = {}
    feeds: list[dict[str, np.ndarray]] = []
    for index, (label, (net, net_meta)) in enumerate(networks.items()):
        fp32 = export_onnx(net, work / f"net{index}_fp32.onnx", size, net_meta)
        if not feeds:
            prepare = DepthCompleter.load(fp32, backend="onnxruntime", lidar_align=False, warmup=0)
            feeds = [prepare.network_inputs(rgb, sparse, K)
                     for rgb, sparse, _, K in synthetic_frames(args.calibration_frames, CALIBRATION_SEED)]
        files[label] = {"fp32": fp32, **{name: quantize_onnx(fp32, work / f"net{index}_{k}.onnx", feeds, ops)
                                         for k, (name, ops) in enumerate(VARIANTS.items())}}
    speed_rows = []
    for label, paths in files.items():
        for threads in (1, 2):
            ms = latency(paths, size, feeds[0], threads, args.runs)
            speed_rows.append(f"| {label} | {threads} | " + " | ".join(f"{ms[name]:.1f}" for name in paths) + " |")
            print(speed_rows[-1], flush=True)

    student_files = next(iter(files.values()))
    completers = {name: DepthCompleter.load(path, backend="onnxruntime") for name, path in student_files.items()}
    accuracy_rows = []
    for title, frames in outdoor_sets(args):
        result = evaluate(completers, frames(), kitti_metrics)
        accuracy_rows.append(f"| {title} | " + " | ".join(
            f"{m['rmse']:.1f} / {m['mae']:.1f}" for m in result.values()) + " |")
        print(accuracy_rows[-1], flush=True)

    load = os.getloadavg()[0]
    names = list(student_files)
    h, w = size
    markdown = "\n".join([
        "## INT8 quantization of the student (`bench/int8.py`)",
        "",
        f"Command: `.venv/bin/python bench/int8.py`. Machine: {machine()}. Network input {w}x{h} (the shipped "
        "student's), onnxruntime CPU execution provider, static QDQ quantization (per-channel int8 weights, "
        f"uint8 activations) calibrated on {args.calibration_frames} synthetic frames of seed {CALIBRATION_SEED}; "
        "`int8, convolutions` quantizes Conv and ConvTranspose only, `int8, every quantizable op` lets "
        "onnxruntime quantize what it can (pooling, additions, concatenations too). 1-minute load average at "
        f"the end: {load:.1f} on {os.cpu_count()} cores (other work slows the 2-thread runs most).",
        "",
        "Network latency through the node's onnxruntime backend (no busy-waiting between operators), median "
        "ms of one run (variants interleaved on the same input):",
        "",
        "| network | threads | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
        *speed_rows,
        "",
        "Accuracy of the shipped student through `DepthCompleter` as the node runs it (`lidar_align` on), "
        "RMSE / MAE in mm:",
        "",
        "| data | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        *accuracy_rows])
    print("\n" + markdown)
    if not args.no_write:
        write_section("int8", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
