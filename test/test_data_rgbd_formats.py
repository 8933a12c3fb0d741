"""Indoor RGB-D depth formats: NYU raw (little-endian PGM), SUN (rotated bits), TUM (/5000), mm PNG."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.rgbd_formats import (read_mm_depth, read_nyu_raw_depth, read_sun_depth,
                                           read_tum_depth)


def _png16(path, values: np.ndarray) -> None:
    Image.fromarray(values.astype(np.uint16)).save(path)


def test_written_frames_decode_to_metres(tmp_path):
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    _png16(tmp_path / "mm.png", mm)
    np.testing.assert_allclose(read_mm_depth(tmp_path / "mm.png"), mm / 1000.0)
    _png16(tmp_path / "tum.png", np.array([[0, 5000], [10000, 2500]]))
    np.testing.assert_allclose(read_tum_depth(tmp_path / "tum.png"), [[0, 1.0], [2.0, 0.5]])
    rotated = ((mm.astype(np.uint32) << 3) | (mm.astype(np.uint32) >> 13)) & 0xFFFF   # SUN's storage
    _png16(tmp_path / "sun.png", rotated)
    np.testing.assert_allclose(read_sun_depth(tmp_path / "sun.png"), mm / 1000.0)
    raw = np.array([[839, 2047], [1000, 1092]], "<u2")
    (tmp_path / "nyu.pgm").write_bytes(b"P5\n2 2\n65535\n" + raw.tobytes())
    depth = read_nyu_raw_depth(tmp_path / "nyu.pgm")
    np.testing.assert_allclose(depth[0, 0], 351.3 / (1092.5 - 839), rtol=1e-6)
    assert depth[0, 1] == 0 and depth[1, 1] > depth[1, 0] > depth[0, 0]


def test_truncated_or_foreign_files_name_the_problem(tmp_path):
    (tmp_path / "short.pgm").write_bytes(b"P5\n4 4\n65535\n" + bytes(10))
    with pytest.raises(DataError, match="short.pgm.*truncated"):
        read_nyu_raw_depth(tmp_path / "short.pgm")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="16-bit depth PNG"):
        read_mm_depth(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="not found"):
        read_tum_depth(tmp_path / "missing.png")


@pytest.mark.parametrize("reader, name, lo, hi, valid", [
    (read_nyu_raw_depth, "other_formats/NYU_depth.pgm", 1.39, 6.69, 0.928),
    (read_sun_depth, "other_formats/SUN_depth.png", 1.06, 9.87, 0.818),
    (read_tum_depth, "other_formats/TUM_depth.png", 1.46, 9.33, 0.808),
    (read_mm_depth, "depth/00000.png", 0.96, 2.70, 0.870)])
def test_real_samples_match_their_provenance(shared_data, reader, name, lo, hi, valid):
    depth = reader(shared_data / "rgbd_samples" / name)
    assert depth.shape == (480, 640) and depth.dtype == np.float32
    measured = depth[depth > 0]
    assert measured.min() == pytest.approx(lo, abs=0.01) and measured.max() == pytest.approx(hi, abs=0.01)
    assert (depth > 0).mean() == pytest.approx(valid, abs=0.001)
