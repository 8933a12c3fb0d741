"""Reading and writing ROS 2 bags with ``rosbags`` (no ROS install): one place for the bag tools' file handling.

:func:`open_bag` opens a bag for reading with clear errors; :func:`new_bag` writes a new bag into a
staging folder next to the target and moves it into place only when the block completes, so a
failure never leaves a half-written bag behind.
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

STORAGES = ("mcap", "sqlite3")


class BagError(ValueError):
    """A bag that cannot be read or written; the message names it and what is wrong."""


def typestore() -> Any:
    """The ``rosbags`` typestore the bag tools build and parse messages with."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.LATEST)


@contextmanager
def open_bag(path: str | Path) -> Iterator[Any]:
    """An opened ``rosbags.rosbag2.Reader``, closed on exit; clear errors for what is not a ROS 2 bag."""
    from rosbags.rosbag2 import Reader, ReaderError

    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag (give the bag folder holding metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, FileNotFoundError) as exc:
        raise BagError(f"{path}: not a readable ROS 2 bag ({exc})") from None
    try:
        yield reader
    finally:
        reader.close()


def check_new_bag(out: str | Path, storage: str) -> Path:
    """``out`` as a Path, after checking it does not exist and ``storage`` is known (before any work is done)."""
    out = Path(out)
    if storage not in STORAGES:
        raise BagError(f"storage {storage!r} unknown; use one of {', '.join(STORAGES)}")
    if out.exists():
        raise BagError(f"{out} exists already; remove it or choose another output path")
    return out


@contextmanager
def new_bag(out: str | Path, storage: str = "mcap") -> Iterator[Any]:
    """An open ``rosbags.rosbag2.Writer`` for the new bag folder ``out`` (MCAP or sqlite3).

    The bag is written in a hidden staging folder beside ``out`` and renamed to ``out`` when the
    block ends without error; on error the staging folder is removed and ``out`` never appears.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    out = check_new_bag(out, storage)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        writer = Writer(staging / out.name, version=Writer.VERSION_LATEST,
                        storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
        with writer:
            yield writer
        (staging / out.name).rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
