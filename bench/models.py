"""Params, GFLOPs and CPU latency of every registered model, next to the papers' figures.

    .venv/bin/python bench/models.py [--runs 3] [--threads 1] [--onnx] [--no-write]

Writes the ``models`` section of docs/benchmarks.md. FLOPs are counted at 1216x352 (KITTI) and
304x228 (NYUv2) and at the papers' own resolutions; latency is PyTorch eager (and, with --onnx,
onnxruntime with the same thread count) at 304x228, batch 1, on this machine's CPU, 1 thread by
default. The teacher is timed once (seconds per frame). A few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.engine.export import ExportError, export_onnx  # noqa: E402
from lumde_depth.engine.profile import (build_spec, count_flops, count_params, default_specs,  # noqa: E402
                                        example_inputs, markdown_table, paper_note, profile_spec)

LATENCY_SIZE = (228, 304)
#: Student / teacher ratios the papers state: (student spec, teacher spec, params %, compute %, where).
RATIOS = (("lspkd_student:width=0.5", "lspkd_teacher", 16.53, 59.22 / 349.36 * 100, "LSPKD KITTI"),
          ("lspkd_student:width=0.125", "lspkd_teacher", 1.30, 1.46 / 112.32 * 100, "LSPKD NYUv2"),
          ("lumde_student", "lumde_teacher", 22.8, 4.8, "LUMDE abstract / DESIGN"))


def onnx_latency(spec: str, runs: int) -> tuple[float, float]:
    """Median onnxruntime (CPU) wall-clock and process CPU time in ms of the exported model at
    LATENCY_SIZE (one session, created and warmed up before timing)."""
    import onnxruntime as ort
    model = build_spec(spec).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "m.onnx", LATENCY_SIZE)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same threads as PyTorch
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), example_inputs(model, LATENCY_SIZE))}
    session.run(None, feeds)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        session.run(None, feeds)
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def ratio_table(specs: list[str]) -> str:
    lines = ["| student / teacher | params % (ours) | params % (paper) | FLOPs % 304x228 (ours) | compute % (paper) |",
             "|---|---|---|---|---|"]
    for student, teacher, p_params, p_flops, where in RATIOS:
        if student not in specs or teacher not in specs:
            continue
        s, t = build_spec(student), build_spec(teacher)
        params = 100 * count_params(s) / count_params(t)
        flops = 100 * count_flops(s, LATENCY_SIZE) / count_flops(t, LATENCY_SIZE)
        lines.append(f"| `{student}` / `{teacher}` | {params:.2f} | {p_params:.2f} ({where}) | {flops:.2f} | {p_flops:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per small model (the teacher: 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch and onnxruntime (default 1: on a shared machine more threads "
                             "wait on each other at every op; 0 = torch's default)")
    parser.add_argument("--onnx", action="store_true", help="also time onnxruntime for models under 20M params")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    specs = default_specs()
    rows = []
    for spec in specs:
        row = profile_spec(spec, latency_size=LATENCY_SIZE, runs=args.runs, large_runs=1)
        if args.onnx and row["params_m"] < 20:
            try:
                row["onnx_ms"], row["onnx_cpu_ms"] = onnx_latency(spec, args.runs)
            except ExportError:  # not a depth network (pose net, critic)
                pass
        rows.append(row)
        print(f"  {spec}: {row['params_m']:.3f}M params, {row.get('latency_ms', float('nan')):.1f} ms", flush=True)
    table = markdown_table(rows)
    phi = {w: count_params(build_spec(f"lspkd_student:width={w},adapters=true")) / 1e6 for w in (0.5, 0.125)}
    parts = [
        "## Models: parameters, FLOPs, latency",
        f"Machine: {machine()}. Backend: PyTorch eager, CPU, {torch.get_num_threads()} thread(s), batch 1; "
        f"latency = median of {args.runs} runs (the teacher: 1) at {LATENCY_SIZE[1]}x{LATENCY_SIZE[0]}; "
        "CPU time = process CPU time of a run (all threads): the work itself. 1-minute load average at the "
        f"end of the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs inflate wall-clock "
        "times). Command: `.venv/bin/python bench/models.py" + (" --onnx" if args.onnx else "")
        + (f" --threads {args.threads}" if args.threads != 1 else "") + "`.",
        table,
        paper_note(),
        f"LSPKD student parameters: the paper's 8.56M / 0.66M match the student *with* the distillation "
        f"adapters phi (1x1 convs to the teacher's widths, `lspkd_student:adapters=true`): "
        f"{phi[0.5]:.2f}M / {phi[0.125]:.3f}M; the deployed network (table) has no adapters. "
        "CDSPN's thesis gives no FLOPs; most of CDSPN's FLOPs are the dense 3x3 DA-CSPN++ affinity heads "
        "at full resolution (kept from PE-Net as the thesis does).",
        "### Student / teacher ratios",
        ratio_table(specs),
    ]
    if args.onnx:
        parts += ["### onnxruntime vs PyTorch (CPU, 304x228)",
                  "| model | PyTorch eager (ms) | onnxruntime (ms) | PyTorch CPU time (ms) | onnxruntime CPU time (ms) |\n"
                  "|---|---|---|---|---|\n" + "\n".join(
                      f"| `{r['model']}` | {r['latency_ms']:.1f} | {r['onnx_ms']:.1f} | {r['cpu_ms']:.1f} | "
                      f"{r['onnx_cpu_ms']:.1f} |" for r in rows if "onnx_ms" in r)]
    markdown = "\n\n".join(parts)
    print(markdown)
    if not args.no_write:
        write_section("models", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
