"""``lumde prune-test --config FILE``: the random layer pruning stability test (CDSPN thesis table 3.1).

For every layer (a CDSPN unified block, a ResNet basic block, or another conv layer: see
:mod:`lumde_depth.engine.prune`), ``prune.gamma`` of its filters are disabled at random and the model is
re-evaluated on the validation split; prints the per-layer metric change with a verdict and a
suggested width, and writes json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lumde_depth.cli.train import add_config_arguments, load_config


def _prune_test(args: argparse.Namespace) -> int:
    from lumde_depth.engine.datasets import build_split
    from lumde_depth.engine.distributed import pick_device
    from lumde_depth.engine.evaluate import write_json
    from lumde_depth.engine.prune import format_prune_table, prune_test
    from lumde_depth.models.io import load_model
    cfg = load_config(args)
    model_path = Path(args.model or cfg.eval.model or Path(args.out or Path("runs") / cfg.name) / "model.pt")
    model, meta = load_model(model_path)
    dataset = build_split(cfg.data, cfg.data.val_split, train=False)
    report = prune_test(model, dataset, cfg.data.protocol, kind=meta.get("kind", cfg.model.kind),
                        gamma=cfg.prune.gamma, repeats=cfg.prune.repeats, metric=cfg.prune.metric,
                        layers=cfg.prune.layers, eps=cfg.prune.eps, seed=cfg.seed,
                        depth_range=meta.get("depth_range"), device=pick_device(cfg.device),
                        batch_size=cfg.eval.batch_size, progress=True)
    report["model"] = str(model_path)
    print(format_prune_table(report))
    out = args.json or model_path.with_name(f"{model_path.stem}_prune_test.json")
    write_json(out, report)
    print(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prune-test", help="random layer pruning stability test (per-layer sensitivity)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="run dir of the experiment (default runs/<name>)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default eval.model or RUN_DIR/model.pt)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the report json")
    parser.set_defaults(func=_prune_test)
