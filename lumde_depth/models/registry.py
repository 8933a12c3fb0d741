"""The model registry: architectures by name, built with keyword arguments."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

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


def _builder(name: str) -> Callable[..., torch.nn.Module]:
    if name not in _BUILDERS:
        from lumde_depth.config import closest_key
        guess = closest_key(name, _BUILDERS)
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise KeyError(f"unknown model '{name}'{hint} (known: {', '.join(names())})")
    return _BUILDERS[name]


def check_arguments(name: str, kwargs: Mapping[str, Any]) -> None:
    """Raise a ``TypeError`` naming the closest valid argument when ``kwargs`` do not fit the
    builder of ``name`` (an unknown or a missing argument), without building anything."""
    from lumde_depth.config import closest_key
    signature = inspect.signature(_builder(name))
    params = signature.parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in kwargs:
            if key not in valid:
                guess = closest_key(key, valid)
                hint = f"; did you mean '{guess}'?" if guess else ""
                shown = [n if params[n].default is params[n].empty else f"{n}={params[n].default!r}" for n in valid]
                raise TypeError(f"model '{name}' takes no argument '{key}'{hint} (its arguments: "
                                f"{', '.join(shown) or 'none'})")
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise TypeError(f"model '{name}': {exc}") from None


def build(name: str, **kwargs) -> torch.nn.Module:
    """Build the architecture ``name``; an unknown name or argument is an error naming the closest one."""
    check_arguments(name, kwargs)
    model = _BUILDERS[name](**kwargs)
    model.arch_name = name
    model.arch_kwargs = dict(kwargs)
    return model
