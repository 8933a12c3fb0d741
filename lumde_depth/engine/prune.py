"""Random layer pruning stability test (CDSPN thesis, algorithm 1 and table 3.1).

For one conv layer at a time, ``gamma`` of its filters are disabled at random (their output
channels zeroed by a forward hook, which is what zeroing the filters' weights and bias does; the
model itself is not modified), the model is re-evaluated and the metric change is recorded. The
relative degradation ``w`` (positive = worse) sorts the layer with thresholds eps1 < eps2 < eps3:

- ``w < eps1``: the layer hardly matters: prune it to ``(1 - gamma)`` of its filters;
- ``w < eps2``: give it fewer filters (``1 - gamma / 2``);
- ``w > eps3``: it is important: give it more filters (x1.5);
- otherwise keep its width.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from lumde_depth.engine.evaluate import evaluate, format_value
from lumde_depth.engine.experiment import PROTOCOL_METRICS

CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass
class PruneRow:
    layer: str
    type: str
    filters: int
    disabled: int
    before: float
    after: float
    change: float
    change_pct: float
    verdict: str
    suggested: int


def conv_layers(model: nn.Module, prefixes: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """Conv layers with more than one filter, in definition order, optionally under ``prefixes``."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, CONV_TYPES) and m.out_channels > 1]
    if prefixes:
        found = [(n, m) for n, m in found if any(n == p or n.startswith(p.rstrip(".") + ".") for p in prefixes)]
        if not found:
            raise ValueError(f"no conv layer of the model is under {list(prefixes)}; layer names look like "
                             f"{', '.join(n for n, _ in conv_layers(model)[:5])}, ...")
    return found


def disable_filters(module: nn.Module, channels: torch.Tensor) -> torch.utils.hooks.RemovableHandle:
    """Zero the given output channels of ``module`` until the returned handle is removed."""
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output.index_fill(1, channels.to(output.device), 0.0)
    return module.register_forward_hook(hook)


def suggest_width(filters: int, worse_by: float, gamma: float, eps: Sequence[float]) -> tuple[str, int]:
    """(verdict, suggested filter count) of thesis algorithm 1 for one layer."""
    if worse_by < eps[0]:
        verdict, width = "prune", filters * (1.0 - gamma)
    elif worse_by < eps[1]:
        verdict, width = "fewer", filters * (1.0 - gamma / 2.0)
    elif worse_by > eps[2]:
        verdict, width = "more", filters * 1.5
    else:
        verdict, width = "keep", float(filters)
    step = 4 if filters >= 8 else 1
    return verdict, max(1, step * math.ceil(width / step))


def prune_test(model: nn.Module, dataset: Dataset, protocol: str = "kitti", kind: str = "completion",
               gamma: float = 0.75, repeats: int = 1, metric: str = "rmse", layers: Sequence[str] = (),
               eps: Sequence[float] = (0.01, 0.05, 0.25), seed: int = 0, depth_range: Sequence[float] | None = None,
               device: str | torch.device = "cpu", batch_size: int = 1, progress: bool = False) -> dict:
    """Baseline metrics and one :class:`PruneRow` per conv layer (as a json-ready dict)."""
    if metric not in PROTOCOL_METRICS[protocol]:
        raise ValueError(f"metric '{metric}' is not reported by the {protocol} protocol "
                         f"(choose one of {', '.join(PROTOCOL_METRICS[protocol])})")
    lower_better = PROTOCOL_METRICS[protocol][metric]
    model = model.to(device).eval()

    def score() -> dict[str, float]:
        return evaluate(model, dataset, protocol, kind=kind, batch_size=batch_size, depth_range=depth_range,
                        device=device)

    baseline = score()
    before = baseline[metric]
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for name, module in tqdm(conv_layers(model, layers), desc="prune-test", disable=not progress):
        count = module.out_channels
        disabled = min(count, max(1, round(gamma * count))) if gamma > 0 else 0
        after = 0.0
        for _ in range(repeats):
            channels = torch.randperm(count, generator=generator)[:disabled]
            handle = disable_filters(module, channels)
            try:
                after += score()[metric] / repeats
            finally:
                handle.remove()
        change = after - before
        worse_by = (change if lower_better else -change) / max(abs(before), 1e-12)
        verdict, suggested = suggest_width(count, worse_by, gamma, eps)
        rows.append(PruneRow(name, type(module).__name__, count, disabled, before, after, change,
                             100.0 * change / max(abs(before), 1e-12), verdict, suggested))
    return {"protocol": protocol, "metric": metric, "gamma": gamma, "repeats": repeats, "eps": list(eps),
            "seed": seed, "baseline": baseline, "rows": [asdict(r) for r in rows]}


def format_prune_table(report: dict) -> str:
    """Markdown table like thesis table 3.1, with verdicts and suggested widths."""
    metric = report["metric"]
    lines = [f"baseline {metric}: {format_value(report['baseline'][metric])}; gamma = {report['gamma']:.0%} of filters "
             f"disabled per layer, {report['repeats']} draw(s)", "",
             f"| layer | type | filters | disabled | {metric} before | {metric} after | change | change % | verdict "
             "| suggested filters |", "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['layer']} | {r['type']} | {r['filters']} | {r['disabled']} | {format_value(r['before'])} | "
                     f"{format_value(r['after'])} | {r['change']:+.4g} | {r['change_pct']:+.1f} | {r['verdict']} | "
                     f"{r['suggested']} |")
    return "\n".join(lines)
