"""``lumde bench``: parameters, GFLOPs and latency of the registered models.

    lumde bench [--config FILE] [--models SPEC ...] [--json OUT] [--runs N] [--device cpu] [KEY=VALUE ...]

A model spec is a registered name with optional keyword arguments, e.g. ``lspkd_teacher``,
``lspkd_student:width=0.125``, ``cdspn:scale=64``, or a trained model: a model file, a training
checkpoint or ``shipped``. Without ``--models`` every registered model is
measured (the papers' variants for ``lspkd_student`` and ``cdspn``). GFLOPs are counted with
``torch.utils.flop_counter`` (a multiply-add = 2 FLOPs) at 1216x352 and 304x228 by default and
set next to the papers' figures; latency is the median forward time at ``latency_size``.
"""
from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass
from typing import Optional

from lumde_depth.config import ConfigError, field, load


@dataclass
class BenchConfig:
    models: list[str] = field(default_factory=list, doc="model specs NAME[:key=value,...], model files, checkpoints "
                                                        "or 'shipped'; empty = all registered")
    sizes: list[list[int]] = field(default_factory=lambda: [[352, 1216], [228, 304]], low=1,
                                   doc="[H, W] resolutions for the FLOP columns")
    latency_size: list[int] = field(default_factory=lambda: [228, 304], low=1, doc="[H, W] for latency")
    runs: int = field(5, low=0, high=10000, doc="timed runs per model (0 = no latency)")
    warmup: int = field(1, low=0, high=100, doc="untimed runs before timing")
    large_params_m: float = field(20.0, low=0.0, doc="models above this many M parameters are timed large_runs times")
    large_runs: int = field(1, low=0, high=10000, doc="timed runs for large models (the teacher)")
    device: str = field("cpu", choices=("cpu", "cuda", "auto"), doc="where latency is measured")
    threads: int = field(0, low=0, high=1024, doc="torch CPU threads (0 = torch's default)")
    json: Optional[str] = field(None, doc="write the rows as json here")


def run_bench(cfg: BenchConfig) -> dict:
    """Measure every model of ``cfg``; returns the report (also printed, and written to json)."""
    import torch

    from lumde_depth.engine.distributed import pick_device
    from lumde_depth.engine.evaluate import write_json
    from lumde_depth.engine.profile import default_specs, markdown_table, paper_note, profile_spec
    for key, value in (("latency_size", cfg.latency_size), *((f"sizes[{i}]", s) for i, s in enumerate(cfg.sizes))):
        if len(value) != 2:
            raise ConfigError(f"'{key}' must be [H, W], got {value}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    specs = cfg.models or default_specs()
    rows = []
    for spec in specs:
        try:
            rows.append(profile_spec(spec, cfg.sizes, cfg.latency_size, cfg.runs, cfg.warmup, device,
                                     cfg.large_params_m * 1e6, cfg.large_runs))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"model '{spec}': {exc.args[0] if exc.args else exc}") from None
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "device": str(device)},
              "backend": "PyTorch eager", "rows": rows}
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {device}, PyTorch eager")
    print(markdown_table(rows, cfg.sizes))
    print(paper_note())
    if cfg.json:
        print(f"wrote {write_json(cfg.json, report)}")
    return report


def _bench(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.models:
        overrides.append("models=[" + ", ".join(f"'{m}'" for m in args.models) + "]")
    for key in ("json", "runs", "device"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    run_bench(load(BenchConfig, args.config, overrides))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="params, GFLOPs and latency of the registered models",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of config keys, e.g. runs=3")
    parser.add_argument("--config", default=None, help="bench yaml (keys: models, sizes, latency_size, runs, ...)")
    parser.add_argument("--models", nargs="+", default=None, metavar="SPEC",
                        help="model specs, e.g. lspkd_teacher lspkd_student:width=0.125 cdspn:scale=64, or "
                             "trained models: model files, checkpoints, shipped")
    parser.add_argument("--json", default=None, help="write the report as json here")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per model (default 5; 0 = none)")
    parser.add_argument("--device", default=None, choices=("cpu", "cuda", "auto"), help="default cpu")
    parser.set_defaults(func=_bench)
