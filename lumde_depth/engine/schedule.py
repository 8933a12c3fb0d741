"""Training stages and the learning rate at every step.

The learning rate is a pure function of the global step and the config, so a resumed run needs no
scheduler object to continue on the same curve: the checkpoint's step is the scheduler state.
"""
from __future__ import annotations

from typing import Sequence

import torch

from lumde_depth.config import ConfigError
from lumde_depth.engine.experiment import OptimConfig, StageConfig


def stage_at(stages: Sequence[StageConfig], step: int) -> tuple[int, int]:
    """(index of the stage that owns global ``step``, global step where that stage starts)."""
    start = 0
    for index, stage in enumerate(stages):
        if step < start + stage.steps:
            return index, start
        start += stage.steps
    return len(stages) - 1, start - stages[-1].steps


def lr_at(optim: OptimConfig, stage: StageConfig, step_in_stage: int) -> float:
    """The stage's lr after warm-up and the decay policy ('constant', 'step' or 'poly')."""
    if optim.policy == "step":
        factor = optim.gamma ** (step_in_stage // optim.step_size)
    elif optim.policy == "poly":
        factor = max(0.0, 1.0 - step_in_stage / stage.steps) ** optim.power
    else:
        factor = 1.0
    if optim.warmup_steps and step_in_stage < optim.warmup_steps:
        factor *= (step_in_stage + 1) / optim.warmup_steps
    return stage.lr * factor


def trainable(name: str, stage: StageConfig) -> bool:
    """Whether parameter ``name`` learns in ``stage`` (``train`` prefixes, minus ``freeze`` prefixes)."""
    chosen = not stage.train or any(_under(name, p) for p in stage.train)
    return chosen and not any(_under(name, p) for p in stage.freeze)


def check_stage_prefixes(model: torch.nn.Module, stages: Sequence[StageConfig]) -> None:
    """Every ``train`` / ``freeze`` prefix must name parameters of the model (a typo would freeze nothing)."""
    names = [n for n, _ in model.named_parameters()]
    tops = sorted({n.split(".")[0] for n in names})
    for i, stage in enumerate(stages):
        for key in ("train", "freeze"):
            for prefix in getattr(stage, key):
                if not any(_under(n, prefix) for n in names):
                    raise ConfigError(f"stages[{i}].{key}: '{prefix}' names no parameter of the model "
                                      f"(its top-level modules: {', '.join(tops)})")
        if not any(trainable(n, stage) for n in names):
            raise ConfigError(f"stages[{i}] ('{stage.name}') trains no parameter; check its train/freeze lists")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")
