"""Model files: a state_dict plus the metadata needed to rebuild and use the model.

The file is a plain dict saved with ``torch.save`` and read with ``torch.load(weights_only=True)``,
so loading never executes code from the file::

    {"format": "lumde_depth.model/1", "arch": str, "arch_kwargs": dict, "state_dict": dict,
     "meta": dict}   # meta: input_size [H, W], depth_range [min, max], kind, trained_on, ...

:func:`load_model` also takes a training checkpoint (``RUN_DIR/checkpoints/step_N.pt``, see
:mod:`lumde_depth.engine.checkpoint`): its model weights, architecture and metadata are read from
it, so every tool that takes a model file takes an intermediate checkpoint too. File names say what
a file is: ``NAME.pt`` model files, ``NAME.torchscript.pt`` / ``NAME.onnx`` exports (for deployment
runtimes; ``lumde export`` writes them), ``step_N.pt`` checkpoints.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lumde_depth.config import ConfigError
from lumde_depth.models.registry import build

FORMAT = "lumde_depth.model/1"
TRAIN_STATE_FORMAT = "lumde_depth.train_state/1"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: Names that stand for the package's own model files wherever a model file is asked for.
SHIPPED = {"shipped": WEIGHTS_DIR / "student.pt", "shipped_mono": WEIGHTS_DIR / "mono_student.pt"}


class ModelFileError(ConfigError):
    """A model file is missing, foreign, tampered with or does not fit its architecture (a user error:
    the ``lumde`` command prints it without a traceback)."""


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


def model_file(name: str | Path) -> Path:
    """The path of a model file given by path or as ``shipped`` / ``shipped_mono``."""
    return SHIPPED.get(str(name), Path(name).expanduser())


def read_payload(path: str | Path) -> dict[str, Any]:
    """Load a file saved by torch.save safely (``weights_only=True``); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if is_torchscript(path):
        raise ModelFileError(f"{path} is a TorchScript export (for runtimes without lumde_depth, e.g. libtorch): "
                             "lumde_depth tools load the model file it was exported from (NAME.pt), a training "
                             "checkpoint or the ONNX export (NAME.onnx, DepthCompleter / the node)")
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
    if payload.get("format") == TRAIN_STATE_FORMAT:
        payload = _checkpoint_as_model(payload)
    if payload.get("format") != FORMAT or "arch" not in payload or "state_dict" not in payload:
        raise ModelFileError(f"{path}: refused: not a {FORMAT} file (format={payload.get('format')!r}); "
                             "give a model file (RUN_DIR/model.pt, best.pt), a training checkpoint "
                             "(RUN_DIR/checkpoints/step_N.pt) or save one with lumde_depth.models.io.save_model")
    try:
        model = build(payload["arch"], **payload.get("arch_kwargs", {}))
    except KeyError as exc:
        raise ModelFileError(f"{path}: {exc.args[0]} (a model of your own: import the module that registers "
                             "it first)") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit architecture '{payload['arch']}': "
                             f"{str(exc).splitlines()[0]}") from None
    return model.to(map_location).eval(), dict(payload.get("meta", {}))


def is_torchscript(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding code/ and constants.pkl)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def _checkpoint_as_model(state: dict[str, Any]) -> dict[str, Any]:
    """The model-file payload of a training checkpoint: its weights, the run's architecture and the
    metadata the run's model file gets (plus ``checkpoint_step``)."""
    config = state.get("config", {})
    model = config.get("model", {})
    meta = dict(state.get("meta") or {"depth_range": config.get("data", {}).get("depth_range"),
                                      "kind": model.get("kind", "completion"), "experiment": config.get("name")})
    return {"format": FORMAT, "arch": model.get("name"), "arch_kwargs": model.get("kwargs", {}),
            "state_dict": state.get("model"), "meta": {**meta, "steps": state.get("step"),
                                                       "checkpoint_step": state.get("step")}}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model
