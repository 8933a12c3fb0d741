"""What distillation buys: every student recipe of the papers, trained on the same synthetic data.

Rows (LSPKD table 1, CDSPN thesis tables 4.x): the LSPKD teacher; the LSPKD student (width 0.5)
from scratch, + PROB, + ATT, + LSPKD and their combinations, + CDSPN black-box; CDSPN x32 / x64
with and without black-box distillation. Each row runs its ``config/train/synthetic_*.yaml``.

As in the papers the teacher is a prerequisite, fully trained before any distillation: it gets its
own (larger) step budget, is trained once into ``<out>/<mode>/teacher`` and reused from there while
its model file matches the mode's data and budget. Every student row then gets the same seed(s), the
same train / val split and the same step budget (CDSPN's three stages share it in the config's
proportions). The ground truth is KITTI-like semi-dense (``lumde synth --set gt_coverage=lidar``:
only inside the LiDAR's field of view, about a third of the frame) while the teacher predicts
dense depth, the situation where distillation pays on KITTI. Metrics: KITTI protocol on the
synthetic val drive. Each row's loss terms are logged at every step; the section lists them,
weighted, at the first step and at the end, so a term that dominates or vanishes shows.

    .venv/bin/python bench/distill_gain.py                       # cpu mode without CUDA, gpu mode with it
    .venv/bin/python bench/distill_gain.py --mode cpu --seeds 0 1 2 --rows synthetic_student
                                                                 # more seeds of a row, the others reused

The data is generated with ``lumde synth`` into ``<out>/data_<mode>`` when absent.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.engine.evaluate import format_table  # noqa: E402
from lumde_depth.engine.experiment import ExperimentConfig, load_experiment  # noqa: E402
from lumde_depth.engine.objective import parse_loss_config  # noqa: E402
from lumde_depth.engine.profile import count_params  # noqa: E402
from lumde_depth.engine.trainer import run  # noqa: E402
from lumde_depth.models.io import load_model  # noqa: E402

CONFIGS = ROOT / "config" / "train"


@dataclass(frozen=True)
class Row:
    label: str
    config: str
    distill: bool


TEACHER = Row("LSPKD teacher (ResNet34)", "synthetic_teacher", False)
ROWS = (
    Row("student 0.5 from scratch", "synthetic_student", False),
    Row("student + PROB", "synthetic_prob", True),
    Row("student + ATT", "synthetic_att", True),
    Row("student + LSPKD", "synthetic_lspkd", True),
    Row("student + LSPKD + PROB", "synthetic_lspkd_prob", True),
    Row("student + LSPKD + ATT", "synthetic_lspkd_att", True),
    Row("student + LSPKD + PROB + ATT", "synthetic_lspkd_prob_att", True),
    Row("student + black-box", "synthetic_blackbox", True),
    Row("CDSPN x32", "synthetic_cdspn_x32", False),
    Row("CDSPN x32 + black-box", "synthetic_cdspn_x32_distill", True),
    Row("CDSPN x64", "synthetic_cdspn_x64", False),
    Row("CDSPN x64 + black-box", "synthetic_cdspn_x64_distill", True),
)


@dataclass(frozen=True)
class Budget:
    """Data and training budget of one mode."""

    frames: int
    sequences: int
    synth: tuple[str, ...]         # extra `lumde synth --set` options
    teacher_steps: int
    student_steps: int             # every student row
    batch: int
    size: tuple[int, int]          # bottom crop of every frame (validation evaluates it whole)
    crop: tuple[int, int] | None   # random training crop inside it
    val_frames: int


_KITTI_LIKE = ("camera_scale=0.25", "lidar.azimuth_step_deg=2.0", "gt_coverage=lidar", "gt_density=0.5")
BUDGETS = {
    "cpu": Budget(100, 5, _KITTI_LIKE, 400, 120, 4, (88, 304), (48, 160), 20),
    "gpu": Budget(400, 5, _KITTI_LIKE, 8000, 4000, 8, (88, 304), None, 40),
}


def make_data(folder: Path, budget: Budget) -> tuple[Path, list[str]]:
    """The synthetic KITTI depth-completion layout (written once, seed 0); returns it and its command."""
    cmd = ["lumde", "synth", "--out", str(folder), "--frames", str(budget.frames), "--sequences",
           str(budget.sequences), "--seed", "0", "--layout", "kitti_dc",
           *[arg for option in budget.synth for arg in ("--set", option)]]
    if not ((folder / "train").is_dir() and (folder / "val").is_dir()):
        print("generating data:", " ".join(cmd))
        subprocess.run([sys.executable, "-m", "lumde_depth.cli.main", *cmd[1:]], check=True, cwd=ROOT)
    return folder, cmd


def row_config(row: Row, data: Path, teacher: Path, steps: int, budget: Budget, seed: int) -> ExperimentConfig:
    """The row's config with the given budget, seed, data, crops and teacher; every step logged."""
    crop = [] if budget.crop is None else [f"data.train_kwargs.crop=[{budget.crop[0]}, {budget.crop[1]}]"]
    size = f"[{budget.size[0]}, {budget.size[1]}]"
    cfg = load_experiment(CONFIGS / f"{row.config}.yaml", [
        f"data.root={data}", f"data.batch_size={budget.batch}", f"data.max_val_samples={budget.val_frames}",
        f"data.train_kwargs.size={size}", *crop, f"data.val_kwargs.size={size}", f"seed={seed}",
        "log.progress=false", "log.every=1", f"checkpoint.every={steps}", "checkpoint.keep=1", "eval.every=0"])
    total = cfg.total_steps
    for stage in cfg.stages:  # the budget split in the config's stage proportions
        stage.steps = max(1, round(steps * stage.steps / total))
    cfg.stages[-1].steps += steps - cfg.total_steps
    if row.distill:
        cfg.teacher.source = str(teacher)
    return cfg


def term_weights(cfg: ExperimentConfig) -> dict[str, float]:
    """Logged loss part -> its weight in the total (the papers' w1, w2, lambda1, lambda2; lspkd_sim
    already holds alpha)."""
    loss = parse_loss_config(cfg.loss)
    if loss.method == "blackbox":
        return {"gt": 1.0 - loss.lambda1 - loss.lambda2, "teacher_depth": loss.lambda1, "teacher_grad": loss.lambda2}
    weights = {"gt": 1.0, "teacher_depth": loss.w1}
    for term in loss.terms:
        names = ("lspkd_feat", "lspkd_sim") if term.kind == "lspkd" else (term.kind,)
        weights.update({name: term.weight for name in names})
    return weights


def train_log(run_dir: Path) -> list[dict]:
    """The run's logged training rows (one per step here)."""
    return [r for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def weighted_terms(rows: list[dict], weights: dict[str, float], tail: int = 10) -> dict[str, dict[str, float]]:
    """Weighted loss parts: at the first step and averaged over the last ``tail`` steps."""
    def weighted(entries: list[dict]) -> dict[str, float]:
        return {name: w * float(np.mean([e[name] for e in entries])) for name, w in weights.items()
                if w > 0 and name in entries[0]}
    return {"start": weighted(rows[:1]), "end": weighted(rows[-tail:])}


def train_row(row: Row, cfg: ExperimentConfig, run_dir: Path, reuse: bool) -> dict:
    """Train the row into ``run_dir`` (or reuse its model file); metrics, size, time and loss terms."""
    if reuse and (run_dir / "model.pt").is_file():
        model, meta = load_model(run_dir / "model.pt")
        metrics = meta["val_metrics"]
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        result = run(cfg, run_dir, distill=row.distill)
        model, metrics = result.model, result.metrics
    log = train_log(run_dir)
    return {**metrics, "params_m": count_params(model) / 1e6, "train_s": log[-1]["time_s"], "steps": log[-1]["step"],
            "terms": weighted_terms(log, term_weights(cfg))}


def prepare_teacher(run_dir: Path, data: Path, budget: Budget, needed: bool) -> dict | None:
    """The teacher, trained once with its own budget when ``needed``; reused while its model file was
    trained on ``data`` for ``budget.teacher_steps`` steps. Not needed: the existing one, or None."""
    path = run_dir / "model.pt"
    meta = load_model(path)[1] if path.is_file() else {}
    fits = meta.get("steps") == budget.teacher_steps and str(data) in str(meta.get("trained_on", ""))
    if not (needed or fits):
        return None
    cfg = row_config(TEACHER, data, path, budget.teacher_steps, budget, seed=0)
    return {**train_row(TEACHER, cfg, run_dir, reuse=fits), "seeds": [0]}


def row_seeds(runs: Path, row: Row, seeds: list[int], chosen: bool) -> list[int]:
    """The seeds a row is trained with when ``chosen``; otherwise those it was trained with before."""
    if chosen:
        return seeds
    return sorted(int(p.parent.parent.name[4:]) for p in runs.glob(f"seed*/{row.config}/model.pt"))


def summarise(per_seed: dict[int, dict]) -> dict:
    """A row over its seeds: mean metrics, RMSE spread and the first seed's loss terms."""
    runs = list(per_seed.values())
    keys = ("rmse", "mae", "irmse", "imae", "train_s")
    rmse = [r["rmse"] for r in runs]
    return {**{k: float(np.mean([r[k] for r in runs])) for k in keys}, "params_m": runs[0]["params_m"],
            "steps": runs[0]["steps"], "terms": runs[0]["terms"], "seeds": sorted(per_seed),
            "rmse_min": min(rmse), "rmse_max": max(rmse)}


def terms_table(results: dict[str, dict]) -> str:
    """Markdown: each row's weighted loss terms at the first step and at the end."""
    lines = ["| row | weighted loss terms at step 1 | at the end (last 10 steps) |", "|---|---|---|"]
    for label, r in results.items():
        cells = [", ".join(f"{k} {v:.3g}" for k, v in r["terms"][when].items()) for when in ("start", "end")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def markdown(results: dict[str, dict], budget: Budget, mode: str, command: str, synth_cmd: list[str],
             threads: int, reused: list[str]) -> str:
    """The docs/benchmarks.md section."""
    seeds = sorted({s for r in results.values() for s in r["seeds"]})
    table = format_table({f"{k} ({v['params_m']:.2f}M, {v['steps']} steps"
                          + (f", RMSE {v['rmse_min']:.0f}–{v['rmse_max']:.0f} over seeds {v['seeds']}"
                             if len(v["seeds"]) > 1 else "") + ")": v for k, v in results.items()}, "kitti")
    device = "CUDA" if mode == "gpu" else f"CPU, {threads} thread(s)"
    crop = "the whole frame" if budget.crop is None else f"random {budget.crop[1]}x{budget.crop[0]} crops of it"
    times = ", ".join(f"{k}: {v['train_s']:.0f} s" for k, v in results.items())
    before = f" (rows reused from an earlier run of the bench: {', '.join(reused)})" if reused else ""
    return (f"## Distillation gain (bench/distill_gain.py)\n\nCommand: `{command}`{before}\n\n"
            f"Machine: {machine()}; {platform.system()}. Backend: PyTorch {device}, fp32. Mode `{mode}`.\n"
            f"Data: `{' '.join(synth_cmd)}` (310x94 images; KITTI-like semi-dense ground truth inside the LiDAR's "
            f"field of view; the last drive is the val split). Every frame is bottom-cropped to "
            f"{budget.size[1]}x{budget.size[0]}; training sees {crop}, batch {budget.batch}; validation: the first "
            f"{budget.val_frames} val frames, KITTI protocol.\n"
            f"Budgets: the teacher is trained first with its own {budget.teacher_steps} steps (seed 0) and is the "
            f"teacher of every distilled row; every student row gets {budget.student_steps} steps, seed(s) {seeds}"
            " (metrics are the mean over the seeds).\n\n"
            f"{table}\n\nWeighted loss terms (part x its weight in the total; gt is L1 in metres for the LSPKD "
            f"rows, MSE in m² for the black-box rows):\n\n{terms_table(results)}\n\nTraining time per row "
            f"(wall clock, seed mean, on a machine that may be shared): {times}.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=tuple(BUDGETS), default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every student row")
    parser.add_argument("--rows", nargs="*", default=None,
                        help="train only these rows (config names; none: train nothing); the others are reused with "
                             "every seed found in the run folder, or left out")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a shared / oversubscribed machine)")
    parser.add_argument("--reuse", action="store_true", help="keep student rows whose model file already exists")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/benchmarks.md alone")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "distill_gain")
    args = parser.parse_args()
    budget = BUDGETS[args.mode]
    torch.set_num_threads(args.threads)
    data, synth_cmd = make_data(args.out / f"data_{args.mode}", budget)
    runs = args.out / args.mode
    teacher = runs / "teacher"
    chosen = [row for row in ROWS if args.rows is None or row.config in args.rows]
    results = {}
    teacher_row = prepare_teacher(teacher, data, budget, needed=any(row.distill for row in chosen))
    if teacher_row is not None:
        results[f"{TEACHER.label} [prerequisite]"] = teacher_row
        print(f"teacher: rmse {teacher_row['rmse']:.1f} mm", flush=True)
    for row in ROWS:
        per_seed = {}
        for seed in row_seeds(runs, row, args.seeds, row in chosen):
            run_dir = runs / f"seed{seed}" / row.config
            cfg = row_config(row, data, teacher / "model.pt", budget.student_steps, budget, seed)
            per_seed[seed] = train_row(row, cfg, run_dir, reuse=args.reuse or row not in chosen)
            print(f"{row.label:32s} seed {seed} rmse {per_seed[seed]['rmse']:8.1f} mm  "
                  f"mae {per_seed[seed]['mae']:7.1f} mm  ({per_seed[seed]['train_s']:.0f} s)", flush=True)
        if per_seed:
            results[row.label] = summarise(per_seed)
    reused = [row.label for row in ROWS if row not in chosen and row.label in results]
    command = "bench/distill_gain.py " + " ".join(sys.argv[1:])
    section = markdown(results, budget, args.mode, f".venv/bin/python {command.strip()}", synth_cmd, args.threads,
                       reused)
    print("\n" + section)
    if not args.no_write:
        write_section("distill_gain", section)
    (runs / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
