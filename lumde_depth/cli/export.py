"""``lumde export``: a model file to ONNX and/or TorchScript, checked against PyTorch.

    lumde export MODEL_FILE --out DIR --format onnx|torchscript|both [--input-size H W]
    lumde export --config FILE [KEY=VALUE ...]

The exported graphs return the depth only, have dynamic batch/height/width, and carry the model
file's metadata (``lumde_meta``). Each export is run (onnxruntime / torch.jit) on a random input of
``input_size`` and compared with PyTorch; the max abs / relative difference is printed, and a
relative difference above ``tolerance`` is an error (exit code 1).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lumde_depth.config import ConfigError, field, load

DEFAULT_SIZE = [352, 1216]


@dataclass
class ExportConfig:
    model: str = field(doc="model file to export (lumde_depth.models.io format)")
    out: str = field("exported", doc="output folder")
    format: str = field("both", choices=("onnx", "torchscript", "both"), doc="what to write")
    input_size: Optional[list[int]] = field(None, low=8, doc="H W of the tracing / check input "
                                            "(default: the model file's meta input_size, else 352 1216)")
    opset: int = field(17, low=17, high=23, doc="ONNX opset")
    name: Optional[str] = field(None, doc="file stem of the exports (default: the model file's stem)")
    tolerance: float = field(1e-4, low=0.0, doc="largest accepted max relative difference to PyTorch")


def _overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The config file (or None) and the key=value overrides from the command line."""
    model_files = [i for i in args.items if "=" not in i]
    overrides = [i for i in args.items if "=" in i]
    if len(model_files) > 1:
        raise ConfigError(f"one model file at a time, got {model_files}")
    if model_files:
        overrides.insert(0, f"model={model_files[0]}")
    elif args.config is None:
        raise ConfigError("give a MODEL_FILE or --config FILE (e.g. lumde export student.pt --out exported)")
    for key in ("out", "format", "opset", "name", "tolerance"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    if args.input_size is not None:
        overrides.append(f"input_size=[{args.input_size[0]}, {args.input_size[1]}]")
    return args.config, overrides


def run_export(cfg: ExportConfig) -> int:
    from lumde_depth.engine.export import FORMATS, export_model
    from lumde_depth.models.io import load_model
    if cfg.input_size is not None and len(cfg.input_size) != 2:
        raise ConfigError(f"'input_size' must be [H, W], got {cfg.input_size}")
    model, meta = load_model(cfg.model)
    size = cfg.input_size or meta.get("input_size") or DEFAULT_SIZE
    formats = FORMATS if cfg.format == "both" else (cfg.format,)
    results = export_model(model, cfg.out, formats, size, meta, name=cfg.name or Path(cfg.model).stem,
                           opset=cfg.opset)
    failed = False
    for r in results:
        ok = r.max_rel_diff <= cfg.tolerance
        failed |= not ok
        print(f"{r.format:12s} {r.path}  max |diff| vs PyTorch = {r.max_abs_diff:.3g} m "
              f"(relative {r.max_rel_diff:.3g}) at {size[0]}x{size[1]}  {'ok' if ok else 'MISMATCH'}")
    if failed:
        print(f"lumde export: an export differs from PyTorch by more than the tolerance {cfg.tolerance:g} "
              "(relative); do not deploy it")
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    config, overrides = _overrides(args)
    return run_export(load(ExportConfig, config, overrides))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a model file to ONNX / TorchScript and check it",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", metavar="MODEL_FILE | KEY=VALUE",
                        help="the model file, and/or overrides of config keys (e.g. opset=18)")
    parser.add_argument("--config", default=None, help="export yaml (keys: model, out, format, input_size, ...)")
    parser.add_argument("--out", default=None, help="output folder (default: exported)")
    parser.add_argument("--format", default=None, choices=("onnx", "torchscript", "both"), help="default both")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="tracing / check input size (default: the model's meta input_size)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (>= 17, default 17)")
    parser.add_argument("--name", default=None, help="file stem of the exports (default: the model file's)")
    parser.add_argument("--tolerance", type=float, default=None, help="max relative difference (default 1e-4)")
    parser.set_defaults(func=_export)
