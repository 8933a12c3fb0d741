"""What LUMDE distillation buys a monocular student, on synthetic sequences with held-out frames.

Rows: the LUMDE teacher (ResNet34 + Monodepth2 decoder), the separable student trained alone
(self-supervised only), the student distilled from that teacher without and with the adversarial
term (Transformer critic, WGAN-GP). Each row runs its ``config/train/synthetic_lumde_*.yaml`` with
the same seed, data, crop and step budget; the students distil from the teacher of the first row.

Training: triplets of synthetic KITTI raw drives (seed 0). Evaluation: other scenes (seed 1,
KITTI depth-completion layout, whose dense ground truth the training never sees), monocular
protocol: AbsRel, RMSE, δ1 after per-image median scaling, and δ1 / AbsRel with the metric scale
recovered from the LiDAR (the node's ``auto`` mode). Written to the ``mono_gain`` section of
docs/benchmarks.md, with the paper's claim checked: the distilled student within 2.6 % δ1 of the
teacher, and better than the student trained alone.

    .venv/bin/python bench/mono_gain.py --quick     # minutes on a CPU: tiny budget, a direction only
    .venv/bin/python bench/mono_gain.py             # the full budget (hours on a CPU; use a GPU)
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.engine.datasets import build_split  # noqa: E402
from lumde_depth.engine.evaluate import evaluate  # noqa: E402
from lumde_depth.engine.experiment import ExperimentConfig, load_experiment  # noqa: E402
from lumde_depth.engine.profile import count_flops, count_params  # noqa: E402
from lumde_depth.engine.trainer import run  # noqa: E402

CONFIGS = ROOT / "config" / "train"
PAPER_D1_GAP = 2.6  # % of δ1 the LUMDE student loses against its teacher (NYUv2, abstract)


@dataclass(frozen=True)
class Row:
    label: str
    config: str
    distill: bool


ROWS = (
    Row("teacher (ResNet34)", "synthetic_lumde_teacher", False),
    Row("student alone", "synthetic_lumde_student", False),
    Row("student + KD (pixel, pair-wise)", "synthetic_lumde_distill_noadv", True),
    Row("student + KD + adversarial (LUMDE)", "synthetic_lumde_distill", True),
)

#: mode -> (train frames, train drives, eval frames, steps per row, batch, crop (H, W))
SETTINGS = {"quick": (48, 4, 12, 150, 2, (64, 192)), "full": (400, 8, 40, 2000, 4, (88, 304))}
#: Quarter-resolution frames; a sparser LiDAR keeps KITTI's ~5 % projected density at that size.
SYNTH = ["--set", "camera_scale=0.25", "--set", "lidar.azimuth_step_deg=2.0"]


def make_data(folder: Path, layout: str, frames: int, sequences: int, seed: int) -> Path:
    """Synthetic drives in ``layout`` (written once per folder); for kitti_dc every drive is val."""
    if (folder / "DONE").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    extra = ["--set", f"val_sequences={sequences}"] if layout == "kitti_dc" else []
    cmd = [sys.executable, "-m", "lumde_depth.cli.main", "synth", "--out", str(folder), "--frames", str(frames),
           "--sequences", str(sequences), "--seed", str(seed), "--layout", layout, *SYNTH, *extra]
    print("generating data:", " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    (folder / "DONE").write_text(" ".join(cmd[3:]) + "\n")
    return folder


def row_config(row: Row, train: Path, held_out: Path, teacher: Path, steps: int, batch: int,
               crop: tuple[int, int], eval_frames: int, lr: float | None = None) -> ExperimentConfig:
    """The row's config with the shared budget, data, crop, teacher (and learning rate, if given)."""
    size = f"[{crop[0]}, {crop[1]}]"
    cfg = load_experiment(CONFIGS / f"{row.config}.yaml", [
        f"data.root={train}", f"data.val_root={held_out}", f"data.batch_size={batch}",
        f"data.max_val_samples={eval_frames}", f"data.train_kwargs.size={size}", f"data.val_kwargs.size={size}",
        "seed=0", "device=cpu", "log.progress=false", f"checkpoint.every={steps}", "checkpoint.keep=1",
        "eval.every=0", f"optim.step_size={max(1, round(0.75 * steps))}"])
    cfg.stages[0].steps = steps
    cfg.stages[0].lr = lr or cfg.stages[0].lr
    if row.distill:
        cfg.teacher.source = str(teacher)
    return cfg


def claim_lines(results: dict[str, dict[str, float]]) -> list[str]:
    """The paper's claims, checked on the measured δ1 (median scaling)."""
    labels = [r.label for r in ROWS]
    teacher, alone, noadv, lumde = (round(results[label]["d1"], 3) for label in labels)  # the printed precision
    gap_points = 100 * (teacher - lumde)
    gap_relative = 100 * (teacher - lumde) / max(teacher, 1e-9)
    if lumde > teacher:  # a teacher below its own student has not learned enough to test the claim
        verdict = "not tested: the teacher is below its student, so it is not trained enough"
    else:
        verdict = "holds here" if gap_points <= PAPER_D1_GAP else "does not hold here"
    return [
        f"- Distilled student (LUMDE) vs teacher: δ1 {lumde:.3f} vs {teacher:.3f}, a gap of {gap_points:.1f} points "
        f"({gap_relative:.1f} % relative); paper: ≤ {PAPER_D1_GAP} points -> **{verdict}**.",
        f"- Distilled student vs the student trained alone: δ1 {lumde:.3f} vs {alone:.3f} -> "
        f"**{'better' if lumde > alone else 'not better'}**; without the adversarial term: {noadv:.3f} "
        f"({'better' if noadv > alone else 'not better'} than alone; the adversarial term "
        f"{'adds' if lumde > noadv else 'does not add'} {100 * (lumde - noadv):+.1f} points).",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budget (minutes on a CPU)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per row (overrides the mode)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a shared / oversubscribed machine)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of every row (default: the configs' 1e-4, Monodepth2's)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "mono_gain")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    frames, sequences, eval_frames, steps, batch, crop = SETTINGS[mode]
    steps = args.steps or steps
    torch.set_num_threads(args.threads)
    train = make_data(args.out / f"train_{mode}", "kitti_raw", frames, sequences, seed=0)
    held_out = make_data(args.out / f"heldout_{mode}", "kitti_dc", eval_frames, 2, seed=1)
    runs = args.out / mode
    teacher = runs / ROWS[0].config / "model.pt"
    results: dict[str, dict[str, float]] = {}
    for row in ROWS:
        run_dir = runs / row.config
        cfg = row_config(row, train, held_out, teacher, steps, batch, crop, eval_frames, args.lr)
        shutil.rmtree(run_dir, ignore_errors=True)
        started = time.perf_counter()
        result = run(cfg, run_dir, distill=row.distill)
        seconds = time.perf_counter() - started
        val_set = build_split(cfg.data, cfg.data.val_split, train=False)
        lidar = evaluate(result.model, val_set, "mono_lidar", kind="monocular")
        results[row.label] = {**result.metrics, "lidar_d1": lidar["d1"], "lidar_abs_rel": lidar["abs_rel"],
                              "lidar_samples": lidar["samples"], "params_m": count_params(result.model) / 1e6,
                              "gflops": count_flops(result.model, crop) / 1e9, "train_s": seconds,
                              "config": row.config, "steps": cfg.total_steps, "lr": cfg.stages[0].lr}
        m = results[row.label]
        print(f"{row.label:36s} d1 {m['d1']:.3f}  abs_rel {m['abs_rel']:.3f}  rmse {m['rmse']:.2f} m  "
              f"lidar d1 {m['lidar_d1']:.3f}  ({seconds:.0f} s)", flush=True)
    header = ("| model | params (M) | GFLOPs | δ1 ↑ | AbsRel ↓ | RMSE (m) ↓ | δ1, LiDAR scale ↑ | AbsRel, LiDAR scale ↓ "
              "| train time (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    table = header + "".join(
        f"\n| {label} | {m['params_m']:.2f} | {m['gflops']:.3f} | {m['d1']:.3f} | {m['abs_rel']:.3f} | "
        f"{m['rmse']:.2f} | {m['lidar_d1']:.3f} | {m['lidar_abs_rel']:.3f} | {m['train_s']:.0f} |"
        for label, m in results.items())
    note = (f"Machine: {machine()}; {platform.system()}. Backend: PyTorch CPU, {args.threads} thread(s), fp32. "
            f"Resolution: {crop[1]}x{crop[0]} (GFLOPs at that size).\n"
            f"Mode `{mode}`: {steps} training steps per row (batch {batch} triplets, seed 0, same order for every "
            f"row, Adam lr {results[ROWS[0].label]['lr']:g}, x0.1 after 75 % of the steps). Training data: `lumde synth --layout kitti_raw --frames {frames} --sequences "
            f"{sequences} --seed 0 {' '.join(SYNTH)}`; held-out evaluation: {eval_frames} frames of other scenes "
            f"(`--layout kitti_dc --seed 1`, their dense ground truth, depth capped at 80 m). δ1 / AbsRel / RMSE "
            "after per-image median scaling (protocol `mono`); the LiDAR columns scale by median(LiDAR / prediction) "
            "over the projected points instead (protocol `mono_lidar`).")
    if mode == "quick":
        note += (f"\n\n**Quick mode: {steps} steps is far from convergence for self-supervised depth; differences "
                 "between rows are mostly the noise of the first steps.** Run without `--quick` (on a GPU) for "
                 "meaningful figures.")
    markdown = (f"## LUMDE monocular distillation gain (bench/mono_gain.py)\n\n"
                f"Command: `.venv/bin/python bench/mono_gain.py {' '.join(sys.argv[1:])}`\n\n"
                f"{note}\n\n{table}\n\n" + "\n".join(claim_lines(results)))
    print("\n" + markdown)
    if not args.no_write:
        write_section("mono_gain", markdown)
    (runs / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
