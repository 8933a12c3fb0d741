"""Projection and calibration readers on real KITTI data (../shared/data; skipped when absent)."""
import numpy as np
import pytest
from PIL import Image

from lumde_depth.data.depth_io import read_velodyne_bin
from lumde_depth.geometry import (
    backproject,
    project_points,
    project_to_pixels,
    read_kitti_object_calib,
    read_kitti_raw_calib,
)

DRIVE = "kitti_raw_tiny/2011_09_26/2011_09_26_drive_0023_sync"


def _image_size(path):
    with Image.open(path) as im:
        return im.size


@pytest.mark.parametrize("frame", ["000000", "000001", "000002", "000003", "000004", "000005"])
def test_object_scan_projection_is_sane(shared_data, frame):
    root = shared_data / "kitti_object" / "training"
    width, height = _image_size(root / "image_2" / f"{frame}.png")
    calib = read_kitti_object_calib(root / "calib" / f"{frame}.txt", image_size=(width, height))
    scan = read_velodyne_bin(root / "velodyne" / f"{frame}.bin")
    depth = calib.project(scan)
    assert depth.shape == (height, width)
    valid = depth > 0
    assert 0.035 < valid.mean() < 0.05  # KITTI velodyne_raw density, ~4 %
    assert 1.5 < depth[valid].min() and depth[valid].max() < 81.0
    rows = np.nonzero(valid)[0]
    assert rows.min() > 0.2 * height  # the HDL-64E (+2..-24.8 deg) sees nothing in the top fifth (sky)
    assert np.median(rows) > 0.55 * height
    # ground in front of the car: the bottom rows are near (camera 1.65 m up), the upper half far
    row = np.arange(height)[:, None]
    near = np.median(depth[valid & (row > 0.9 * height)])
    assert 4.0 < near < 8.0
    assert np.median(depth[valid & (row < 0.5 * height)]) > 1.4 * near


def test_demo_scan_both_calibration_readers_agree(shared_data):
    """Frame 000008: mmdet3d's cam2img (P2 only), the derived object calib, and the KITTI raw calib
    of the same day (2011_09_26) must give the same P and the same projection."""
    demo = shared_data / "kitti_object_demo"
    width, height = _image_size(demo / "000008.png")
    obj = read_kitti_object_calib(demo / "derived_calib" / "000008.txt", image_size=(width, height))
    raw = read_kitti_raw_calib(shared_data / "kitti_raw_calib" / "2011_09_26")
    cam2img = np.loadtxt(demo / "000008.txt").reshape(4, 4)[:3]
    np.testing.assert_allclose(obj.P, cam2img, rtol=1e-6)
    np.testing.assert_allclose(raw.P, obj.P, rtol=1e-6)
    np.testing.assert_allclose(raw.T_cam_lidar, obj.T_cam_lidar, atol=1e-6)
    scan = read_velodyne_bin(demo / "000008.bin")
    a, b = obj.project(scan), raw.project(scan)
    np.testing.assert_array_equal(a, b)
    # the scan is cropped to the camera frustum: (nearly) every point lands in the image
    index = project_to_pixels(scan, raw.T_cam_lidar, raw.P, width, height)[3]
    assert len(index) > 0.99 * len(scan)
    assert 0.03 < (a > 0).mean() < 0.045 and 2.0 < a[a > 0].min() and a.max() < 80.0


def test_raw_calib_consistent_with_images(shared_data):
    drive = shared_data / DRIVE
    for camera in (2, 3):
        calib = read_kitti_raw_calib(drive, camera=camera)
        width, height = _image_size(drive / f"image_0{camera}" / "data" / "0000000000.png")
        assert (calib.width, calib.height) == (width, height)
        K = np.loadtxt(drive / f"image_0{camera}" / "cam.txt")
        np.testing.assert_allclose(calib.K, K, rtol=1e-6)
        # principal point inside the image, near its centre
        assert abs(calib.K[0, 2] - width / 2) < 0.1 * width and abs(calib.K[1, 2] - height / 2) < 0.1 * height
    # the left and right colour cameras are ~0.54 m apart along x, in the same rectified plane
    t2, t3 = read_kitti_raw_calib(drive, 2).baseline_t, read_kitti_raw_calib(drive, 3).baseline_t
    assert 0.52 < t2[0] - t3[0] < 0.56 and abs(t2[1] - t3[1]) < 0.01


@pytest.mark.parametrize("frame", ["0000000000", "0000000004"])
def test_official_projection_cross_view(shared_data, frame):
    """No raw scan ships with kitti_raw_tiny, only its official per-camera projections. Lift the
    image_02 projection back to the LiDAR frame with camera 2's calibration, project it into camera 3
    with camera 3's, and compare pixel by pixel with the official image_03 projection."""
    drive = shared_data / DRIVE
    cam2, cam3 = read_kitti_raw_calib(drive, 2), read_kitti_raw_calib(drive, 3)
    d2 = np.load(drive / "proj_depth/velodyne/image_02" / f"{frame}.npz")["velodyne_depth"]
    d3 = np.load(drive / "proj_depth/velodyne/image_03" / f"{frame}.npz")["velodyne_depth"]
    xyz = backproject(d2, cam2.P).reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz[:, 2])]
    lidar = (np.c_[xyz, np.ones(len(xyz))] @ np.linalg.inv(cam2.T_cam_lidar).T)[:, :3]
    ours = project_points(lidar, cam3.T_cam_lidar, cam3.P, cam3.width, cam3.height)
    both = (ours > 0) & (d3 > 0)
    # pixel re-rounding after the lift moves some points to a neighbour; most land on the same pixel
    assert both.sum() > 0.55 * (d3 > 0).sum()
    assert np.mean(np.abs(ours[both] - d3[both]) < 0.05) > 0.98
    # a one-pixel shift agrees far worse: the alignment is exact, not approximate
    shifted = np.roll(ours, 1, axis=1)
    assert ((shifted > 0) & (d3 > 0)).sum() < 0.5 * both.sum()
