"""The ``lumde`` command: one entry point, one module per subcommand.

Each module named in :data:`COMMANDS` lives in ``lumde_depth/cli/`` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args,
returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from lumde_depth import __version__
from lumde_depth.config import ConfigError

COMMANDS: tuple[str, ...] = ("demo", "synth", "train", "distill", "eval", "prune_test", "bench", "export",
                             "kitti2bag", "bag", "adapt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumde", description="lumde_depth: LiDAR + camera depth completion tools")
    parser.add_argument("--version", action="version", version=f"lumde_depth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lumde_depth.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"lumde {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
