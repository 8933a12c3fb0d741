"""``lumde eval``: KITTI (RMSE, MAE mm, iRMSE, iMAE 1/km) or NYUv2 (RMSE, REL, d1-d3) metrics.

Either from an experiment (``--config FILE``: the model is ``eval.model`` or RUN_DIR/model.pt,
the data is the config's validation split) or explicitly
(``--model FILE [FILE ...] --data KIND --root DIR --split val``). A model is a model file, a training
checkpoint (``RUN_DIR/checkpoints/step_N.pt``) or ``shipped``; several models make one table, one row
each, on the same frames. Writes json: MODEL_eval_SPLIT.json next to one model file, or ``--json``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lumde_depth.config import ConfigError
from lumde_depth.engine.experiment import PROTOCOLS, DataConfig


def _resolve(args: argparse.Namespace):
    """(model files, DataConfig, protocol, batch size, device) from the config or the explicit flags."""
    if args.config:
        from lumde_depth.engine.experiment import load_experiment
        cfg = load_experiment(args.config, args.overrides)
        models = args.model or [cfg.eval.model or Path(args.out or Path("runs") / cfg.name) / "model.pt"]
        data = cfg.data
        if args.split:
            data.val_split = args.split
        return models, data, args.protocol or data.protocol, cfg.eval.batch_size, cfg.device
    if args.overrides:
        raise ConfigError(f"overrides {args.overrides} need --config")
    missing = [flag for flag, value in (("--model", args.model), ("--data", args.data), ("--root", args.root))
               if not value]
    if missing:
        raise ConfigError(f"give --config FILE, or all of --model, --data and --root (missing {', '.join(missing)})")
    data = DataConfig(kind=args.data, root=str(args.root), val_split=args.split or "val",
                      max_val_samples=args.max_samples)
    return args.model, data, args.protocol or ("nyu" if args.data == "nyuv2" else "kitti"), 1, "auto"


def _eval(args: argparse.Namespace) -> int:
    from lumde_depth.engine.datasets import build_split
    from lumde_depth.engine.distributed import pick_device
    from lumde_depth.engine.evaluate import evaluate, format_table, write_json
    from lumde_depth.models.io import load_model, model_file
    if args.model:  # KEY=VALUE words after --model are overrides, not model files
        args.overrides += [m for m in args.model if "=" in m and not Path(m).exists()]
        args.model = [m for m in args.model if m not in args.overrides] or None
    names, data, protocol, batch_size, device = _resolve(args)
    if args.max_samples:
        data.max_val_samples = args.max_samples
    models = [(str(name), model_file(name), *load_model(model_file(name))) for name in names]  # all checked first
    dataset = build_split(data, data.val_split, train=False)
    rows, results = {}, []
    for name, path, model, meta in models:
        metrics = evaluate(model, dataset, protocol, kind=meta.get("kind", "completion"), batch_size=batch_size,
                           depth_range=meta.get("depth_range"), device=pick_device(device), progress=True)
        rows[_label(name, path, meta, model, rows)] = metrics
        results.append({"model": str(path), "metrics": metrics})
    kind, root = data.val_kind or data.kind, data.val_root or data.root
    print(f"{kind} {root} split '{data.val_split}', {int(results[0]['metrics']['samples'])} images, "
          f"{protocol} protocol")
    print(format_table(rows, protocol))
    head = {"data": kind, "root": str(root), "split": data.val_split, "protocol": protocol}
    if len(results) == 1:
        name, path = models[0][:2]
        out = args.json or (Path(f"{name}_eval_{data.val_split}.json") if name in _shipped()
                            else path.with_name(f"{path.stem}_eval_{data.val_split}.json"))
        write_json(out, {**results[0], **head})
    else:
        out = args.json or Path(f"eval_{data.val_split}.json")
        write_json(out, {**head, "models": results})
    print(f"wrote {out}")
    return 0


def _shipped() -> dict:
    from lumde_depth.models.io import SHIPPED
    return SHIPPED


def _label(name: str, path: Path, meta: dict, model, taken: dict) -> str:
    """A table row name saying which file and which run, unique in the table."""
    what = meta.get("experiment") or getattr(model, "arch_name", "model")
    step = f", step {meta['checkpoint_step']}" if "checkpoint_step" in meta else ""
    label = f"{name if name in _shipped() else path.name} ({what}{step})"
    return label if label not in taken else f"{path} ({what}{step})"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a model with the KITTI or NYUv2 protocol",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="experiment yaml (model and validation data from it)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--out", type=Path, default=None, help="run dir of the experiment (default runs/<name>)")
    parser.add_argument("--model", nargs="+", default=None, metavar="MODEL",
                        help="model file(s), training checkpoint(s) or 'shipped'; several: one table row each")
    parser.add_argument("--data", default=None, help="dataset kind: kitti_dc, kitti_raw, nyuv2")
    parser.add_argument("--root", type=Path, default=None, help="dataset root")
    parser.add_argument("--split", default=None, help="split to evaluate (default val)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=None, help="metrics (default from the data)")
    parser.add_argument("--max-samples", type=int, default=None, help="evaluate the first N images")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the metrics json (default: next to the model file; "
                             "eval_SPLIT.json for several models)")
    parser.set_defaults(func=_eval)
