"""The synthetic car's sensor rig: by default copied from KITTI's 2011_09_26 calibration; any other
pinhole camera (size, focal length, mounting, pitch: :class:`CameraConfig`, :func:`pinhole_rig`).

Camera 2 (left colour, rectified, 1242x375, ``P_rect_02``), the rectifying rotation ``R_rect_00`` and the
Velodyne -> camera 0 extrinsic of ``calib_velo_to_cam.txt``: the LiDAR sits about 0.27 m behind and
0.08 m above the camera, so points it sees past an object's edge land on the object in the image
(the parallax / occlusion artifacts of real KITTI sparse depth).

Frames: the *vehicle* frame is the Velodyne frame (x forward, y left, z up), ``LIDAR_HEIGHT`` above
the road; the camera frame is camera 2's rectified optical frame (x right, y down, z forward).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumde_depth.config import field
from lumde_depth.geometry.calibration import Calibration
from lumde_depth.geometry.intrinsics import scale_intrinsics

KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
P_RECT_02 = np.array([[721.5377, 0.0, 609.5593, 44.85728],
                      [0.0, 721.5377, 172.854, 0.2163791],
                      [0.0, 0.0, 1.0, 0.002745884]])
R_RECT_00 = np.array([[0.9999239, 0.00983776, -0.007445048],
                      [-0.009869795, 0.9999421, -0.004278459],
                      [0.007402527, 0.004351614, 0.9999631]])
VELO_TO_CAM_R = np.array([[0.007533745, -0.9999714, -0.0006166020],
                          [0.01480249, 0.0007280733, -0.9998902],
                          [0.9998621, 0.007523790, 0.01480755]])
VELO_TO_CAM_T = np.array([-0.004069766, -0.07631618, -0.2717806])
IMU_TO_VELO_R = np.array([[0.9999976, 0.0007553071, -0.002035826],
                          [-0.0007854027, 0.9998898, -0.01482298],
                          [0.002024406, 0.01482454, 0.9998881]])
IMU_TO_VELO_T = np.array([-0.8086759, 0.3195559, -0.7997231])
"""``calib_imu_to_velo.txt``: IMU -> Velodyne (the OXTS unit sits 0.8 m behind and below the LiDAR)."""
LIDAR_HEIGHT = 1.73
"""Velodyne height above the road on the KITTI car (metres)."""


def _homogeneous(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def T_vehicle_imu() -> np.ndarray:
    """4x4 IMU -> vehicle (Velodyne) frame."""
    return _homogeneous(IMU_TO_VELO_R, IMU_TO_VELO_T)


def kitti_rig(scale: float = 1.0) -> Calibration:
    """Camera 2 + Velodyne calibration of KITTI 2011_09_26, the image optionally scaled by ``scale``.

    Scaling follows :func:`lumde_depth.geometry.intrinsics.scale_intrinsics` (pixel centres at integer
    coordinates); the baseline column of ``P`` scales with it.
    """
    if not 0.05 <= scale <= 1.0:
        raise ValueError(f"camera scale must be in [0.05, 1], got {scale}")
    width, height = int(round(KITTI_WIDTH * scale)), int(round(KITTI_HEIGHT * scale))
    P = scale_intrinsics(P_RECT_02, width / KITTI_WIDTH, height / KITTI_HEIGHT)
    t2 = np.linalg.solve(P_RECT_02[:, :3], P_RECT_02[:, 3])  # camera 0 origin seen from camera 2
    T_ref_lidar = _homogeneous(R_RECT_00, np.zeros(3)) @ _homogeneous(VELO_TO_CAM_R, VELO_TO_CAM_T)
    T_cam_lidar = _homogeneous(np.eye(3), t2) @ T_ref_lidar
    return Calibration(P=P, T_cam_lidar=T_cam_lidar, width=width, height=height)


LIDAR_TO_OPTICAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
"""Axes of a camera looking along the LiDAR's x (forward): optical x right, y down, z forward."""


@dataclass
class CameraConfig:
    """The synthetic camera: image size, focal length, mounting and image formation.

    With ``width``, ``height``, ``hfov_deg``, ``offset`` and ``pitch_deg`` at their defaults the camera
    is KITTI's camera 2 (:func:`kitti_rig`); setting any of them builds a generic pinhole rig
    (:func:`pinhole_rig`) with KITTI's values for the others. The image-formation fields shape the
    picture after ray casting (:func:`lumde_depth.data.synth.frame.develop`).
    """

    width: int = field(0, low=0, high=8192, doc="image width in pixels before camera_scale (0: KITTI's 1242)")
    height: int = field(0, low=0, high=8192, doc="image height in pixels before camera_scale (0: KITTI's 375)")
    hfov_deg: float = field(0.0, low=0.0, high=170.0, doc="horizontal field of view (0: KITTI's focal length, "
                                                          "721.5 px at 1242 px, 81 deg)")
    offset: list[float] = field(default_factory=list,
                                doc="[x, y, z] camera centre in the LiDAR frame (x forward, y left, z up), metres "
                                    "(empty: KITTI's, 0.27 m ahead of and 0.08 m below the LiDAR)")
    pitch_deg: float = field(0.0, low=-45.0, high=45.0, doc="camera pitch, positive looking down")
    exposure: list[float] = field(default_factory=lambda: [0.85, 1.1], low=0.05, high=8.0,
                                  doc="[low, high] of the frame's random exposure gain")
    read_noise: float = field(1.5, low=0.0, high=50.0, doc="sensor read noise (8-bit levels, Gaussian)")
    shot_noise: float = field(0.0, low=0.0, high=50.0,
                              doc="photon noise at full white (8-bit levels; scales with sqrt(brightness))")
    blur: float = field(0.0, low=0.0, high=10.0, doc="extra Gaussian blur sigma in pixels (defocus)")
    vignetting: float = field(0.0, low=0.0, high=0.9, doc="brightness lost in the image corners (0: none)")
    jpeg_quality: int = field(0, low=0, high=100, doc="JPEG-compress the image at this quality (0: no JPEG)")

    @property
    def custom(self) -> bool:
        return bool(self.width or self.height or self.hfov_deg or self.offset or self.pitch_deg)


def kitti_camera_offset() -> np.ndarray:
    """KITTI camera 2's centre in the Velodyne frame (metres)."""
    T = kitti_rig().T_cam_lidar
    return -T[:3, :3].T @ T[:3, 3]


def pinhole_rig(config: CameraConfig, scale: float = 1.0) -> Calibration:
    """A generic rig: a pinhole camera of ``config``'s size and field of view (principal point at the
    centre, square pixels), mounted at ``config.offset`` in the LiDAR frame, looking forward with
    ``config.pitch_deg``; the image optionally scaled by ``scale`` as in :func:`kitti_rig`."""
    if not 0.05 <= scale <= 1.0:
        raise ValueError(f"camera scale must be in [0.05, 1], got {scale}")
    if config.offset and len(config.offset) != 3:
        raise ValueError(f"camera.offset must be [x, y, z] (metres), got {config.offset}")
    full_w, full_h = config.width or KITTI_WIDTH, config.height or KITTI_HEIGHT
    fx = (full_w / 2) / np.tan(np.deg2rad(config.hfov_deg) / 2) if config.hfov_deg else P_RECT_02[0, 0]
    width, height = int(round(full_w * scale)), int(round(full_h * scale))
    P = np.array([[fx, 0.0, (full_w - 1) / 2, 0.0], [0.0, fx, (full_h - 1) / 2, 0.0], [0.0, 0.0, 1.0, 0.0]])
    P = scale_intrinsics(P, width / full_w, height / full_h)
    pitch = np.deg2rad(config.pitch_deg)
    c, s = np.cos(pitch), np.sin(pitch)
    R = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]) @ LIDAR_TO_OPTICAL
    centre = np.asarray(config.offset, dtype=np.float64) if config.offset else kitti_camera_offset()
    return Calibration(P=P, T_cam_lidar=_homogeneous(R, -R @ centre), width=width, height=height)


def rig(config: CameraConfig, scale: float = 1.0) -> Calibration:
    """KITTI's camera 2 when ``config`` leaves the geometry at its defaults, else :func:`pinhole_rig`."""
    return pinhole_rig(config, scale) if config.custom else kitti_rig(scale)


def camera_rays(calib: Calibration) -> np.ndarray:
    """``(H, W, 3)`` ray directions through pixel centres in the camera frame, with ``z = 1``.

    With ``z = 1`` the ray parameter of a hit is its depth along the optical axis, which is what a
    KITTI depth map stores.
    """
    K = calib.K
    u = (np.arange(calib.width) - K[0, 2]) / K[0, 0]
    v = (np.arange(calib.height) - K[1, 2]) / K[1, 1]
    rays = np.empty((calib.height, calib.width, 3))
    rays[..., 0] = u[None, :]
    rays[..., 1] = v[:, None]
    rays[..., 2] = 1.0
    return rays
