"""Camera models, calibration (KITTI files, CameraInfo), LiDAR -> image projection, back-projection.

numpy only (no torch, no ROS). Conventions (pixel centres at integer coordinates, how a 3x4 ``P`` is
applied, which frame ``T_cam_lidar`` ends in) are documented in :mod:`.projection` and
:mod:`.calibration`; lens distortion of raw images (``CameraInfo`` ``plumb_bob``,
``rational_polynomial``, ``equidistant``) in :mod:`.distortion` and :mod:`.rectify`.
"""
from lumde_depth.geometry.calibration import (
    Calibration,
    calibration_from_camera_info,
    camera_model_from_camera_info,
    read_kitti_object_calib,
    read_kitti_raw_calib,
    read_kitti_text,
    write_kitti_raw_calib,
)
from lumde_depth.geometry.camera_model import CameraModel
from lumde_depth.geometry.distortion import distort, ray_grid, undistort, view_radius
from lumde_depth.geometry.cloud import XYZRGB, backproject, organized_cloud, pack_rgb, unpack_rgb
from lumde_depth.geometry.intrinsics import (
    bottom_center_box,
    crop,
    crop_intrinsics,
    resize_dense_depth,
    resize_image,
    resize_sparse_depth,
    scale_intrinsics,
)
from lumde_depth.geometry.projection import (
    intrinsic_matrix,
    pixel_indices,
    project_points,
    project_to_pixels,
    splat_nearest,
)
from lumde_depth.geometry.rectify import Rectifier, rectify_map

__all__ = [
    "Calibration", "calibration_from_camera_info", "camera_model_from_camera_info", "CameraModel",
    "read_kitti_object_calib", "read_kitti_raw_calib",
    "read_kitti_text", "write_kitti_raw_calib",
    "distort", "ray_grid", "undistort", "view_radius", "Rectifier", "rectify_map",
    "XYZRGB", "backproject", "organized_cloud", "pack_rgb", "unpack_rgb",
    "bottom_center_box", "crop", "crop_intrinsics", "resize_dense_depth", "resize_image", "resize_sparse_depth",
    "scale_intrinsics",
    "intrinsic_matrix", "pixel_indices", "project_points", "project_to_pixels", "splat_nearest",
]
