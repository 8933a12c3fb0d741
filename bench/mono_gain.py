"""What LUMDE distillation buys a monocular student, on synthetic sequences with held-out frames.

Rows: the LUMDE teacher (ResNet34 + Monodepth2 decoder), the separable student trained alone
(self-supervised only), the student distilled from that teacher without and with the adversarial
term (Transformer critic, WGAN-GP). Each row runs its ``config/train/synthetic_lumde_*.yaml`` with
the same seed, data and crop; the student rows share one step budget and learning rate, the teacher
has its own; the students distil from the teacher of the first row.

Training: triplets of synthetic KITTI raw drives (seed 0). Evaluation: other scenes (seed 1,
KITTI depth-completion layout, whose dense ground truth the training never sees), monocular
protocol: AbsRel, RMSE, δ1 after per-image median scaling, and δ1 / AbsRel with the metric scale
recovered from the LiDAR (the node's ``auto`` mode). The untrained teacher and student are
evaluated too, and each row reports its photometric loss and auto-masked share at the start and
the end of training, so a row that did not learn shows. Written to the ``mono_gain`` section of
docs/benchmarks.md, with the paper's claim checked: the distilled student within 2.6 % δ1 of the
teacher, and better than the student trained alone.

    .venv/bin/python bench/mono_gain.py --mode quick   # minutes on a CPU: a smoke test, nothing learnt
    .venv/bin/python bench/mono_gain.py --mode cpu     # about 45 minutes of one CPU core, reduced resolution
    .venv/bin/python bench/mono_gain.py --mode cpu --rows synthetic_lumde_student --seed 1   # one row, another seed
    .venv/bin/python bench/mono_gain.py                # the full budget (hours on a CPU; use a GPU)

The networks start from scratch (no ImageNet encoder as in Monodepth2), so the reduced modes use
Adam lr 1e-3 instead of Monodepth2's 1e-4, which barely moves a from-scratch net in a few hundred steps.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.engine.datasets import build_split  # noqa: E402
from lumde_depth.engine.evaluate import evaluate  # noqa: E402
from lumde_depth.engine.experiment import ExperimentConfig, load_experiment  # noqa: E402
from lumde_depth.engine.logs import read_rows  # noqa: E402
from lumde_depth.engine.profile import count_flops, count_params  # noqa: E402
from lumde_depth.engine.trainer import run  # noqa: E402
from lumde_depth.models import build  # noqa: E402

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


@dataclass(frozen=True)
class Budget:
    """Data and training budget of one mode."""

    frames: int              # training frames (all drives)
    sequences: int           # training drives
    eval_frames: int         # held-out frames
    steps: int               # training steps of every student row
    batch: int
    crop: tuple[int, int]    # bottom crop (H, W) of the quarter-resolution frames
    lr: float | None         # Adam learning rate of the student rows (None: the configs')
    teacher_steps: int
    teacher_lr: float | None  # the ResNet34 teacher's: from scratch its disparity collapses to max_depth at 1e-3


BUDGETS = {"quick": Budget(48, 4, 12, 150, 2, (64, 192), 1e-3, 150, 3e-4),
           "cpu": Budget(288, 24, 24, 700, 2, (64, 192), 1e-3, 2500, 3e-4),
           "full": Budget(400, 8, 40, 2000, 4, (88, 304), None, 2000, None)}
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


def row_config(row: Row, train: Path, held_out: Path, teacher: Path, budget: Budget, seed: int = 0) -> ExperimentConfig:
    """The row's config with the budget (the teacher row's own steps and lr), data, crop and teacher."""
    size = f"[{budget.crop[0]}, {budget.crop[1]}]"
    steps, lr = (budget.teacher_steps, budget.teacher_lr) if row == ROWS[0] else (budget.steps, budget.lr)
    cfg = load_experiment(CONFIGS / f"{row.config}.yaml", [
        f"data.root={train}", f"data.val_root={held_out}", f"data.batch_size={budget.batch}",
        f"data.max_val_samples={budget.eval_frames}", f"data.train_kwargs.size={size}",
        f"data.val_kwargs.size={size}", f"seed={seed}", "device=cpu", "log.progress=false",
        f"checkpoint.every={steps}", "checkpoint.keep=1", "eval.every=0",
        f"optim.step_size={max(1, round(0.75 * steps))}"])
    cfg.stages[0].steps = steps
    cfg.stages[0].lr = lr or cfg.stages[0].lr
    if row.distill:
        cfg.teacher.source = str(teacher)
    return cfg


def learning_curve(run_dir: Path, tail: int = 5) -> dict[str, float]:
    """Photometric loss and auto-masked share over the first and the last ``tail`` logged steps."""
    rows = [r for r in read_rows(run_dir / "log.jsonl") if r["kind"] == "train"]
    return {f"{name}_{end}": float(np.mean([r[name] for r in part]))
            for name in ("photometric", "automasked") for end, part in (("start", rows[:tail]), ("end", rows[-tail:]))}


def untrained(cfg: ExperimentConfig, val_set: Dataset) -> dict[str, float]:
    """Held-out metrics of the row's network before training (seed 0), the floor a trained row must leave."""
    torch.manual_seed(cfg.seed)
    return evaluate(build(cfg.model.name, **cfg.model.kwargs), val_set, "mono", kind="monocular",
                    max_samples=cfg.data.max_val_samples)


def claim_lines(results: dict[str, dict[str, float]], teacher_floor: float) -> list[str]:
    """The paper's claims, checked on the measured δ1 (median scaling); ``teacher_floor`` is the
    untrained teacher's δ1."""
    labels = [r.label for r in ROWS]
    teacher, alone, noadv, lumde = (round(results[label]["d1"], 3) for label in labels)  # the printed precision
    gap_points = 100 * (teacher - lumde)
    gap_relative = 100 * (teacher - lumde) / max(teacher, 1e-9)
    if teacher < teacher_floor + 0.05:
        verdict = f"not tested: the teacher barely left its untrained δ1 ({teacher_floor:.3f})"
    elif lumde > teacher:  # a teacher below its own student has not learned enough to test the claim
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


def train_row(row: Row, cfg: ExperimentConfig, run_dir: Path, val_set: Dataset) -> dict[str, float]:
    """Train one row; its held-out metrics (median and LiDAR scaling), size, time and learning curve."""
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    result = run(cfg, run_dir, distill=row.distill)
    seconds = time.perf_counter() - started
    lidar = evaluate(result.model, val_set, "mono_lidar", kind="monocular")
    return {**result.metrics, "lidar_d1": lidar["d1"], "lidar_abs_rel": lidar["abs_rel"],
            "lidar_samples": lidar["samples"], "params_m": count_params(result.model) / 1e6,
            "gflops": count_flops(result.model, cfg.data.train_kwargs["size"]) / 1e9, "train_s": seconds,
            "config": row.config, "steps": cfg.total_steps, "lr": cfg.stages[0].lr, **learning_curve(run_dir)}


def tables(results: dict[str, dict[str, float]], floors: dict[str, dict[str, float]]) -> str:
    """The metrics table (trained rows, then the untrained networks) and the learning-curve table."""
    header = ("| model | params (M) | GFLOPs | δ1 ↑ | AbsRel ↓ | RMSE (m) ↓ | δ1, LiDAR scale ↑ "
              "| AbsRel, LiDAR scale ↓ | train time (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = "".join(
        f"\n| {label} | {m['params_m']:.2f} | {m['gflops']:.3f} | {m['d1']:.3f} | {m['abs_rel']:.3f} | "
        f"{m['rmse']:.2f} | {m['lidar_d1']:.3f} | {m['lidar_abs_rel']:.3f} | {m['train_s']:.0f} |"
        for label, m in results.items())
    rows += "".join(f"\n| {label}, untrained | – | – | {m['d1']:.3f} | {m['abs_rel']:.3f} | {m['rmse']:.2f} "
                    "| – | – | – |" for label, m in floors.items())
    curve = ("| model | photometric, first 5 logs | photometric, last 5 logs | auto-masked, first | auto-masked, last |"
             "\n|---|---:|---:|---:|---:|" + "".join(
                 f"\n| {label} | {m['photometric_start']:.4f} | {m['photometric_end']:.4f} | "
                 f"{m['automasked_start']:.2f} | {m['automasked_end']:.2f} |" for label, m in results.items()))
    return f"{header}{rows}\n\n{curve}"


def train_rows(rows: list[Row], train: Path, held_out: Path, teacher: Path, budget: Budget, seed: int,
               runs: Path) -> int:
    """Train ``rows`` alone (e.g. more seeds of one row) and print their metrics."""
    if any(r.distill for r in rows) and not teacher.is_file():
        raise SystemExit(f"{teacher} does not exist: run the whole bench once with this --out and budget first")
    for row in rows:
        cfg = row_config(row, train, held_out, teacher, budget, seed)
        m = train_row(row, cfg, runs / row.config, build_split(cfg.data, cfg.data.val_split, train=False))
        print(f"{row.label} (seed {seed}): d1 {m['d1']:.3f}  abs_rel {m['abs_rel']:.3f}  rmse {m['rmse']:.2f} m  "
              f"lidar d1 {m['lidar_d1']:.3f}  auto-masked {m['automasked_start']:.2f} -> {m['automasked_end']:.2f}  "
              f"photometric {m['photometric_start']:.4f} -> {m['photometric_end']:.4f}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=tuple(BUDGETS), default="full",
                        help="quick: smoke test; cpu: about 45 minutes of one core, reduced resolution; full: GPU")
    parser.add_argument("--steps", type=int, default=None, help="training steps per student row (overrides the mode)")
    parser.add_argument("--teacher-steps", type=int, default=None, help="training steps of the teacher (ditto)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a shared / oversubscribed machine)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the student rows (overrides the mode)")
    parser.add_argument("--teacher-lr", type=float, default=None, help="learning rate of the teacher (ditto)")
    parser.add_argument("--frames", type=int, default=None, help="training frames, all drives (overrides the mode)")
    parser.add_argument("--sequences", type=int, default=None, help="training drives (overrides the mode)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "mono_gain")
    parser.add_argument("--seed", type=int, default=0, help="seed of every row (initialisation and batch order)")
    parser.add_argument("--rows", nargs="+", default=None, choices=[r.config for r in ROWS],
                        help="train only these rows and print them (a distilled row reuses the teacher trained "
                             "by an earlier run with the same --out and budget); the doc is left alone")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    mode = args.mode
    budget = replace(BUDGETS[mode], **{key: value for key, value in vars(args).items()
                                       if key in ("steps", "lr", "teacher_steps", "teacher_lr", "frames", "sequences") and value})
    torch.set_num_threads(args.threads)
    train = make_data(args.out / f"train_{budget.frames}x{budget.sequences}", "kitti_raw", budget.frames, budget.sequences, seed=0)
    held_out = make_data(args.out / f"heldout_{budget.eval_frames}", "kitti_dc", budget.eval_frames, 2, seed=1)
    runs = args.out / mode
    teacher = runs / ROWS[0].config / "model.pt"
    results: dict[str, dict[str, float]] = {}
    floors: dict[str, dict[str, float]] = {}
    if args.rows:
        return train_rows([r for r in ROWS if r.config in args.rows], train, held_out, teacher, budget, args.seed,
                          runs / f"seed{args.seed}")
    for row in ROWS:
        cfg = row_config(row, train, held_out, teacher, budget, args.seed)
        val_set = build_split(cfg.data, cfg.data.val_split, train=False)
        if row.config in ("synthetic_lumde_teacher", "synthetic_lumde_student"):
            floors[row.label] = untrained(cfg, val_set)
        results[row.label] = m = train_row(row, cfg, runs / row.config, val_set)
        print(f"{row.label:36s} d1 {m['d1']:.3f}  abs_rel {m['abs_rel']:.3f}  rmse {m['rmse']:.2f} m  "
              f"lidar d1 {m['lidar_d1']:.3f}  photometric {m['photometric_start']:.4f} -> {m['photometric_end']:.4f}  "
              f"({m['train_s']:.0f} s)", flush=True)
    crop = budget.crop
    note = (f"Machine: {machine()}; {platform.system()}. Backend: PyTorch CPU, {args.threads} thread(s), fp32. "
            f"Resolution: {crop[1]}x{crop[0]} (bottom crop of quarter-resolution frames; GFLOPs at that size).\n"
            f"Mode `{mode}`: {budget.steps} training steps per student row at Adam lr "
            f"{results[ROWS[1].label]['lr']:g}, "
            f"the teacher {budget.teacher_steps} steps at lr {results[ROWS[0].label]['lr']:g} (batch {budget.batch} "
            "triplets, seed 0, same order for every row, lr x0.1 after 75 % of the steps, networks from scratch; "
            "at lr 1e-3 the ResNet34 teacher's disparity collapses to max_depth within 25 steps). Training data: "
            f"`lumde synth --layout kitti_raw --frames {budget.frames} --sequences "
            f"{budget.sequences} --seed 0 {' '.join(SYNTH)}`; held-out evaluation: {budget.eval_frames} frames of "
            "other scenes (`--layout kitti_dc --seed 1`, their dense ground truth, depth capped at 80 m). δ1 / AbsRel "
            "/ RMSE after per-image median scaling (protocol `mono`); the LiDAR columns scale by median(LiDAR / "
            "prediction) over the projected points instead (protocol `mono_lidar`).")
    if mode == "quick":
        note += (f"\n\n**Quick mode: {budget.steps} steps is a smoke test; differences between rows are the noise of "
                 "the first steps.** Use `--mode cpu` or the full mode for figures.")
    markdown = (f"## LUMDE monocular distillation gain (bench/mono_gain.py)\n\n"
                f"Command: `.venv/bin/python bench/mono_gain.py {' '.join(sys.argv[1:])}`\n\n"
                f"{note}\n\n{tables(results, floors)}\n\n" + "\n".join(claim_lines(results, floors[ROWS[0].label]["d1"])))
    print("\n" + markdown)
    if not args.no_write:
        write_section("mono_gain", markdown)
    (runs / "results.json").write_text(json.dumps({"rows": results, "untrained": floors}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
