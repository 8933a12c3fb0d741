"""The model registry: architectures by name, built with keyword arguments."""
from __future__ import annotations

from typing import Callable

import torch

_BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., torch.nn.Module]], Callable[..., torch.nn.Module]]:
    """Decorator: make ``builder(**kwargs) -> nn.Module`` available as ``build(name, **kwargs)``."""
    def wrap(builder: Callable[..., torch.nn.Module]) -> Callable[..., torch.nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model '{name}' is registered twice")
        _BUILDERS[name] = builder
        return builder
    return wrap


def names() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_BUILDERS)


def build(name: str, **kwargs) -> torch.nn.Module:
    """Build the architecture ``name``; an unknown name is an error naming the closest one."""
    if name not in _BUILDERS:
        from lumde_depth.config import closest_key
        guess = closest_key(name, _BUILDERS)
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise KeyError(f"unknown model '{name}'{hint} (known: {', '.join(names())})")
    model = _BUILDERS[name](**kwargs)
    model.arch_name = name
    model.arch_kwargs = dict(kwargs)
    return model
