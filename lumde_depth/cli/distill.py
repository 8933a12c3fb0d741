"""``lumde distill --config FILE [key=value ...] [--resume] [--out RUN_DIR] [--cache-teacher]``.

Trains the student of the config with its distillation loss from ``teacher.source``.
``--cache-teacher`` first runs the teacher once over the training set and stores its predictions
(``teacher.cache_dir``, default RUN_DIR/teacher_cache); training then reads them instead of running
the teacher (depth-only: the black-box loss). An existing cache is reused; ``--cache-only`` stops
after writing it (do that once before a torchrun launch).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lumde_depth.cli.train import add_run_arguments, check_extend, load_config, report, run_dir
from lumde_depth.config import ConfigError
from lumde_depth.engine.experiment import check_command


def _distill(args: argparse.Namespace) -> int:
    check_extend(args)
    if args.cache_only and not args.cache_teacher:
        raise ConfigError("--cache-only has no effect without --cache-teacher (it stops after writing the cache): "
                          "add --cache-teacher")
    cfg = load_config(args)
    check_command(cfg, distill=True, cache_teacher=args.cache_teacher)
    out = run_dir(args, cfg)
    if args.cache_teacher:
        from lumde_depth.engine.teacher_cache import build_cache
        cache = Path(cfg.teacher.cache_dir) if cfg.teacher.cache_dir else out / "teacher_cache"
        cfg.teacher.source = str(build_cache(cfg, cache))
        if args.cache_only:
            print(f"teacher cache ready: {cfg.teacher.source} (train with teacher.source={cfg.teacher.source})")
            return 0
    from lumde_depth.engine.trainer import run
    return report(run(cfg, out, resume=args.resume, distill=True, extend=args.extend), args, cfg)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("distill", help="distill a student from a teacher (LSPKD, PROB, ATT, black-box)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--cache-teacher", action="store_true",
                        help="precompute the teacher's predictions on the training set and train from them")
    parser.add_argument("--cache-only", action="store_true", help="with --cache-teacher: write the cache and stop")
    parser.set_defaults(func=_distill)
