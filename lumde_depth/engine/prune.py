"""Random layer pruning stability test (CDSPN thesis, algorithm 1 and table 3.1).

For one layer at a time, ``gamma`` of its filters are disabled at random (their output channels
zeroed by forward hooks, which is what zeroing the filters' weights and bias does; the model itself
is not modified), the model is re-evaluated and the metric change is recorded. A layer is the unit
the thesis prunes (:func:`prune_units`):

- a CDSPN unified block (depthwise kxk + pointwise 1x1): its filters are the pointwise output
  channels; the depthwise channels of the next block that read them follow (they get zeros here, and
  go with them when the width is changed); the identity residual still passes;
- a ResNet basic block (the LSPKD models; PE-Net's ``e1``..``e10`` of thesis table 3.1 are such
  blocks): the same channels of both 3x3 convolutions, i.e. the block's width; the shortcut still passes;
- any other conv layer (stems, heads, transposed-conv decoders, affinity heads): its own filters.

The relative degradation ``w`` (positive = worse) sorts the layer with thresholds eps1 < eps2 < eps3:

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
from lumde_depth.models.blocks import BasicBlock, UnifiedBlock

CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass(frozen=True)
class PruneUnit:
    """One layer of the test: ``filters`` output channels, disabled together in every module of ``targets``."""

    name: str
    type: str
    filters: int
    targets: tuple[nn.Module, ...]


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


def _unit(name: str, module: nn.Module) -> PruneUnit | None:
    """The pruning unit rooted at ``module``, or None when it is not one."""
    if isinstance(module, UnifiedBlock):  # the pointwise output (after its BN / ReLU when it has them)
        conv = module.pointwise if isinstance(module.pointwise, nn.Conv2d) else module.pointwise[0]
        return PruneUnit(name, "UnifiedBlock", conv.out_channels, (module.pointwise,))
    if isinstance(module, BasicBlock):  # after each BN: ReLU(0) = 0 and nothing is added before the shortcut
        return PruneUnit(name, "BasicBlock", module.conv2.out_channels, (module.bn1, module.bn2))
    if isinstance(module, CONV_TYPES):
        return PruneUnit(name, type(module).__name__, module.out_channels, (module,))
    return None


def prune_units(model: nn.Module, prefixes: Sequence[str] = ()) -> list[PruneUnit]:
    """The model's pruning units with more than one filter, in definition order, optionally under
    ``prefixes``: blocks as a whole (their convs are not listed again), other conv layers alone."""
    units, inside = [], set()
    for name, module in model.named_modules():
        unit = None if id(module) in inside else _unit(name, module)
        if unit is None:
            continue
        if isinstance(module, (UnifiedBlock, BasicBlock)):
            inside.update(id(m) for m in module.modules())
        if unit.filters > 1:
            units.append(unit)
    if prefixes:
        chosen = [u for u in units if any(u.name == p or u.name.startswith(p.rstrip(".") + ".") for p in prefixes)]
        if not chosen:
            raise ValueError(f"no layer of the model is under {list(prefixes)}; layer names look like "
                             f"{', '.join(u.name for u in units[:5])}, ...")
        return chosen
    return units


def disable_filters(modules: Sequence[nn.Module], channels: torch.Tensor) -> list[torch.utils.hooks.RemovableHandle]:
    """Zero the given output channels of every module until the returned handles are removed."""
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output.index_fill(1, channels.to(output.device), 0.0)
    return [module.register_forward_hook(hook) for module in modules]


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
    """Baseline metrics and one :class:`PruneRow` per pruning unit (as a json-ready dict)."""
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
    for unit in tqdm(prune_units(model, layers), desc="prune-test", disable=not progress):
        count = unit.filters
        disabled = min(count, max(1, round(gamma * count))) if gamma > 0 else 0
        after = 0.0
        for _ in range(repeats):
            channels = torch.randperm(count, generator=generator)[:disabled]
            handles = disable_filters(unit.targets, channels)
            try:
                after += score()[metric] / repeats
            finally:
                for handle in handles:
                    handle.remove()
        change = after - before
        worse_by = (change if lower_better else -change) / max(abs(before), 1e-12)
        verdict, suggested = suggest_width(count, worse_by, gamma, eps)
        rows.append(PruneRow(unit.name, unit.type, count, disabled, before, after, change,
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
