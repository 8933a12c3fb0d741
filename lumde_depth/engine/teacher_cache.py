"""``lumde distill --cache-teacher``: the teacher's predictions on the training set, computed once.

Cached depth is keyed by the sample ``name`` only, so it is valid only when the training set gives
the same crop of a frame every time. :func:`build_cache` checks that first (it loads one sample
under several augmentation seeds), refuses a randomly augmented training set and records in the
cache that its frames were not augmented; a distillation run from a cache checks its own training
set the same way (:mod:`lumde_depth.engine.preflight`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lumde_depth.config import ConfigError
from lumde_depth.engine.datasets import SeededSamples, build_split, to_device
from lumde_depth.engine.experiment import ExperimentConfig


def build_cache(cfg: ExperimentConfig, cache_dir: str | Path) -> Path:
    """Write (or reuse) the teacher cache for the config's training set; returns the cache folder."""
    from lumde_depth.distill.teachers import cache_teacher_predictions, load_teacher
    cache_dir = Path(cache_dir)
    if (cache_dir / "index.json").is_file():
        print(f"reusing the teacher cache {cache_dir}")
        return cache_dir
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--cache-teacher under torchrun: build the cache once in a single process first "
                          "(`lumde distill --config FILE --cache-teacher --cache-only`), then launch torchrun")
    if not cfg.teacher.source:
        raise ConfigError("--cache-teacher needs teacher.source (the model whose predictions are cached)")
    from lumde_depth.distill.teachers import TeacherError, check_teacher_kind
    from lumde_depth.engine.preflight import check_model_kind
    from lumde_depth.models import build
    check_model_kind(build(cfg.model.name, **cfg.model.kwargs), cfg.model.kind, cfg.model.name)
    try:
        teacher = load_teacher(cfg.teacher.source)
        check_teacher_kind(teacher, cfg.model.kind)
    except TeacherError as exc:
        raise ConfigError(f"teacher.source: {exc}") from None
    dataset = build_split(cfg.data, cfg.data.train_split, train=True)
    check_deterministic(dataset)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")
    loader = DataLoader(dataset, batch_size=cfg.data.batch_size, shuffle=False, num_workers=cfg.data.num_workers)
    batches = (to_device(batch, device) for batch in loader)
    augmentation = {"random": False, "data": f"{cfg.data.kind}:{cfg.data.root}:{cfg.data.train_split}",
                    "train_kwargs": cfg.data.train_kwargs}
    try:
        cache_teacher_predictions(teacher, batches, cache_dir, progress=cfg.log.progress, augmentation=augmentation)
    except TeacherError as exc:
        raise ConfigError(f"teacher.source: {exc}") from None
    return cache_dir


def check_deterministic(dataset, draws: int = 8, what: str = "--cache-teacher") -> None:
    """Refuse a training set whose samples change between draws (random crops, flips, jitter) for
    cached teacher predictions (``what`` names where they come from).

    Sample 0 is drawn under ``draws`` seeds; an augmentation applied with probability p goes
    unnoticed with probability p^draws + (1-p)^draws (1/128 for a coin-flip flip).
    """
    first = SeededSamples(dataset, seed=0)[0]
    draws_differ = any(not torch.equal(first[k], other[k])
                       for other in (SeededSamples(dataset, seed=seed)[0] for seed in range(1, draws))
                       for k in first if torch.is_tensor(first[k]))
    if draws_differ:
        raise ConfigError(f"{what}: the training set is randomly augmented (sample 0 differs between draws: flips, "
                          "colour jitter or random crops), so cached teacher predictions would not match the frames "
                          "the student sees: set data.train_kwargs.augment=false (and no crop), or distill from a "
                          "live teacher (a model file as teacher.source)")
