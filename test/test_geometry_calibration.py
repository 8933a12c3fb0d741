"""Calibration readers and writer: devkit equivalence, round trip, CameraInfo duck typing, errors."""
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from transforms3d.euler import euler2mat

from lumde_depth.geometry import (
    Calibration,
    calibration_from_camera_info,
    project_points,
    read_kitti_object_calib,
    read_kitti_raw_calib,
    write_kitti_raw_calib,
)

P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
               [0.0, 0.0, 1.0, 0.002745884]])
R0 = euler2mat(0.004, -0.007, 0.01)
VELO_TO_CAM = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # x fwd, y left, z up -> optical
TR = np.hstack([VELO_TO_CAM @ euler2mat(0.01, 0.015, -0.007), [[-0.004], [-0.076], [-0.27]]])


def _object_calib_text(P2=P2, R0=R0, Tr=TR, skip=()):
    rows = {"P0": np.hstack([P2[:, :3], np.zeros((3, 1))]), "P1": P2, "P2": P2, "P3": P2, "R0_rect": R0,
            "Tr_velo_to_cam": Tr, "Tr_imu_to_velo": Tr}
    return "\n".join(f"{k}: " + " ".join(f"{v:.12e}" for v in m.ravel()) for k, m in rows.items() if k not in skip)


def _devkit_pixels(points, P, R0, Tr):
    """KITTI devkit: x_img = P2 @ R0_rect @ Tr_velo_to_cam @ x."""
    R4, T4 = np.eye(4), np.eye(4)
    R4[:3, :3] = R0
    T4[:3] = Tr
    h = (P @ R4 @ T4 @ np.c_[points, np.ones(len(points))].T).T
    return h[:, 0] / h[:, 2], h[:, 1] / h[:, 2], h[:, 2]


def _cloud(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(3, 60, n), rng.uniform(-15, 15, n), rng.uniform(-2, 1, n)]  # LiDAR: x forward


def test_object_calib_matches_devkit(tmp_path):
    path = tmp_path / "000000.txt"
    path.write_text(_object_calib_text())
    calib = read_kitti_object_calib(path, image_size=(1242, 375))
    pts = _cloud()
    depth = project_points(pts, calib.T_cam_lidar, calib.P, 1242, 375)
    u, v, z = _devkit_pixels(pts, P2, R0, TR)
    col, row = np.floor(u + 0.5).astype(int), np.floor(v + 0.5).astype(int)
    ok = (z > 0.1) & (col >= 0) & (col < 1242) & (row >= 0) & (row < 375)
    assert ok.sum() > 1000
    want = np.full((375, 1242), np.inf)
    np.minimum.at(want, (row[ok], col[ok]), z[ok])  # the devkit's z-buffer, built independently
    want[np.isinf(want)] = 0
    np.testing.assert_allclose(depth, want, rtol=1e-6)
    np.testing.assert_allclose(calib.K, P2[:, :3])
    assert (calib.width, calib.height) == (1242, 375)


def test_raw_calib_round_trip_and_drive_folder(tmp_path):
    T = np.eye(4)
    T[:3, :3] = VELO_TO_CAM @ euler2mat(0.0, 0.02, 0.0)
    T[:3, 3] = [0.06, -0.08, -0.27]
    calib = Calibration(P=P2, T_cam_lidar=T, width=1242, height=375)
    write_kitti_raw_calib(tmp_path / "2011_01_01", calib, R_rect_00=R0)
    drive = tmp_path / "2011_01_01" / "2011_01_01_drive_0001_sync"
    drive.mkdir()
    for where in (tmp_path / "2011_01_01", drive):
        back = read_kitti_raw_calib(where)
        np.testing.assert_allclose(back.P, calib.P, atol=1e-9)
        np.testing.assert_allclose(back.T_cam_lidar, calib.T_cam_lidar, atol=1e-9)
        assert (back.width, back.height) == (1242, 375)
    # camera 3 sits stereo_baseline to the right of camera 2: a point straight ahead moves left in it
    cam3 = read_kitti_raw_calib(tmp_path / "2011_01_01", camera=3)
    np.testing.assert_allclose(cam3.baseline_t - back.baseline_t, [-0.54, 0.0, 0.0], atol=1e-9)
    point = np.linalg.inv(T) @ np.array([0.0, 0.0, 10.0, 1.0])
    d2, d3 = back.project(point[None, :3]), cam3.project(point[None, :3])
    (r2, c2), (r3, c3) = np.argwhere(d2 > 0)[0], np.argwhere(d3 > 0)[0]
    assert r2 == r3 and c2 - c3 == round(721.5377 * 0.54 / 10)


def test_camera_info_duck_typed_ros2_and_ros1_names():
    T = np.eye(4)
    msg2 = SimpleNamespace(k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1], p=list(P2.ravel()), width=1242, height=375)
    calib = calibration_from_camera_info(msg2, T_cam_lidar=T)
    np.testing.assert_allclose(calib.P, P2)
    assert (calib.width, calib.height) == (1242, 375) and calib.T_cam_lidar is not None
    # ROS 1 naming (rosbags ROS 1 types) and an uncalibrated P -> falls back to [K | 0]
    msg1 = SimpleNamespace(K=np.array([500.0, 0, 320, 0, 500, 240, 0, 0, 1]), P=np.zeros(12), width=640, height=480)
    calib1 = calibration_from_camera_info(msg1)
    np.testing.assert_allclose(calib1.P[:, :3], [[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert calib1.T_cam_lidar is None
    with pytest.raises(ValueError, match="T_cam_lidar is None"):
        calib1.project(np.ones((3, 3)))


def test_camera_info_errors():
    with pytest.raises(ValueError, match="uncalibrated"):
        calibration_from_camera_info(SimpleNamespace(k=[0.0] * 9, p=[0.0] * 12, width=10, height=10))
    with pytest.raises(ValueError, match="no field 'p'"):
        calibration_from_camera_info(SimpleNamespace(k=[0.0] * 9, width=10, height=10))
    with pytest.raises(ValueError, match="image size"):
        calibration_from_camera_info(SimpleNamespace(k=[0.0] * 9, p=list(P2.ravel()), width=0, height=0))


def test_errors_name_file_and_key(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text(_object_calib_text(skip=("R0_rect",)))
    with pytest.raises(ValueError, match=r"calib\.txt: missing key 'R0_rect'"):
        read_kitti_object_calib(path)
    path.write_text(_object_calib_text().replace("P2: 7.2", "P2: 7.2 1.0", 1))
    with pytest.raises(ValueError, match=r"key 'P2' has 13 numbers, expected 12"):
        read_kitti_object_calib(path)
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt"):
        read_kitti_raw_calib(tmp_path)
    write_kitti_raw_calib(tmp_path, Calibration(P=P2, T_cam_lidar=np.eye(4), width=8, height=8))
    (tmp_path / "calib_velo_to_cam.txt").write_text("R: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(ValueError, match=r"calib_velo_to_cam\.txt: missing key 'T'"):
        read_kitti_raw_calib(tmp_path)
    with pytest.raises(ValueError, match="camera must be"):
        read_kitti_raw_calib(tmp_path, camera=4)
    with pytest.raises(ValueError, match="needs a calibration with T_cam_lidar"):
        write_kitti_raw_calib(tmp_path, replace(Calibration(P=P2), width=8, height=8))


def test_calibration_validates_and_coerces():
    calib = Calibration(P=P2.tolist(), T_cam_lidar=np.eye(4).tolist(), width=1242, height=375)
    assert isinstance(calib.P, np.ndarray) and calib.T_cam_lidar.shape == (4, 4)
    with pytest.raises(ValueError, match="3x4 projection"):
        Calibration(P=P2[:, :3])
    with pytest.raises(ValueError, match="must be 4x4"):
        Calibration(P=P2, T_cam_lidar=np.eye(3))
