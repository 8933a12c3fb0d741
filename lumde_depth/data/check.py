"""Damaged data files found before training, not half way through it.

:func:`file_problem` looks at a file's size, first and last bytes only (a missing, empty, foreign
or truncated file: PNG and npz files have a recognisable start and end, JPEGs a start, KITTI
``.bin`` scans a size in whole points): about 70 µs a file, so KITTI DC's 86k training frames take
some 20 s.
:func:`find_damaged` applies it to every file a dataset reads (datasets that list them with
``frame_files(index)``) and, with ``full=True``, also reads every sample.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from lumde_depth.data.depth_io import DataError

#: (suffixes, first bytes, the end marker the last KiB must hold (b"": not checked), what the file is).
#: JPEGs may carry kilobytes after their end marker, so only their start is checked.
_FORMATS: tuple[tuple[tuple[str, ...], bytes, bytes, str], ...] = (
    ((".png",), b"\x89PNG\r\n\x1a\n", b"IEND", "PNG"),
    ((".jpg", ".jpeg"), b"\xff\xd8", b"", "JPEG"),
    ((".npz",), b"PK", b"PK\x05\x06", "npz (zip)"),
)
_TAIL = 1024


def file_problem(path: Path) -> str | None:
    """What is wrong with ``path`` judged by its size, first and last bytes (None: looks complete)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if size == 0:
        return "empty"
    suffix = path.suffix.lower()
    if suffix == ".bin" and size % 16:
        return f"{size} bytes is not a whole number of points (16 bytes each: float32 x, y, z, intensity): truncated"
    for suffixes, head, end, what in _FORMATS:
        if suffix in suffixes:
            with open(path, "rb") as fh:
                first = fh.read(len(head))
                fh.seek(max(0, size - _TAIL))
                last = fh.read()
            if first != head:
                return f"not a {what} file (it does not start like one)"
            if end and end not in last:
                return f"truncated (the {what} end marker is missing)"
    return None


def find_damaged(dataset: Dataset, full: bool = False,
                 progress: Callable[[int], None] | None = None) -> list[tuple[int, str]]:
    """``(index, problem)`` of every damaged sample of ``dataset`` (a ``Subset`` is followed to its base).

    The files of every sample are checked with :func:`file_problem` (each file once); datasets
    without ``frame_files`` are not. With ``full``, every sample that passes is also read (without
    augmentation; the global random state is left as it was); any error it raises is its problem.
    ``progress(n)`` is called after every sample.
    """
    base, indices = _base(dataset)
    seen: dict[Path, str | None] = {}
    damaged: list[tuple[int, str]] = []
    for i, index in enumerate(indices):
        problems = []
        for path in base.frame_files(index) if hasattr(base, "frame_files") else ():
            if path not in seen:
                seen[path] = file_problem(path)
            if seen[path] is not None:
                problems.append(f"{path}: {seen[path]}")
        if not problems and full:
            problem = _read_problem(base, index)
            problems += [problem] if problem else []
        if problems:
            damaged.append((i, "; ".join(problems)))
        if progress is not None:
            progress(1)
    return damaged


def _base(dataset: Dataset) -> tuple[Dataset, list[int]]:
    """The dataset under (nested) ``Subset`` wrappers and the base index of each of ``dataset``'s samples."""
    indices = list(range(len(dataset)))
    while isinstance(dataset, Subset):
        indices = [int(dataset.indices[i]) for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def _read_problem(dataset: Dataset, index: int) -> str | None:
    """The error reading sample ``index`` raises, as text (None if it reads)."""
    try:
        with torch.random.fork_rng(devices=[]):
            if hasattr(dataset, "load"):  # FrameDataset: the files, without the (random) transforms
                dataset.load(index, np.random.default_rng(0))
            else:
                dataset[index]
    except (DataError, OSError, ValueError, SyntaxError, KeyError) as exc:
        return str(exc) if str(exc) else type(exc).__name__
    return None
