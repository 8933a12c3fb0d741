"""Camera models and cloud frames in the live node (real rclpy, loopback DDS, an independent client).

Real raw (distorted) PJLab frames are published as a driver would (``image_raw`` + a CameraInfo with
``K``, ``D``); this test projects the LiDAR itself with the OpenCV formula written out below (not the
package's geometry) and checks the node's depth and cloud at those pixels. A cloud in a frame the fixed
extrinsic does not map from is refused and counted.
"""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")

from sensor_msgs.msg import CameraInfo, PointCloud2  # noqa: E402

from lumde_depth.ros import convert  # noqa: E402

import node_harness as harness  # noqa: E402
from conftest import next_domain_id  # noqa: E402

pytestmark = pytest.mark.ros


def _output(live: harness.LiveNode, topic: str, stamp: int):
    return next(m for m in live.listener.got[topic] if convert.stamp_to_ns(m.header.stamp) == stamp)


def _run(tmp_path, frame, params) -> tuple[harness.LiveNode, int]:
    live = harness.LiveNode(tmp_path, {"backend": "torch", "device": "cpu", "T_cam_lidar": frame["T"].ravel(),
                                       "lidar_frame": "lidar", "publish_colored": False, "diagnostics_period": 0.3,
                                       **params},
                            next_domain_id(), frame, listen={"depth/points": PointCloud2,
                                                             "depth/camera_info": CameraInfo})
    stamp = live.send_good()
    live.wait(lambda: live.listener.got["depth/points"] and stamp in live.published(), 180.0,
              "the raw PJLab frame was not published")
    live.wait(lambda: any(convert.stamp_to_ns(m.header.stamp) == stamp for m in live.listener.got["depth/points"]),
              60.0, "no depth/points for the frame")
    return live, stamp


def test_raw_distorted_frame_depth_meets_the_lidar(tmp_path, shared_data):
    """The shipped student on a raw 1920x1200 PJLab frame with its CameraInfo (K, D): at the LiDAR's pixels
    on the raw image the published depth is within 2 % (median) of the LiDAR, also where the lens moves
    the points by more than 8 px; the organized cloud meets the LiDAR points in 3D."""
    frame = harness.pjlab_frame(shared_data)
    live, stamp = _run(tmp_path, frame, {})
    try:
        depth = convert.image_to_numpy(_output(live, "depth/image", stamp))
        cloud = convert.cloud_to_structured(_output(live, "depth/points", stamp))
        info = _output(live, "depth/camera_info", stamp)
    finally:
        live.close()
    assert depth.shape == (1200, 1920)
    np.testing.assert_allclose(info.d, frame["D"])   # registered to the raw image: its own camera_info
    rows, cols, cam, moved = harness.lidar_pixels(frame)
    d = depth[rows, cols]
    ok = np.isfinite(d)
    assert ok.mean() > 0.9
    rel = np.abs(d[ok] - cam[ok, 2]) / cam[ok, 2]
    edge = ok & (moved > 8)
    rel_edge = np.abs(d[edge] - cam[edge, 2]) / cam[edge, 2]
    print(f"PJLab raw: {ok.sum()} LiDAR pixels, median rel. error {np.median(rel):.2%}, where D moves points > 8 px "
          f"({edge.sum()}) {np.median(rel_edge):.2%}")
    assert edge.sum() > 1000 and np.median(rel) <= 0.02 and np.median(rel_edge) <= 0.02, \
        (np.median(rel), np.median(rel_edge))
    xyz = np.stack([cloud[c] for c in "xyz"], -1).reshape(1200, 1920, 3)[rows, cols]
    miss = np.linalg.norm(xyz[ok] - cam[ok], axis=1) / np.linalg.norm(cam[ok], axis=1)
    assert np.median(miss) <= 0.02, np.median(miss)


def test_rectify_publishes_on_the_grid_of_P(tmp_path, shared_data):
    """rectify:=true: depth/camera_info has D = 0 and K = P, and the depth meets the LiDAR projected with
    P alone (no distortion) within 2 % (median)."""
    frame = harness.pjlab_frame(shared_data)
    live, stamp = _run(tmp_path, frame, {"rectify": True})
    try:
        depth = convert.image_to_numpy(_output(live, "depth/image", stamp))
        info = _output(live, "depth/camera_info", stamp)
    finally:
        live.close()
    assert not np.any(info.d) and np.allclose(np.reshape(info.k, (3, 3)), frame["P"][:, :3])
    rows, cols, cam, _ = harness.lidar_pixels(frame, distorted=False)
    d = depth[rows, cols]
    ok = np.isfinite(d)
    assert ok.mean() > 0.9
    assert np.median(np.abs(d[ok] - cam[ok, 2]) / cam[ok, 2]) <= 0.02


def test_cloud_in_a_frame_the_extrinsic_does_not_map_from_is_refused(tmp_path):
    """lidar_frame:=lidar: a cloud in base_link (or in the camera frame) is refused, counted as
    wrong_cloud_frame in /diagnostics, and the log names both frames and the fixes; clouds in the
    LiDAR frame go on being processed."""
    frame = harness.synthetic_frame(96, 320, 20_000)
    live = harness.LiveNode(tmp_path, {"model": str(harness.save_student(tmp_path / "student.pt")), "backend": "torch",
                                       "device": "cpu", "T_cam_lidar": frame["T"].ravel(), "lidar_frame": "lidar",
                                       "publish_colored": False, "diagnostics_period": 0.3, "threads": 1},
                            next_domain_id(), frame)
    try:
        for wrong in ("base_link", "camera"):
            image, info, _ = live.good_set()
            stamp = live.send(image, info, harness.frame_messages(frame, lidar=wrong)[2])
            live.wait(lambda: live.count("bad frames: wrong_cloud_frame") >= 1 + ("base_link", "camera").index(wrong),
                      60.0, f"a cloud in {wrong} was not refused")
            assert stamp not in live.published()
        good = live.send_good()
        live.wait(lambda: good in live.published(), 60.0, "the next cloud in the LiDAR frame was not published")
        log = live.log.read_text()
        assert "[wrong_cloud_frame] cloud frame_id 'base_link' is not 'lidar'" in log
        assert "publish TF 'base_link' -> 'camera'" in log
        assert "parameter/calib file from 'lidar'" in live.diag()["extrinsic source"]
    finally:
        live.close()
