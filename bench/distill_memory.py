"""Peak memory of one distillation step: LSPKD (local, 8 neighbours) vs global SPKD (H*W x H*W).

Both losses run on the real feature shapes of ``lspkd_teacher`` and ``lspkd_student`` (read on the
meta device, so nothing is computed to get them), on the same layers, batch and resolution. Each
case runs in a fresh process:

- ``--scope loss`` (default): the teacher and student features exist (the baseline); the step is
  the loss forward + backward (phi included for LSPKD). Memory = the increase over the baseline.
- ``--scope step``: a whole distillation step, teacher forward (no grad) + student forward + loss +
  backward, from the models and inputs as the baseline (the paper's "memory per image").

CPU: the increase of the process's peak resident memory (ru_maxrss); CUDA:
``torch.cuda.max_memory_allocated``. Cases whose estimated global-similarity memory exceeds
``--max-gb`` are not run and show the estimate. Layer sets: the paper's SPKD comparison
({E2, E3, E4} + {D0, D1, D2}, section 3.4.3) and LSPKD's mid-level default ({E1, E2, E3} + {D1, D2, D3}).

    .venv/bin/python bench/distill_memory.py                       # CPU, 912 x 220 (the paper's crop), batch 1
    .venv/bin/python bench/distill_memory.py --device cuda --width 1216 --height 352
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench._report import machine, write_section  # noqa: E402

LAYER_SETS = {"paper-spkd": ("E2", "E3", "E4", "D0", "D1", "D2"), "mid-level": ("E1", "E2", "E3", "D1", "D2", "D3")}
METHODS = ("lspkd", "spkd")
STUDENT_WIDTH = 0.5


def feature_shapes(height: int, width: int, batch: int) -> dict[str, dict[str, tuple[int, ...]]]:
    """Shapes of the teacher's and student's named features for an input of ``height`` x ``width``."""
    from lumde_depth.models import build
    shapes = {}
    with torch.device("meta"):
        rgb, sparse = torch.zeros(batch, 3, height, width), torch.zeros(batch, 1, height, width)
        models = {"teacher": build("lspkd_teacher"), "student": build("lspkd_student", width=STUDENT_WIDTH)}
        for who, model in models.items():
            out = model(rgb, sparse)
            shapes[who] = {k: tuple(v.shape) for k, v in out.items() if k != "depth"}
    return shapes


def spkd_estimate_bytes(shapes: dict[str, tuple[int, ...]], layers: tuple[str, ...]) -> int:
    """Global similarity memory: two kept B x N x N matrices per layer (for backward) + two in backward."""
    sizes = [shapes[layer][0] * (shapes[layer][2] * shapes[layer][3]) ** 2 * 4 for layer in layers]
    return 2 * sum(sizes) + 2 * max(sizes)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _loss(method: str, layers: tuple[str, ...], student_channels: dict[str, int],
          teacher_channels: dict[str, int], device: torch.device) -> torch.nn.Module:
    from lumde_depth.distill.baselines import SPKDTerm
    from lumde_depth.distill.lspkd import LSPKDTerm
    if method == "lspkd":
        return LSPKDTerm(student_channels, teacher_channels, layers).to(device)
    return SPKDTerm(layers).to(device)


def child(case: dict) -> dict:
    """Run one case in this (fresh) process; returns peak memory and time."""
    device = torch.device(case["device"])
    layers, batch = tuple(case["layers"]), case["batch"]
    shapes = feature_shapes(case["height"], case["width"], batch)
    channels = {who: {k: s[1] for k, s in shapes[who].items()} for who in ("student", "teacher")}
    loss = _loss(case["method"], layers, channels["student"], channels["teacher"], device)
    if case["scope"] == "loss":
        teacher_out = {k: torch.randn(shapes["teacher"][k], device=device) for k in layers}
        student_out = {k: torch.randn(shapes["student"][k], device=device, requires_grad=True) for k in layers}

        def step() -> None:
            parts = loss(student_out, teacher_out)
            sum(parts.values()).backward()
    else:
        from lumde_depth.distill.teachers import ModuleTeacher
        from lumde_depth.models import build
        teacher = ModuleTeacher(build("lspkd_teacher").to(device))
        student = build("lspkd_student", width=STUDENT_WIDTH).to(device).train()
        rgb = torch.rand(batch, 3, case["height"], case["width"], device=device)
        sparse = torch.rand(batch, 1, case["height"], case["width"], device=device) * 80

        def step() -> None:
            teacher_out = teacher({"rgb": rgb, "sparse": sparse}, features=layers)
            student_out = student(rgb, sparse)
            parts = loss(student_out, teacher_out)
            (sum(parts.values()) + (student_out["depth"] - teacher_out["depth"]).abs().mean()).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_bytes": max(0, peak - base), "seconds": time.perf_counter() - start}


def run_case(case: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": "out of memory" if "out of memory" in last.lower() or proc.returncode == -9 else last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=220, help="input height (default: the paper's KITTI crop)")
    parser.add_argument("--width", type=int, default=912, help="input width (default: the paper's KITTI crop)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--scope", default="loss", choices=("loss", "step"))
    parser.add_argument("--layer-sets", default=",".join(LAYER_SETS), help=f"comma list of {list(LAYER_SETS)}")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip cases whose SPKD estimate exceeds this")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    load_start = os.getloadavg()[0]
    shapes = feature_shapes(args.height, args.width, args.batch)["teacher"]
    rows, ratios = [], []
    for set_name in args.layer_sets.split(","):
        layers = LAYER_SETS[set_name]
        measured = {}
        for method in METHODS:
            estimate = spkd_estimate_bytes(shapes, layers) if method == "spkd" else 0
            case = {"method": method, "layers": layers, "height": args.height, "width": args.width,
                    "batch": args.batch, "device": args.device, "scope": args.scope}
            result = ({"error": f"skipped: needs ~{estimate / 1e9:.1f} GB > --max-gb {args.max_gb:g}"}
                      if estimate > args.max_gb * 1e9 else run_case(case))
            measured[method] = result
            rows.append((set_name, method, result))
        if all("peak_bytes" in measured[m] for m in METHODS):
            ratios.append((set_name, measured["spkd"]["peak_bytes"] / max(1, measured["lspkd"]["peak_bytes"])))
    used = {layer for layers in LAYER_SETS.values() for layer in layers}
    sizes = ", ".join(f"{k} {v[3]}x{v[2]}" for k, v in shapes.items() if k in used)
    what = ("loss forward + backward on the features" if args.scope == "loss"
            else "teacher forward + student forward + loss + backward")
    how = "torch.cuda.max_memory_allocated increase" if args.device == "cuda" else "peak RSS increase (ru_maxrss)"
    lines = [f"Peak memory of one distillation step ({what}), LSPKD (8-neighbour local similarity + phi) vs "
             "global SPKD (H*W x H*W), same layers, batch and resolution; each case in a fresh process.", "",
             f"- Machine: {machine()} ({platform.system()}); 1-minute load average {load_start:.1f} at the start, "
             f"{os.getloadavg()[0]:.1f} at the end (times are wall-clock and grow with it; memory does not)",
             f"- Backend: torch {args.device}; memory = {how}",
             f"- Input {args.width}x{args.height}, batch {args.batch}; teacher lspkd_teacher, student "
             f"lspkd_student(width={STUDENT_WIDTH}); feature sizes (W x H): {sizes}",
             f"- Command: `.venv/bin/python bench/distill_memory.py --device {args.device} --width {args.width} "
             f"--height {args.height} --batch {args.batch} --scope {args.scope} --layer-sets {args.layer_sets}`", "",
             "| layers | method | peak memory (MB) | time (s) |", "|---|---|---:|---:|"]
    for set_name, method, result in rows:
        mem = f"{result['peak_bytes'] / 2**20:.1f}" if "peak_bytes" in result else result["error"]
        secs = f"{result['seconds']:.2f}" if "seconds" in result else "-"
        lines.append(f"| {set_name} ({', '.join(LAYER_SETS[set_name])}) | {method} | {mem} | {secs} |")
    lines.append("")
    lines += [f"- {name}: SPKD / LSPKD = {ratio:.1f}x (target: LSPKD <= 1/4 of SPKD; paper: 7.2 GB vs 1.71 GB "
              "per image, whole training step)" for name, ratio in ratios]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(f"distill_memory_{args.device}_{args.scope}" if (args.device, args.scope) != ("cpu", "loss")
                      else "distill_memory", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
