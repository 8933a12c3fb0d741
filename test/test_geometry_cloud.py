"""backproject, rgb packing and the organized xyzrgb cloud."""
import numpy as np
import pytest

from lumde_depth.geometry import XYZRGB, backproject, organized_cloud, pack_rgb, unpack_rgb

K = np.array([[100.0, 0.0, 2.0], [0.0, 50.0, 1.0], [0.0, 0.0, 1.0]])


def test_backproject_hand_values_and_invalid():
    depth = np.zeros((3, 5), np.float32)
    depth[0, 4] = 2.0
    depth[1, 2] = 4.0
    depth[2, 0] = np.nan
    depth[2, 1] = -1.0
    xyz = backproject(depth, K)
    assert xyz.shape == (3, 5, 3) and xyz.dtype == np.float32
    np.testing.assert_allclose(xyz[0, 4], [2.0 * (4 - 2) / 100, 2.0 * (0 - 1) / 50, 2.0])
    np.testing.assert_allclose(xyz[1, 2], [0.0, 0.0, 4.0])  # principal point: straight ahead
    assert np.isnan(xyz[2]).all() and np.isnan(xyz[0, 0]).all()
    assert np.isfinite(xyz).all(axis=2).sum() == 2
    P = np.hstack([K, [[5.0], [0.0], [0.0]]])  # 3x4 P: its 3x3 block is used
    np.testing.assert_array_equal(backproject(depth, P), xyz)


def test_pack_rgb_bits_like_pcl():
    rgb = np.array([[[255, 0, 0], [0, 128, 1]]], np.uint8)
    packed = pack_rgb(rgb)
    assert packed.dtype == np.float32 and packed.shape == (1, 2)
    assert packed.view(np.uint32).tolist() == [[0xFF0000, 0x008001]]
    np.testing.assert_array_equal(unpack_rgb(packed), rgb)
    with pytest.raises(ValueError, match="uint8"):
        pack_rgb(rgb.astype(np.float32))


def test_organized_cloud_with_decimation():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 10, (7, 9)).astype(np.float32)
    depth[0, 0] = 0
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    cloud = organized_cloud(depth, K, rgb)
    assert cloud.dtype == XYZRGB and cloud.shape == (7, 9) and XYZRGB.itemsize == 16
    xyz = backproject(depth, K)
    np.testing.assert_array_equal(cloud["z"], xyz[..., 2])
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"]), rgb)
    dec = organized_cloud(depth, K, rgb, decimation=3)
    assert dec.shape == (3, 3)
    for name, i in (("x", 0), ("y", 1), ("z", 2)):
        np.testing.assert_array_equal(dec[name], xyz[::3, ::3, i])
    np.testing.assert_array_equal(unpack_rgb(dec["rgb"]), rgb[::3, ::3])
    assert np.isnan(dec["x"][0, 0])
    white = organized_cloud(depth, K)
    assert (white["rgb"].view(np.uint32) == 0xFFFFFF).all()
    with pytest.raises(ValueError, match="decimation"):
        organized_cloud(depth, K, decimation=0)
    with pytest.raises(ValueError, match="same size"):
        organized_cloud(depth, K, rgb[:5])
