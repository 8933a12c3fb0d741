"""``lumde export``: a model file or training checkpoint to ONNX, TorchScript or a model file, checked.

    lumde export MODEL [--out DIR] [--format onnx|torchscript|both|model] [--name NAME] [--force]
    lumde export MODEL --format onnx --int8 [--calibration DATA_ROOT]
    lumde export --config FILE [KEY=VALUE ...]

``MODEL`` is a model file (``RUN_DIR/model.pt``, ``best.pt``), a training checkpoint
(``RUN_DIR/checkpoints/step_N.pt``) or ``shipped``. ``--format model`` writes a model file
(``NAME.pt``: weights + metadata, what ``lumde eval``, ``DepthCompleter``, the node and
``model.init`` take) -- the one command that makes an intermediate checkpoint a model file.

File names say what a file is: ``NAME.onnx``, ``NAME.torchscript.pt`` (for libtorch; lumde_depth's
own tools load the model file or the ONNX file), ``NAME.pt`` (model file), ``NAME_int8.onnx``. NAME
comes from the run (the experiment's name, ``_best`` for best.pt, ``_stepN`` for a checkpoint; the
file's stem otherwise); an existing file is never overwritten without ``--force``.

The exported graphs return the depth only, have dynamic batch/height/width, and carry the model
file's metadata (``lumde_meta``). Each export is run (onnxruntime / torch.jit) on a random input of
``input_size`` and compared with PyTorch; the max abs / relative difference is printed, and a
relative difference above ``tolerance`` is an error (exit code 1).

``--int8`` adds ``NAME_int8.onnx``: the ONNX export statically quantized by onnxruntime, calibrated on
the network inputs of real frames (a dataset's whole frames, resized to the model's input size as
the node does, or synthetic frames); its difference to the fp32 export on those frames and both
speeds are printed, for the user to decide (``bench/int8.py`` measures it).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from lumde_depth.config import ConfigError, field, load

DEFAULT_SIZE = [352, 1216]
CALIBRATION_SEED = 777  # synthetic calibration frames: a seed no shipped model or benchmark trains or tests on


@dataclass
class ExportConfig:
    model: str = field(doc="model file, training checkpoint or 'shipped' (lumde_depth.models.io)")
    out: str = field("exported", doc="output folder")
    format: str = field("both", choices=("onnx", "torchscript", "both", "model"),
                        doc="what to write: onnx, torchscript, both of them, or a model file (NAME.pt)")
    input_size: Optional[list[int]] = field(None, low=8, doc="H W of the tracing / check input "
                                            "(default: the model file's meta input_size, else 352 1216)")
    opset: int = field(17, low=17, high=23, doc="ONNX opset")
    name: Optional[str] = field(None, doc="file stem of the exports (default: from the run: its experiment name, "
                                          "_best / _stepN for best.pt / a checkpoint; else the file's stem)")
    force: bool = field(False, doc="overwrite existing files of the same name")
    tolerance: float = field(1e-4, low=0.0, doc="largest accepted max relative difference to PyTorch")
    int8: bool = field(False, doc="also write NAME_int8.onnx, statically quantized (needs the ONNX export)")
    calibration: Optional[str] = field(None, doc="int8: dataset root of calibration frames, whole frames resized "
                                       "to the model's input size (default: synthetic frames rendered in memory)")
    calibration_kind: str = field("kitti_dc", choices=("kitti_dc", "kitti_raw", "nyuv2"),
                                  doc="int8: dataset kind of 'calibration'")
    calibration_split: str = field("val", doc="int8: split of 'calibration'")
    calibration_frames: int = field(16, low=1, high=10_000, doc="int8: frames to calibrate on")


def _overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The config file (or None) and the key=value overrides from the command line."""
    model_files = [i for i in args.items if "=" not in i]
    overrides = [i for i in args.items if "=" in i]
    if len(model_files) > 1:
        raise ConfigError(f"one model file at a time, got {model_files}")
    if model_files:
        overrides.insert(0, f"model={model_files[0]}")
    elif args.config is None:
        raise ConfigError("give a MODEL (model file, checkpoint or 'shipped') or --config FILE "
                          "(e.g. lumde export runs/NAME/best.pt --out exported)")
    for key in ("out", "format", "opset", "name", "tolerance", "calibration", "calibration_frames"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    if args.int8:
        overrides.append("int8=true")
    if args.force:
        overrides.append("force=true")
    if args.input_size is not None:
        overrides.append(f"input_size=[{args.input_size[0]}, {args.input_size[1]}]")
    return args.config, overrides


def export_name(path: Path, meta: dict) -> str:
    """The file stem of a model's exports, from the run it came from (never a bare ``model``)."""
    experiment = meta.get("experiment")
    if "checkpoint_step" in meta:
        return f"{experiment or path.parent.parent.name}_step{meta['checkpoint_step']}"
    if path.stem in ("model", "best"):
        base = experiment or path.parent.name
        return base if path.stem == "model" else f"{base}_best"
    return path.stem


def run_export(cfg: ExportConfig) -> int:
    from lumde_depth.engine.export import FORMATS, SUFFIX, export_model
    from lumde_depth.models.io import load_model, model_file, save_model
    if cfg.input_size is not None and len(cfg.input_size) != 2:
        raise ConfigError(f"'input_size' must be [H, W], got {cfg.input_size}")
    if cfg.int8 and cfg.format in ("torchscript", "model"):
        raise ConfigError("'int8' quantizes the ONNX export: use format 'onnx' or 'both'")
    source = model_file(cfg.model)
    model, meta = load_model(source)
    name = cfg.name or export_name(source, meta)
    size = cfg.input_size or meta.get("input_size") or DEFAULT_SIZE
    formats = {"both": FORMATS, "model": ()}.get(cfg.format, (cfg.format,))
    targets = [Path(cfg.out) / f"{name}{SUFFIX[f]}" for f in formats] or [Path(cfg.out) / f"{name}.pt"]
    if cfg.int8:
        targets.append(Path(cfg.out) / f"{name}_int8.onnx")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not cfg.force:
        raise ConfigError(f"{', '.join(existing)} already exist(s): pick another name (--name NAME or --out DIR) "
                          "or overwrite with --force")
    if cfg.format == "model":
        if targets[0].resolve() == source.resolve():
            raise ConfigError(f"{source} would be written onto itself: give --name or --out")
        kept = {k: v for k, v in meta.items() if k != "checkpoint_step"}
        path = save_model(targets[0], model, {**kept, "input_size": list(size), "exported_from": str(source)})
        print(f"{'model file':12s} {path}  ({meta.get('experiment') or model.arch_name}, step {meta.get('steps')}; "
              "for lumde eval, DepthCompleter, the node, model.init)")
        return 0
    results = export_model(model, cfg.out, formats, size, meta, name=name, opset=cfg.opset)
    failed = False
    for r in results:
        ok = r.max_rel_diff <= cfg.tolerance
        failed |= not ok
        print(f"{r.format:12s} {r.path}  max |diff| vs PyTorch = {r.max_abs_diff:.3g} m "
              f"(relative {r.max_rel_diff:.3g}) at {size[0]}x{size[1]}  {'ok' if ok else 'MISMATCH'}")
    if failed:
        print(f"lumde export: an export differs from PyTorch by more than the tolerance {cfg.tolerance:g} "
              "(relative); do not deploy it")
        return 1
    if cfg.int8:
        onnx_path = next(r.path for r in results if r.format == "onnx")
        write_int8(cfg, onnx_path, targets[-1])
    return 0


def calibration_frames(cfg: ExportConfig) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(rgb uint8, sparse metres, K)`` of the calibration frames: the dataset named in the config,
    else synthetic KITTI-like frames rendered in memory."""
    if cfg.calibration is None:
        from lumde_depth.data.synth import render_frames

        for frame, K in render_frames(cfg.calibration_frames, seed=CALIBRATION_SEED):
            yield frame.rgb, frame.sparse, K
        return
    from lumde_depth.data import build_dataset
    from lumde_depth.data.sample import rgb_array

    whole = {"size": None} if cfg.calibration_kind in ("kitti_dc", "kitti_raw") else {}  # not KITTI's 1216x352 crop
    dataset = build_dataset(cfg.calibration_kind, cfg.calibration, cfg.calibration_split, **whole)
    for i in np.linspace(0, len(dataset) - 1, min(cfg.calibration_frames, len(dataset))).astype(int):
        sample = dataset[int(i)]
        yield rgb_array(sample["rgb"]), sample["sparse"][0].numpy(), sample["K"].numpy()


def write_int8(cfg: ExportConfig, fp32: Path, out: Path) -> Path:
    """Quantize ``fp32`` to ``out``, calibrated on the network inputs that ``DepthCompleter`` prepares
    from the calibration frames; print how far its depth is from fp32's on them and both speeds."""
    from lumde_depth.engine.export import quantize_onnx
    from lumde_depth.inference import DepthCompleter
    from lumde_depth.inference.backends import median_times, set_inputs

    prepare = DepthCompleter.load(fp32, backend="onnxruntime", lidar_align=False, warmup=0)
    feeds = [prepare.network_inputs(rgb, sparse, K) for rgb, sparse, K in calibration_frames(cfg)]
    quantize_onnx(fp32, out, feeds)
    nets = [DepthCompleter.load(path, backend="onnxruntime", lidar_align=False).backend for path in (fp32, out)]
    depth: list[list[np.ndarray]] = [[], []]
    for feed in feeds:
        for net, outputs in zip(nets, depth):
            set_inputs(net, feed)
            outputs.append(net.run().copy())
    ms_fp32, ms_int8 = median_times(nets, runs=len(feeds))
    a, b = np.stack(depth[0]), np.stack(depth[1])
    relative = np.abs(b - a) / np.maximum(np.abs(a), 1e-6)
    print(f"{'int8':12s} {out}  |depth - fp32| / fp32 on {len(feeds)} calibration frames: median "
          f"{np.median(relative):.3g}, p99 {np.percentile(relative, 99):.3g}; one run {ms_int8:.1f} ms "
          f"vs fp32 {ms_fp32:.1f} ms here (keep the int8 file only if it is faster and accurate "
          "enough on your data)")
    return out


def _export(args: argparse.Namespace) -> int:
    config, overrides = _overrides(args)
    return run_export(load(ExportConfig, config, overrides))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="a model file or checkpoint to ONNX / TorchScript / a model file",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", metavar="MODEL | KEY=VALUE",
                        help="a model file, training checkpoint or 'shipped', and/or overrides of config keys "
                             "(e.g. opset=18)")
    parser.add_argument("--config", default=None, help="export yaml (keys: model, out, format, input_size, ...)")
    parser.add_argument("--out", default=None, help="output folder (default: exported)")
    parser.add_argument("--format", default=None, choices=("onnx", "torchscript", "both", "model"),
                        help="onnx (NAME.onnx), torchscript (NAME.torchscript.pt), both (default), or model: a "
                             "model file NAME.pt (e.g. from a training checkpoint)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="tracing / check input size (default: the model's meta input_size)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (>= 17, default 17)")
    parser.add_argument("--name", default=None,
                        help="file stem of the exports (default: from the run, e.g. synthetic_student_best)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--tolerance", type=float, default=None, help="max relative difference (default 1e-4)")
    parser.add_argument("--int8", action="store_true",
                        help="also write NAME_int8.onnx, statically quantized; compared with fp32 and timed")
    parser.add_argument("--calibration", default=None,
                        help="int8: dataset root to calibrate on (keys calibration_kind / _split; default: "
                             "synthetic frames)")
    parser.add_argument("--calibration-frames", type=int, default=None, help="int8: frames (default 16)")
    parser.set_defaults(func=_export, extras_to="items")  # KEY=VALUE after an option joins the items
