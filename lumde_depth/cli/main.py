"""The ``lumde`` command: one entry point, one module per subcommand.

Each module named in :data:`COMMANDS` lives in ``lumde_depth/cli/`` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args,
returning an exit code). ``key=value`` overrides may stand anywhere among the options
(``--config F --out DIR stages.0.lr=3e-4``): those after an option are appended to the command's
``overrides`` (or the list its parser names with ``set_defaults(extras_to=...)``).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from lumde_depth import __version__
from lumde_depth.config import ConfigError, ConfigWarning

COMMANDS: tuple[str, ...] = ("demo", "synth", "train", "distill", "eval", "prune_test", "bench", "export",
                             "kitti2bag", "bag", "adapt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumde", description="lumde_depth: LiDAR + camera depth completion tools")
    parser.add_argument("--version", action="version", version=f"lumde_depth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lumde_depth.cli.{name}").register(subparsers)
    return parser


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None, _default=warnings.formatwarning) -> str:
    """Configuration warnings as one plain line (other warnings as Python formats them)."""
    if issubclass(category, ConfigWarning):
        return f"lumde: warning: {message}\n"
    return _default(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        into = getattr(args, getattr(args, "extras_to", "overrides"), None)
        if not isinstance(into, list) or any("=" not in e or e.startswith("-") for e in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        into.extend(extras)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:   # also a bad model file or checkpoint (ModelFileError)
        print(f"lumde {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:    # training saves a checkpoint on the first Ctrl-C by itself
        print(f"lumde {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
