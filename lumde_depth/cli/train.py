"""``lumde train --config FILE [key=value ...] [--resume] [--out RUN_DIR]``: train a model.

Runs under ``torchrun --nproc_per_node=N`` as well (DistributedDataParallel, one process per GPU,
or gloo processes on a CPU); only rank 0 writes the run dir.
"""
from __future__ import annotations

import argparse
from pathlib import Path

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


def load_config(args: argparse.Namespace) -> ExperimentConfig:
    """The validated experiment: every key checked before any work starts."""
    return load_experiment(args.config, args.overrides)


def run_dir(args: argparse.Namespace, cfg: ExperimentConfig) -> Path:
    return getattr(args, "out", None) or Path("runs") / cfg.name


def report(result) -> None:
    if result.model_path is not None:
        print(f"trained {result.step} steps; model file {result.model_path}; logs in {result.run_dir}")
        if result.metrics:
            print("validation: " + ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()))


def _train(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    check_command(cfg, distill=False)
    from lumde_depth.engine.trainer import run
    report(run(cfg, run_dir(args, cfg), resume=args.resume, distill=False))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model (teacher or student) from a config",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.set_defaults(func=_train)
