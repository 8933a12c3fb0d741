"""Model files: a state_dict plus the metadata needed to rebuild and use the model.

The file is a plain dict saved with ``torch.save`` and read with ``torch.load(weights_only=True)``,
so loading never executes code from the file::

    {"format": "lumde_depth.model/1", "arch": str, "arch_kwargs": dict, "state_dict": dict,
     "meta": dict}   # meta: input_size [H, W], depth_range [min, max], kind, trained_on, ...
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from lumde_depth.models.registry import build

FORMAT = "lumde_depth.model/1"


class ModelFileError(ValueError):
    """A model file is missing, foreign, tampered with or does not fit its architecture."""


def save_model(path: str | Path, model: torch.nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (built by :func:`build`) with its architecture and ``meta``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    payload = {"format": FORMAT, "arch": unwrap(model).arch_name, "arch_kwargs": dict(unwrap(model).arch_kwargs),
               "state_dict": state, "meta": dict(meta or {})}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_payload(path: str | Path) -> dict[str, Any]:
    """Load a file saved by torch.save safely (``weights_only=True``); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, OSError) as exc:
        raise ModelFileError(
            f"{path}: refused: not a lumde_depth model/checkpoint, or it holds objects other than tensors "
            f"and plain data (it would need code execution to load): {str(exc).splitlines()[0]}") from None
    if not isinstance(payload, dict):
        raise ModelFileError(f"{path}: refused: expected a dict payload, got {type(payload).__name__}")
    return payload


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_model`; returns ``(model in eval mode, meta)``."""
    payload = read_payload(path)
    if payload.get("format") != FORMAT or "arch" not in payload or "state_dict" not in payload:
        raise ModelFileError(f"{path}: refused: not a {FORMAT} file (format={payload.get('format')!r}); "
                             "export one with `lumde export` or save it with lumde_depth.models.io.save_model")
    model = build(payload["arch"], **payload.get("arch_kwargs", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit architecture '{payload['arch']}': "
                             f"{str(exc).splitlines()[0]}") from None
    return model.to(map_location).eval(), dict(payload.get("meta", {}))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model
