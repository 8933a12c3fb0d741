"""Depth PNG and image I/O: exact round trip within 1/256 m, clear errors naming the file."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lumde_depth.data.depth_io import (MAX_DEPTH_PNG, DataError, read_depth_png, read_intrinsics_txt, read_rgb,
                                       write_depth_png)


def test_round_trip_within_quantisation(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 120.0, (37, 53)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = 0.0
    path = tmp_path / "d.png"
    write_depth_png(path, depth)
    back = read_depth_png(path)
    assert back.dtype == np.float32 and back.shape == depth.shape
    assert np.abs(back - depth).max() <= 0.5 / 256 + 1e-6
    assert np.array_equal(back == 0, depth == 0)
    # values already on the 1/256 m grid survive exactly, and so does a second round trip
    write_depth_png(path, back)
    assert np.array_equal(read_depth_png(path), back)


def test_stored_units_invalid_and_clipping(tmp_path):
    depth = np.array([[1.0, np.nan, -3.0, np.inf, 1000.0, 0.00390625 * 1.4]], dtype=np.float32)
    path = tmp_path / "d.png"
    write_depth_png(path, depth)
    with Image.open(path) as img:
        assert img.mode == "I;16"
        raw = np.asarray(img)
    assert raw.tolist() == [[256, 0, 0, 0, 65535, 1]]
    assert read_depth_png(path)[0, 4] == pytest.approx(MAX_DEPTH_PNG)


def test_eight_bit_png_is_rejected_naming_the_path(tmp_path):
    path = tmp_path / "eight_bit.png"
    Image.fromarray(np.full((4, 5), 7, np.uint8)).save(path)
    with pytest.raises(DataError, match="eight_bit.png.*16-bit"):
        read_depth_png(path)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(DataError, match="nowhere.png: file not found"):
        read_depth_png(tmp_path / "nowhere.png")
    with pytest.raises(DataError, match="nowhere.png"):
        read_rgb(tmp_path / "nowhere.png")


def test_read_rgb_rejects_depth_png(tmp_path):
    path = tmp_path / "depth.png"
    write_depth_png(path, np.ones((3, 3), np.float32))
    with pytest.raises(DataError, match="depth.png: expected a colour image"):
        read_rgb(path)


def test_intrinsics_txt(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("721.5 0 596.5 0 721.5 149.8 0 0 1\n")
    K = read_intrinsics_txt(path)
    assert K.dtype == np.float32 and K.shape == (3, 3)
    assert K[0, 2] == pytest.approx(596.5) and K[1, 2] == pytest.approx(149.8) and K[2, 2] == 1
    path.write_text("1 2 3 4")
    with pytest.raises(DataError, match="k.txt: intrinsics file must hold 9 numbers"):
        read_intrinsics_txt(path)


def test_depth_io_does_not_import_torch():
    """Synth workers and bag tools use depth_io; the package imports datasets (torch) lazily."""
    code = "import sys, lumde_depth.data.depth_io; assert 'torch' not in sys.modules and 'h5py' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
