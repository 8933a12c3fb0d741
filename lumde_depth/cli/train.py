"""``lumde train --config FILE [key=value ...] [--out RUN_DIR] [--resume [--extend N]]``: train a model.

Runs under ``torchrun --nproc_per_node=N`` as well (DistributedDataParallel, one process per GPU,
or gloo processes on a CPU); only rank 0 writes the run dir. ``data.batch_size`` is per process:
the global batch is N x batch_size (the start-up summary says both).

Ctrl-C stops after the current step, saves a checkpoint and prints the command that resumes the
run; ``--resume --extend N`` trains a finished run N steps longer (its last stage).
"""
from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from lumde_depth.config import ConfigError
from lumde_depth.engine.experiment import ExperimentConfig, check_command, load_experiment


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment yaml (config/train/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides of config keys, anywhere on the line, e.g. data.batch_size=4 "
                             "stages.0.lr=3e-4 (or stages[0].lr=3e-4)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="run dir (default runs/<name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the run dir (same config and overrides)")
    parser.add_argument("--extend", type=int, default=0, metavar="N",
                        help="with --resume: train N steps more than the run planned (added to its last stage), "
                             "e.g. to continue a finished run")


def load_config(args: argparse.Namespace) -> ExperimentConfig:
    """The validated experiment: every key checked before any work starts."""
    return load_experiment(args.config, args.overrides)


def run_dir(args: argparse.Namespace, cfg: ExperimentConfig) -> Path:
    return getattr(args, "out", None) or Path("runs") / cfg.name


def resume_command(args: argparse.Namespace, out: Path) -> str:
    """The command line that continues an interrupted run."""
    words = ["lumde", args.command, "--config", str(args.config), *args.overrides, "--out", str(out), "--resume"]
    if getattr(args, "cache_teacher", False):
        words.append("--cache-teacher")
    command = shlex.join(words)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"the same torchrun command with: {command.removeprefix('lumde ')}"
    return command


def report(result, args: argparse.Namespace, cfg: ExperimentConfig) -> int:
    """Print how the run ended; the exit code (130 when it was interrupted)."""
    if result.interrupted:
        if result.checkpoint is not None:
            print(f"saved {result.checkpoint}; resume with:\n  {resume_command(args, result.run_dir)}")
        return 130
    if result.model_path is not None:
        from lumde_depth.engine.evaluate import format_metrics
        print(f"trained {result.step} steps; model file {result.model_path}; logs in {result.run_dir}")
        if result.metrics:
            print(f"validation ({int(result.metrics.get('samples', 0))} images): "
                  f"{format_metrics(result.metrics, cfg.data.protocol)}")
        if result.best_path is not None:
            print(f"best by {cfg.best_metric}: {result.best_path}")
    return 0


def check_extend(args: argparse.Namespace) -> None:
    if args.extend and not args.resume:
        raise ConfigError("--extend N continues a run: use it with --resume (and the run's --out)")
    if args.extend < 0:
        raise ConfigError(f"--extend must be a positive number of steps, got {args.extend}")


def _train(args: argparse.Namespace) -> int:
    check_extend(args)
    cfg = load_config(args)
    check_command(cfg, distill=False)
    from lumde_depth.engine.trainer import run
    return report(run(cfg, run_dir(args, cfg), resume=args.resume, distill=False, extend=args.extend), args, cfg)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model (teacher or student) from a config",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.set_defaults(func=_train)
