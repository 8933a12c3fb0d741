"""Training-state checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is a plain dict of tensors and plain data (so it loads with
``torch.load(weights_only=True)``)::

    {"format": "lumde_depth.train_state/1", "step", "epoch", "batch" (position inside the epoch),
     "model", "loss" (state_dicts), "optimizer", "scaler", "rng" (torch, cuda, numpy, python),
     "config" (the experiment as a dict), "meta" (model-file metadata), "best" (best.pt's metric)}

Files are ``RUN_DIR/checkpoints/step_XXXXXXXX.pt``, written atomically (temporary file, fsync,
rename), so a run killed at any moment leaves only complete checkpoints behind; the newest readable
one is what ``--resume`` picks (an unreadable one, e.g. from a full disk, is renamed ``*.corrupt``
and the one before it used). ``meta`` holds what the run's model file would get at that step, so a
checkpoint loads as a model file too (:func:`lumde_depth.models.io.load_model`).
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lumde_depth.models.io import TRAIN_STATE_FORMAT as FORMAT
from lumde_depth.models.io import ModelFileError, read_payload

_NAME = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointError(ModelFileError):
    """A training-state checkpoint is missing, foreign or does not fit the run."""


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's complete checkpoints, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def capture_rng() -> dict[str, Any]:
    """The state of every random generator a training step may draw from, as tensors / plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.random.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` (must hold ``step``) atomically and delete all but the newest ``keep``."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{int(state['step']):08d}.pt"
    tmp = folder / f".{path.name}.tmp"
    with open(tmp, "wb") as handle:
        torch.save({"format": FORMAT, **state}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_dir(folder)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    payload = read_payload(path)
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a lumde_depth training checkpoint (format={payload.get('format')!r}); "
                              "to start a run from a model file's weights set model.init=FILE (with a new --out)")
    return payload


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (a power cut must not resurrect the temporary name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
