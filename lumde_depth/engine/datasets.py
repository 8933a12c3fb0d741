"""Datasets for the engine: built from the experiment config, with reproducible augmentation.

:func:`build_split` names the folders a split is read from and checks its files up front
(``data.check``, ``data.skip_corrupt``). Random crops, flips and colour jitter draw from the
global torch / numpy / python generators.
:class:`SeededSamples` seeds those from (seed, epoch, index) around every sample, so a sample's
augmentation does not depend on the worker that loads it or on what was loaded before: a resumed
run re-creates the interrupted run's batches exactly.
"""
from __future__ import annotations

import importlib
import os
import random
import signal
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from lumde_depth.config import ConfigError
from lumde_depth.engine.distributed import ResumableSampler, World
from lumde_depth.engine.experiment import DataConfig


def dataset_factory(kind: str) -> Callable[..., Dataset]:
    """``build_dataset`` bound to ``kind``, or a ``package.module:function`` of one's own."""
    if ":" in kind:
        module, _, attr = kind.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"data.kind '{kind}': cannot load the dataset factory: {exc}") from None
    from lumde_depth.data import build_dataset
    return lambda root, split, **kwargs: build_dataset(kind, root, split, **kwargs)


def build_split(cfg: DataConfig, split: str, train: bool) -> Dataset:
    """The configured dataset for ``split`` (training or validation kwargs), truncated if asked."""
    kwargs = cfg.train_kwargs if train else cfg.val_kwargs
    kind = cfg.kind if train or cfg.val_kind is None else cfg.val_kind
    root = cfg.root if train or cfg.val_root is None else cfg.val_root
    try:
        dataset = dataset_factory(kind)(root, split, **kwargs)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"data ({'train' if train else 'val'} split '{split}'): {exc}") from None
    limit = cfg.max_train_samples if train else cfg.max_val_samples
    if limit is not None and limit < len(dataset):
        dataset = Subset(dataset, range(limit))
    if len(dataset) == 0:
        raise ConfigError(f"data: the '{split}' split of {kind} at {root} is empty; check data.root")
    what = f"{'train' if train else 'val'} split '{split}'"
    base = _base(dataset)
    if hasattr(base, "describe") and _is_main():
        used = f", the first {len(dataset)} used" if len(dataset) < len(base) else ""
        print(f"data ({what}{used}): {base.describe()}")
    if cfg.check != "none":
        dataset = drop_damaged(dataset, cfg.check == "full", cfg.skip_corrupt, what)
    return dataset


def drop_damaged(dataset: Dataset, full: bool, skip: bool, what: str) -> Dataset:
    """``dataset`` after the up-front file check: unchanged, without its damaged frames (``skip``,
    said on the console), or a ConfigError naming the damaged files."""
    from lumde_depth.data.check import find_damaged
    damaged = find_damaged(dataset, full=full)
    if not damaged:
        return dataset
    shown = "; ".join(problem for _, problem in damaged[:3]) + ("; ..." if len(damaged) > 3 else "")
    count = f"{len(damaged)} of {len(dataset)} frames"
    if not skip:
        raise ConfigError(f"data ({what}): {count} are damaged: {shown}. Restore or regenerate these files, or "
                          "set data.skip_corrupt=true to train without them")
    if len(damaged) == len(dataset):
        raise ConfigError(f"data ({what}): all {count} are damaged ({shown}); nothing is left to train on")
    if _is_main():
        print(f"data ({what}): skipped {count} (damaged; data.skip_corrupt=true): {shown}")
    bad = {index for index, _ in damaged}
    return Subset(dataset, [i for i in range(len(dataset)) if i not in bad])


def _base(dataset: Dataset) -> Dataset:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _is_main() -> bool:
    """Rank 0 under torchrun, or a single process: the one that speaks on the console."""
    return int(os.environ.get("RANK", "0")) == 0


class SeededSamples(Dataset):
    """Wraps a dataset so that sample ``i`` of epoch ``e`` is drawn under a seed made of (seed, e, i)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_seed = int(np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1)[0])
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                np.random.seed(sample_seed)
                random.seed(sample_seed)
                return self.dataset[index]
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class EpochLoader:
    """Batches of a seeded per-epoch permutation from any position (epoch, batch), endlessly.

    Incomplete last batches are dropped so that every step (and every rank) sees ``batch_size``
    samples.
    """

    def __init__(self, dataset: Dataset, batch_size: int, num_workers: int, world: World, seed: int) -> None:
        self.samples = SeededSamples(dataset, seed)
        self.sampler = ResumableSampler(self.samples, world, seed)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.batches_per_epoch = len(self.sampler.inner) // batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(f"data: {len(dataset)} training samples cannot make one batch of {batch_size} per "
                              f"process ({world.size} processes); lower data.batch_size")
        self.pin = world.device.type == "cuda"

    def iterate(self, epoch: int, batch: int):
        """Yield ``(epoch, batch_index, batch)`` forever, starting at the given position."""
        while True:
            self.samples.epoch = epoch
            self.sampler.set_position(epoch, batch * self.batch_size)
            loader = DataLoader(self.samples, batch_size=self.batch_size, sampler=self.sampler, drop_last=True,
                                num_workers=self.num_workers, pin_memory=self.pin, worker_init_fn=_ignore_sigint)
            for offset, data in enumerate(loader):
                yield epoch, batch + offset, data
            epoch, batch = epoch + 1, 0


def _ignore_sigint(worker_id: int) -> None:
    """Ctrl-C reaches every process of the terminal's group: loader workers leave it to the training
    loop, which stops after the step and saves a checkpoint (a worker killed by it would fail the run)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a collated sample dict moved to ``device`` (other values kept)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
