"""Point Cloud Library ``.pcd`` files (v0.5 / v0.6 / v0.7): ``ascii``, ``binary`` and ``binary_compressed``.

:func:`read_pcd` returns the points as a numpy structured array with the file's fields (``x``,
``y``, ``z``, ``intensity``, ``ring``, ...; a field with ``COUNT n > 1`` is a sub-array of ``n``);
:func:`pcd_xyz` the ``(N, 3)`` float coordinates. ``binary_compressed`` is PCL's LZF-compressed
layout: after the header, two little-endian uint32 (compressed and uncompressed size), then one LZF
block holding the points field by field (all ``x``, then all ``y``, ...); LZF is decompressed by
``python-neo-lzf`` (the ``lzf`` module; a prebuilt-wheel fork of python-lzf, as pypcd4 uses).
PCL's padding fields ``_`` are dropped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lumde_depth.data.depth_io import DataError, _require_file

_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8",
          ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8"}
_HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")


def _header(data: bytes, path: Path) -> tuple[dict[str, list[str]], int]:
    """The header's ``KEY values`` lines and the offset of the first data byte."""
    header: dict[str, list[str]] = {}
    offset = 0
    while "DATA" not in header:
        end = data.find(b"\n", offset)
        if end < 0:
            raise DataError(f"{path}: not a PCD file (no 'DATA' line in the header)")
        line = data[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        if key.upper() not in _HEADER_KEYS:
            raise DataError(f"{path}: unexpected header line {line[:60]!r}: not a PCD file?")
        header[key.upper()] = values
    return header, offset


def _dtype(header: dict[str, list[str]], path: Path) -> np.dtype:
    fields = header.get("FIELDS")
    sizes, types = header.get("SIZE", []), header.get("TYPE", [])
    counts = header.get("COUNT", ["1"] * len(fields or []))
    if not fields or not len(fields) == len(sizes) == len(types) == len(counts):
        raise DataError(f"{path}: FIELDS, SIZE, TYPE and COUNT must list the same number of entries "
                        f"(got {len(fields or [])}, {len(sizes)}, {len(types)}, {len(counts)})")
    names, formats = [], []
    for i, (name, size, kind, count) in enumerate(zip(fields, sizes, types, counts)):
        fmt = _TYPES.get((kind.upper(), int(size)))
        if fmt is None:
            raise DataError(f"{path}: field {name!r} has TYPE {kind} SIZE {size}, which PCD does not define")
        names.append(name if name != "_" else f"_pad{i}")
        formats.append((fmt, (int(count),)) if int(count) > 1 else fmt)
    return np.dtype({"names": names, "formats": formats})


def _decompress(blob: bytes, expected: int, path: Path) -> bytes:
    try:
        import lzf   # python-neo-lzf
    except ImportError:
        raise DataError(f"{path}: binary_compressed (LZF) PCD needs the lzf module: pip install 'python-neo-lzf>=0.3.5' "
                        "(in requirements.txt)") from None
    if len(blob) < 8:
        raise DataError(f"{path}: binary_compressed data is truncated (no size words)")
    compressed, uncompressed = np.frombuffer(blob[:8], "<u4")
    if uncompressed != expected:
        raise DataError(f"{path}: binary_compressed block holds {uncompressed} bytes, the header's fields and "
                        f"POINTS need {expected}")
    if len(blob) < 8 + compressed:
        raise DataError(f"{path}: binary_compressed data is truncated ({len(blob) - 8} of {compressed} bytes)")
    raw = lzf.decompress(blob[8:8 + int(compressed)], int(uncompressed)) if uncompressed else b""
    if raw is None or len(raw) != uncompressed:
        raise DataError(f"{path}: LZF data is corrupt (decompressed to {0 if raw is None else len(raw)} of "
                        f"{uncompressed} bytes)")
    return raw


def read_pcd(path: str | Path) -> np.ndarray:
    """The points of a ``.pcd`` file as a structured array of its fields, shape ``(POINTS,)``."""
    path = Path(path)
    _require_file(path)
    data = path.read_bytes()
    header, offset = _header(data, path)
    dtype = _dtype(header, path)
    n = int(header.get("POINTS", [int(header["WIDTH"][0]) * int(header["HEIGHT"][0])])[0])
    kind = header["DATA"][0].lower()
    body = data[offset:]
    if kind == "ascii":
        flat = [(name, dtype.fields[name][0]) for name in dtype.names]
        columns = sum(int(np.prod(t.shape)) or 1 for _, t in flat)
        values = np.loadtxt(body.decode("ascii").splitlines(), dtype=np.float64, ndmin=2) if n else \
            np.zeros((0, columns))
        if values.shape != (n, columns):
            raise DataError(f"{path}: ascii data is {values.shape[0]} x {values.shape[1]} values, the header "
                            f"says {n} points x {columns}")
        points = np.empty(n, dtype=dtype)
        col = 0
        for name, t in flat:
            width = int(np.prod(t.shape)) or 1
            points[name] = values[:, col:col + width].reshape((n,) + t.shape).astype(t.base)
            col += width
    elif kind == "binary":
        if len(body) < n * dtype.itemsize:
            raise DataError(f"{path}: binary data is truncated ({len(body)} of {n * dtype.itemsize} bytes)")
        points = np.frombuffer(body, dtype=dtype, count=n).copy()
    elif kind == "binary_compressed":
        raw = _decompress(body, n * dtype.itemsize, path)
        points = np.empty(n, dtype=dtype)
        start = 0
        for name in dtype.names:   # column-major: every point's value of one field, then the next field
            t = dtype.fields[name][0]
            points[name] = np.frombuffer(raw, dtype=t.base, count=n * (int(np.prod(t.shape)) or 1),
                                         offset=start).reshape((n,) + t.shape)
            start += n * t.itemsize
    else:
        raise DataError(f"{path}: DATA {kind!r} unknown: PCD data is ascii, binary or binary_compressed")
    keep = [name for name in dtype.names if not name.startswith("_pad")]
    return points[keep] if len(keep) < len(dtype.names) else points


def pcd_xyz(path: str | Path, drop_invalid: bool = True) -> np.ndarray:
    """``(N, 3)`` float32 x, y, z of a ``.pcd`` file (rows with NaN/inf dropped unless ``drop_invalid``
    is False: organized clouds mark missing returns with NaN)."""
    points = read_pcd(path)
    missing = [f for f in "xyz" if f not in (points.dtype.names or ())]
    if missing:
        raise DataError(f"{path}: the cloud has no {', '.join(missing)} field (fields: {points.dtype.names})")
    xyz = np.stack([points[f] for f in "xyz"], axis=-1).astype(np.float32)
    return xyz[np.isfinite(xyz).all(axis=1)] if drop_invalid else xyz
