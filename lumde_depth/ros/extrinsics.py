"""Where the LiDAR -> camera transform comes from: TF, a parameter, or a KITTI calibration file.

Order (DESIGN section 4): TF when ``tf2_ros`` is importable (bounded wait, the first transform found
is kept: a camera-LiDAR mount is rigid, so it is looked up once like a static transform); otherwise,
or while TF has none, the fixed matrix from the ``T_cam_lidar`` parameter or the ``calib_file``.

Without a ROS install neither ``tf2_ros`` nor ``tf2_msgs`` (the ``/tf`` message type) is on PyPI,
so no TF listener can be built; the fixed matrix is then the only source, and diagnostics say so.

Frames: TF is asked for the transform from each cloud's own ``frame_id`` to the image's, so a cloud
in ``base_link`` or in the camera frame gets the right one. A fixed matrix maps from one frame only
(:class:`FixedExtrinsic`: the ``lidar_frame`` parameter, or else the first cloud's frame, logged); a
cloud in another frame is refused as ``wrong_cloud_frame`` instead of silently getting the LiDAR's
extrinsic.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lumde_depth.geometry.calibration import read_kitti_object_calib, read_kitti_raw_calib
from lumde_depth.ros.compat import tf_transformations
from lumde_depth.ros.pipeline import FrameError

TF_RETRY_PERIOD = 5.0   # seconds between TF attempts while it has no transform (lookups block)


def matrix_from_param(values: Sequence[float]) -> np.ndarray:
    """4x4 from 16 floats (row-major) or 7 (x, y, z, qx, qy, qz, qw: the tf2 quaternion order)."""
    values = np.asarray(list(values), dtype=np.float64)
    if values.size == 16:
        T = values.reshape(4, 4)
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise ValueError(f"T_cam_lidar's last row must be 0 0 0 1, got {T[3].tolist()}: give the "
                             "4x4 homogeneous matrix row-major")
    elif values.size == 7:
        q = values[3:]
        if not np.isclose(np.linalg.norm(q), 1.0, atol=1e-3):
            raise ValueError(f"T_cam_lidar quaternion (qx qy qz qw) {q.tolist()} is not unit length")
        T = tf_transformations.quaternion_matrix(q / np.linalg.norm(q))
        T[:3, 3] = values[:3]
    else:
        raise ValueError(f"T_cam_lidar needs 16 values (4x4 row-major) or 7 (x y z qx qy qz qw), got {values.size}")
    if not np.all(np.isfinite(T)):
        raise ValueError("T_cam_lidar contains NaN or inf")
    return T


def matrix_from_calib_file(path: str | Path, camera: int = 2) -> np.ndarray:
    """LiDAR -> camera ``camera`` optical frame from KITTI calibration.

    A file holding ``Tr_velo_to_cam`` (object / tracking benchmark) is read as such; a raw date or
    drive folder, or its ``calib_velo_to_cam.txt`` / ``calib_cam_to_cam.txt``, as KITTI raw.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"calib_file not found: {path}")
    if path.is_file() and "Tr_velo" in path.read_text():
        return read_kitti_object_calib(path, camera).T_cam_lidar
    return read_kitti_raw_calib(path if path.is_dir() else path.parent, camera).T_cam_lidar


def transform_to_matrix(transform: Any) -> np.ndarray:
    """4x4 from a ``geometry_msgs/Transform``."""
    r, t = transform.rotation, transform.translation
    T = tf_transformations.quaternion_matrix([r.x, r.y, r.z, r.w])
    T[:3, 3] = [t.x, t.y, t.z]
    return T


class FixedExtrinsic:
    """A fixed LiDAR -> camera transform (``T_cam_lidar`` / ``calib_file``) and the cloud frame it maps from.

    ``lidar_frame`` empty: the first cloud's ``frame_id`` is taken (``notice`` is called once with a
    line saying so), unless that cloud is already in the camera's frame while ``T`` is not the
    identity (a LiDAR extrinsic applied to a camera-frame cloud is the silent error this class exists
    to stop). From then on a cloud in any other frame raises :class:`FrameError` ``wrong_cloud_frame``.
    """

    def __init__(self, T: np.ndarray, lidar_frame: str = "", notice: Callable[[str], None] | None = None,
                 setting: str = "lidar_frame:=") -> None:
        """``setting``: how the user sets the frame, for the messages (``--lidar-frame`` in ``lumde bag process``)."""
        self.T = np.asarray(T, dtype=np.float64)
        self.lidar_frame = lidar_frame.lstrip("/")
        self._notice = notice
        self._setting = setting

    def for_cloud(self, cloud_frame: str, camera_frame: str) -> np.ndarray:
        """``T`` for a cloud in ``cloud_frame`` seen by the camera in ``camera_frame``, or a ``wrong_cloud_frame``
        :class:`FrameError` naming both frames and the fixes."""
        cloud_frame, camera_frame = cloud_frame.lstrip("/"), camera_frame.lstrip("/")
        if not self.lidar_frame:
            if cloud_frame == camera_frame and not np.allclose(self.T, np.eye(4)):
                raise FrameError("wrong_cloud_frame", f"the cloud is in the camera's own frame {camera_frame!r} but "
                                                      "T_cam_lidar is a LiDAR -> camera transform, not the identity: "
                                                      "publish the LiDAR's clouds in the LiDAR frame, or set "
                                                      f"{self._setting}FRAME, the frame T_cam_lidar maps from")
            self.lidar_frame = cloud_frame
            if self._notice is not None:
                self._notice(f"T_cam_lidar is taken to map from {cloud_frame!r}, the frame_id of the first cloud; "
                             f"clouds in other frames are refused (set {self._setting}{cloud_frame} to say so)")
        if cloud_frame != self.lidar_frame:
            raise FrameError("wrong_cloud_frame",
                             f"cloud frame_id {cloud_frame!r} is not {self.lidar_frame!r}, the frame T_cam_lidar maps "
                             f"from: publish the LiDAR's clouds in {self.lidar_frame!r}, set {self._setting}"
                             f"{cloud_frame} if the extrinsic maps from {cloud_frame!r}, or publish TF "
                             f"{cloud_frame!r} -> {camera_frame!r}")
        return self.T

    def describe(self) -> str:
        """Short description for diagnostics."""
        return f"parameter/calib file from {self.lidar_frame!r}" if self.lidar_frame else \
            "parameter/calib file (from the first cloud's frame)"


class Extrinsics:
    """LiDAR -> camera transform for a pair of frames; TF first, then the fixed matrix."""

    def __init__(self, node: Any, fixed: FixedExtrinsic | None, use_tf: bool = True, timeout: float = 0.1) -> None:
        self.fixed = fixed
        self.timeout = timeout
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._next_try: dict[tuple[str, str], float] = {}
        self._buffer = None
        self.tf_available = False
        if use_tf:
            try:
                import tf2_ros
            except ImportError:
                return
            self._buffer = tf2_ros.Buffer(node=node)
            self._listener = tf2_ros.TransformListener(self._buffer, node, spin_thread=False)
            self.tf_available = True

    @property
    def source(self) -> str:
        """Short description for diagnostics."""
        fixed = self.fixed.describe() if self.fixed is not None else "none"
        return f"TF (tf2_ros), fallback {fixed}" if self.tf_available else f"{fixed} (tf2_ros not installed)"

    def lookup(self, camera_frame: str, lidar_frame: str,
               fixed: FixedExtrinsic | None = None) -> tuple[np.ndarray | None, str]:
        """``(T_cam_lidar or None, where it came from)`` for a cloud in ``lidar_frame``; never blocks longer
        than ``timeout``. ``fixed``: this camera's own fixed matrix (one camera of a rig), in place of the
        node's. Raises :class:`FrameError` ``wrong_cloud_frame`` where only the fixed matrix applies and
        the cloud is not in its frame."""
        key = (camera_frame, lidar_frame)
        if key in self._cache:
            return self._cache[key], "tf"
        retry_due = time.monotonic() >= self._next_try.get(key, 0.0)
        if self._buffer is not None and camera_frame and lidar_frame and retry_due:
            T = self._lookup_tf(camera_frame, lidar_frame)
            if T is not None:
                self._cache[key] = T
                return T, "tf"
            self._next_try[key] = time.monotonic() + TF_RETRY_PERIOD
        fixed = fixed or self.fixed
        if fixed is None:
            return None, "none"
        return fixed.for_cloud(lidar_frame, camera_frame), "fixed"

    def _lookup_tf(self, camera_frame: str, lidar_frame: str) -> np.ndarray | None:
        from rclpy.duration import Duration
        from rclpy.time import Time
        import tf2_ros

        try:
            stamped = self._buffer.lookup_transform(camera_frame, lidar_frame, Time(),
                                                    timeout=Duration(seconds=self.timeout))
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException, tf2_ros.ExtrapolationException,
                tf2_ros.TransformException):
            return None
        return transform_to_matrix(stamped.transform)
