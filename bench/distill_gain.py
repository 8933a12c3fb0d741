"""What distillation buys: every student recipe of the papers, trained on the same synthetic data.

Rows: the LSPKD teacher; the LSPKD student (width 0.5) from scratch, + PROB, + ATT, + LSPKD and
their combinations, + CDSPN black-box; CDSPN x32 / x64 with and without black-box distillation.
Each row runs its ``config/train/synthetic_*.yaml`` with the same seed, the same train / val split
and the same step budget (CDSPN's three stages share it in the config's proportions); the
students distil from the teacher trained in the first row. Metrics: KITTI protocol on the
synthetic val drive. Written to the ``distill_gain`` section of docs/benchmarks.md.

    .venv/bin/python bench/distill_gain.py --quick     # minutes on a CPU: tiny budget, a direction only
    .venv/bin/python bench/distill_gain.py             # the full budget (hours on a CPU; use a GPU)

The data is generated with ``lumde synth`` into ``runs/distill_gain/data_<mode>`` when absent, at a
quarter of KITTI's resolution with a sparser LiDAR (KITTI-like ~5 % density at that size).
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
from lumde_depth.engine.evaluate import format_table  # noqa: E402
from lumde_depth.engine.experiment import ExperimentConfig, load_experiment  # noqa: E402
from lumde_depth.engine.profile import count_params  # noqa: E402
from lumde_depth.engine.trainer import run  # noqa: E402

CONFIGS = ROOT / "config" / "train"


@dataclass(frozen=True)
class Row:
    label: str
    config: str
    distill: bool
    quick: bool = True


ROWS = (
    Row("LSPKD teacher (ResNet34)", "synthetic_teacher", False),
    Row("student 0.5 from scratch", "synthetic_student", False),
    Row("student + PROB", "synthetic_prob", True),
    Row("student + ATT", "synthetic_att", True),
    Row("student + LSPKD", "synthetic_lspkd", True),
    Row("student + LSPKD + PROB", "synthetic_lspkd_prob", True, quick=False),
    Row("student + LSPKD + ATT", "synthetic_lspkd_att", True, quick=False),
    Row("student + LSPKD + PROB + ATT", "synthetic_lspkd_prob_att", True),
    Row("student + black-box", "synthetic_blackbox", True),
    Row("CDSPN x32", "synthetic_cdspn_x32", False),
    Row("CDSPN x32 + black-box", "synthetic_cdspn_x32_distill", True),
    Row("CDSPN x64", "synthetic_cdspn_x64", False),
    Row("CDSPN x64 + black-box", "synthetic_cdspn_x64_distill", True),
)

#: mode -> (frames, sequences, train steps per row, batch, crop (H, W), validation frames)
SETTINGS = {"quick": (60, 5, 30, 2, (64, 192), 12), "full": (400, 5, 1500, 4, (80, 304), 40)}
SYNTH = ["--set", "camera_scale=0.25", "--set", "lidar.azimuth_step_deg=2.0"]


def make_data(folder: Path, frames: int, sequences: int) -> Path:
    """The synthetic KITTI depth-completion layout (written once, seed 0)."""
    if (folder / "train").is_dir() and (folder / "val").is_dir():
        return folder
    cmd = [sys.executable, "-m", "lumde_depth.cli.main", "synth", "--out", str(folder), "--frames", str(frames),
           "--sequences", str(sequences), "--seed", "0", "--layout", "kitti_dc", *SYNTH]
    print("generating data:", " ".join(cmd[1:]))
    subprocess.run(cmd, check=True, cwd=ROOT)
    return folder


def row_config(row: Row, data: Path, teacher: Path, steps: int, batch: int, crop: tuple[int, int],
               val_frames: int) -> ExperimentConfig:
    """The row's config with the shared budget, data, crop and teacher."""
    size = f"[{crop[0]}, {crop[1]}]"
    cfg = load_experiment(CONFIGS / f"{row.config}.yaml", [
        f"data.root={data}", f"data.batch_size={batch}", f"data.max_val_samples={val_frames}",
        f"data.train_kwargs.size={size}", f"data.val_kwargs.size={size}", "seed=0", "log.progress=false",
        f"checkpoint.every={steps}", "checkpoint.keep=1", "eval.every=0"])
    total = cfg.total_steps
    for stage in cfg.stages:  # the budget split in the config's stage proportions
        stage.steps = max(1, round(steps * stage.steps / total))
    cfg.stages[-1].steps += steps - cfg.total_steps
    if row.distill:
        cfg.teacher.source = str(teacher)
    return cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budget (minutes on a CPU)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per row (overrides the mode)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a shared / oversubscribed machine)")
    parser.add_argument("--reuse", action="store_true", help="keep rows whose model file already exists")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "distill_gain")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    frames, sequences, steps, batch, crop, val_frames = SETTINGS[mode]
    steps = args.steps or steps
    torch.set_num_threads(args.threads)
    data = make_data(args.out / f"data_{mode}", frames, sequences)
    runs = args.out / mode
    teacher = runs / ROWS[0].config / "model.pt"
    results = {}
    for row in ROWS:
        if args.quick and not row.quick:
            continue
        run_dir = runs / row.config
        cfg = row_config(row, data, teacher, steps, batch, crop, val_frames)
        started = time.perf_counter()
        if args.reuse and (run_dir / "model.pt").is_file():
            from lumde_depth.models.io import load_model
            model, meta = load_model(run_dir / "model.pt")
            metrics, seconds = meta["val_metrics"], float("nan")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            result = run(cfg, run_dir, distill=row.distill)
            model, metrics, seconds = result.model, result.metrics, time.perf_counter() - started
        results[row.label] = {**metrics, "params_m": count_params(model) / 1e6, "train_s": seconds,
                              "config": row.config, "steps": cfg.total_steps}
        print(f"{row.label:32s} rmse {metrics['rmse']:9.1f} mm  mae {metrics['mae']:8.1f} mm  "
              f"irmse {metrics['irmse']:7.2f}  imae {metrics['imae']:7.2f}  ({seconds:.0f} s)", flush=True)
    table = format_table({f"{k} ({v['params_m']:.2f}M)": v for k, v in results.items()}, "kitti")
    times = ", ".join(f"{k}: {v['train_s']:.0f} s" for k, v in results.items())
    note = (f"Machine: {machine()}; {platform.system()}. Backend: PyTorch CPU, {args.threads} thread(s), fp32.\n"
            f"Mode `{mode}`: {steps} training steps per row (batch {batch}, seed 0, same order for every row), "
            f"synthetic KITTI-like data from `lumde synth --frames {frames} --sequences {sequences} --seed 0 "
            f"{' '.join(SYNTH)}` (310x94 images, crop {crop[1]}x{crop[0]}; the last drive is the val split, "
            f"first {val_frames} frames evaluated, KITTI protocol). Reduced resolution and budget because "
            "this runs on a CPU: the numbers show the pipeline and a direction, not the papers' gains.")
    if mode == "quick":
        note += (f"\n\n**Quick mode: {steps} steps is far from convergence; differences between rows are mostly "
                 "noise of the first steps.** Run without `--quick` (on a GPU) for meaningful figures.")
    flags = (" --quick" if args.quick else "") + (f" --steps {args.steps}" if args.steps else "")
    markdown = (f"## Distillation gain (bench/distill_gain.py)\n\n"
                f"Command: `.venv/bin/python bench/distill_gain.py{flags}`\n\n"
                f"{note}\n\n{table}\n\nTraining time per row: {times}.")
    print("\n" + markdown)
    write_section("distill_gain", markdown)
    (runs / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
