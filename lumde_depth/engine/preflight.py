"""Checks that need the built models and the data, run before a run folder is written to.

:func:`check_before_writing` runs once per ``lumde train`` / ``lumde distill``, after the model,
teacher, loss and training set exist and before the trainer writes anything: the model is of the
kind the config says, a teacher cache fits the training set (no random augmentation, the same frames
and size), and sample 0 of the training set goes through the teacher, the model and the loss once
(without gradients, updates or a trace in batch-norm statistics or random generators). A mismatch
of kinds, input sizes, output sizes or named features stops the run here, with the first sample
named, instead of at step 1 in a fresh run folder.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.utils.data import Dataset, default_collate

from lumde_depth.config import ConfigError
from lumde_depth.engine.datasets import SeededSamples, to_device
from lumde_depth.engine.experiment import ExperimentConfig


def check_before_writing(cfg: ExperimentConfig, objective: torch.nn.Module, teacher: Any, train_set: Dataset,
                         features: Sequence[str], device: torch.device) -> None:
    """All of this module's checks (ConfigError on the first failure)."""
    check_model_kind(objective.model, cfg.model.kind, cfg.model.name)
    check_teacher_cache(teacher, train_set, cfg.seed)
    check_first_batch(objective, teacher, train_set, features, cfg.stages[0].target, device, cfg.seed)


def check_model_kind(model: torch.nn.Module, kind: str, name: str) -> None:
    """``model.kind`` in the config is what the architecture's ``forward`` takes."""
    from lumde_depth.distill.teachers import model_kind
    actual = model_kind(model)
    if actual != kind:
        takes = "(rgb, sparse)" if actual == "completion" else "(rgb) only"
        raise ConfigError(f"'model.kind' is '{kind}' but {name} takes {takes}, a {actual} model: set "
                          f"model.kind: {actual}")


def check_teacher_cache(teacher: Any, train_set: Dataset, seed: int) -> None:
    """A cache of teacher predictions (``teacher.source=<folder>``, or from ``--cache-teacher``) holds
    one depth per frame name: refuse it when the training set is randomly augmented, when it was
    made from augmented frames, or when it lacks the first frame or holds another size."""
    from lumde_depth.distill.teachers import CachedTeacher
    from lumde_depth.engine.teacher_cache import check_deterministic
    if not isinstance(teacher, CachedTeacher):
        return
    where = f"teacher.source {teacher.folder} (a cache of teacher predictions)"
    if teacher.augmentation is not None and teacher.augmentation.get("random", False):
        raise ConfigError(f"{where} was made from randomly augmented frames ({teacher.augmentation}), so its depths "
                          "match no frame the student sees: re-create it with `lumde distill --cache-teacher "
                          "--cache-only` and data.train_kwargs.augment=false")
    check_deterministic(train_set, what=where)
    sample = SeededSamples(train_set, seed)[0]
    size = tuple(sample["rgb"].shape[-2:])
    if size != teacher.input_size:
        raise ConfigError(f"{where} holds {teacher.input_size[0]}x{teacher.input_size[1]} predictions but the training "
                          f"frames are {size[0]}x{size[1]}: cache with the training crop (data.train_kwargs)")
    if sample["name"] not in teacher.files:
        raise ConfigError(f"{where} has no prediction for the training frame {sample['name']!r} "
                          f"({len(teacher.files)} frames cached): it was made for other data; re-create it for "
                          "this data.root and train split")


def check_first_batch(objective: torch.nn.Module, teacher: Any, train_set: Dataset, features: Sequence[str],
                      target: str, device: torch.device, seed: int) -> None:
    """Sample 0 through the teacher, the model and the loss, leaving no trace (buffers, random state)."""
    sample = SeededSamples(train_set, seed)[0]
    batch = to_device(default_collate([sample]), device)
    buffers = [b.detach().clone() for b in objective.buffers()]
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            teacher_out = teacher(batch, features=features) if teacher is not None else None
            objective(batch, teacher_out, target)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        size = "x".join(str(n) for n in sample["rgb"].shape[-2:])
        who = "the teacher, the model and the loss" if teacher is not None else "the model and the loss"
        raise ConfigError(f"the first training frame ({sample['name']}, {size}) does not go through {who}: "
                          f"{message}") from None
    finally:
        with torch.no_grad():
            for saved, live in zip(buffers, objective.buffers()):
                live.copy_(saved)
