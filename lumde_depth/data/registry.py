"""``build_dataset(kind, root, split, **kwargs)``: one entry point for every dataset layout."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from lumde_depth.config import closest_key
from lumde_depth.data.depth_io import DataError
from lumde_depth.data.kitti_dc import SELECTION_SPLITS, KittiDepthCompletion, KittiDepthSelection
from lumde_depth.data.kitti_raw import KittiRaw
from lumde_depth.data.nyuv2 import NYUv2


def _kitti_dc(root: str | Path, split: str, **kwargs: Any) -> Dataset:
    cls = KittiDepthSelection if split in SELECTION_SPLITS else KittiDepthCompletion
    return _construct(cls, root, split, kwargs)


KINDS: dict[str, Callable[..., Dataset]] = {
    "kitti_dc": _kitti_dc,
    "kitti_raw": lambda root, split, **kwargs: _construct(KittiRaw, root, split, kwargs),
    "nyuv2": lambda root, split, **kwargs: _construct(NYUv2, root, split, kwargs),
}


def _construct(cls: type, root: str | Path, split: str, kwargs: dict[str, Any]) -> Dataset:
    """``cls(root, split, **kwargs)``, with an unknown keyword named together with the closest valid one."""
    valid = [name for name in inspect.signature(cls).parameters if name not in ("root", "split")]
    for key in kwargs:
        if key not in valid:
            guess = closest_key(key, valid)
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise DataError(f"{cls.__name__} has no option '{key}'{hint} (options: {', '.join(valid)})")
    return cls(root, split, **kwargs)


def build_dataset(kind: str, root: str | Path, split: str, **kwargs: Any) -> Dataset:
    """The dataset ``kind`` (``kitti_dc``, ``kitti_raw``, ``nyuv2``) of ``split`` under ``root``.

    ``kitti_dc`` splits: ``train``, ``val``, ``val_selection_cropped``, ``test_depth_completion_anonymous``;
    ``kitti_raw``: ``all``, a split-file name or path, or a sub-folder; ``nyuv2``: ``train``, ``val``.
    Keyword arguments go to the dataset class (see each class for its options).
    """
    if kind not in KINDS:
        guess = closest_key(kind, KINDS)
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise DataError(f"dataset kind '{kind}' unknown{hint} (kinds: {', '.join(KINDS)})")
    return KINDS[kind](root, split, **kwargs)
