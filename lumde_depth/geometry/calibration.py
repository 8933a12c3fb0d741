"""Camera calibration from KITTI files and ROS ``CameraInfo`` messages.

Every reader returns a :class:`Calibration` whose ``T_cam_lidar`` ends in the *rectified optical
frame of the chosen camera itself*, baseline included. KITTI's devkit projects a LiDAR point ``x`` as
``P_rect_0c @ R_rect_00 @ Tr_velo_to_cam @ x``: the point goes to the rectified frame of camera 0 and
the fourth column of ``P_rect_0c`` (``K @ t``) moves it to camera ``c``. We split that column off:
``T_cam_lidar = [I | t] @ R_rect_00 @ Tr_velo_to_cam`` with ``t = K^-1 P[:, 3]``, so that
``project_points(points, T_cam_lidar, P)`` (which applies only the 3x3 block of ``P``) gives exactly the
devkit's pixels and depths, and ``T_cam_lidar`` is what a TF tree with one optical frame per camera
holds (as kitti2bag / pykitti's ``T_cam2_velo``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lumde_depth.geometry.camera_model import CameraModel
from lumde_depth.geometry.projection import intrinsic_matrix, project_points

RAW_CAM_TO_CAM = "calib_cam_to_cam.txt"
RAW_VELO_TO_CAM = "calib_velo_to_cam.txt"


@dataclass(frozen=True, eq=False)  # eq on numpy fields would be ambiguous
class Calibration:
    """One rectified camera and (when known) the LiDAR -> camera optical frame transform.

    ``P`` is the 3x4 rectified projection matrix, ``T_cam_lidar`` 4x4 (None when the source holds no
    extrinsic, e.g. a ``CameraInfo``), ``width``/``height`` the image size in pixels (None when the
    source does not state it, e.g. KITTI object calib files).
    """

    P: np.ndarray
    T_cam_lidar: np.ndarray | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        P = np.asarray(self.P, dtype=np.float64)
        if P.shape != (3, 4):
            raise ValueError(f"Calibration.P must be a 3x4 projection matrix, got shape {P.shape} "
                             f"(for a 3x3 K use np.hstack([K, np.zeros((3, 1))]))")
        intrinsic_matrix(P)
        object.__setattr__(self, "P", P)
        if self.T_cam_lidar is not None:
            T = np.asarray(self.T_cam_lidar, dtype=np.float64)
            if T.shape != (4, 4):
                raise ValueError(f"Calibration.T_cam_lidar must be 4x4, got shape {T.shape}")
            object.__setattr__(self, "T_cam_lidar", T)

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix of the rectified image (the left block of ``P``)."""
        return self.P[:, :3].copy()

    @property
    def baseline_t(self) -> np.ndarray:
        """``K^-1 P[:, 3]``: the reference (camera 0) origin in this camera's frame, metres."""
        return np.linalg.solve(intrinsic_matrix(self.P), self.P[:, 3])

    def project(self, points: np.ndarray, min_depth: float = 0.1, max_depth: float = np.inf) -> np.ndarray:
        """Sparse depth image of LiDAR ``points`` (see :func:`project_points`)."""
        if self.T_cam_lidar is None:
            raise ValueError("this calibration has no LiDAR extrinsic (T_cam_lidar is None); "
                             "give one, e.g. dataclasses.replace(calib, T_cam_lidar=T)")
        if self.width is None or self.height is None:
            raise ValueError("this calibration has no image size; give one, e.g. "
                             "dataclasses.replace(calib, width=W, height=H)")
        return project_points(points, self.T_cam_lidar, self.P, self.width, self.height, min_depth, max_depth)


def read_kitti_text(path: str | Path) -> dict[str, str]:
    """``key: values`` lines of a KITTI calibration file as raw strings (no number parsing yet)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calibration file not found: {path}")
    entries = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep:
            entries[key.strip()] = value.strip()
    return entries


def _matrix(entries: dict[str, str], keys: tuple[str, ...], shape: tuple[int, ...], path: Path) -> np.ndarray:
    """The first of ``keys`` present in ``entries``, parsed into ``shape``; errors name file and key."""
    key = next((k for k in keys if k in entries), None)
    if key is None:
        raise ValueError(f"{path}: missing key '{keys[0]}' (found: {', '.join(sorted(entries)) or 'nothing'})")
    try:
        values = np.array(entries[key].split(), dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: key '{key}' is not a list of numbers: {entries[key][:60]!r}") from None
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{path}: key '{key}' has {values.size} numbers, expected {int(np.prod(shape))} {shape}")
    return values.reshape(shape)


def _homogeneous(R: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    if t is not None:
        T[:3, 3] = t
    return T


def _to_camera(P: np.ndarray, T_ref_lidar: np.ndarray) -> np.ndarray:
    """LiDAR -> camera-``c`` optical frame from the LiDAR -> rectified camera 0 transform and ``P_rect_0c``."""
    return _homogeneous(np.eye(3), np.linalg.solve(intrinsic_matrix(P), P[:, 3])) @ T_ref_lidar


def _check_camera(camera: int) -> None:
    if camera not in (0, 1, 2, 3):
        raise ValueError(f"KITTI camera must be 0, 1, 2 or 3 (2 = left colour), got {camera}")


def read_kitti_raw_calib(path: str | Path, camera: int = 2) -> Calibration:
    """Calibration of camera ``camera`` of a KITTI raw drive.

    ``path`` is the date folder holding ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt``, or a
    drive folder inside it (``2011_09_26/2011_09_26_drive_0023_sync``). Uses ``P_rect_0c``,
    ``S_rect_0c`` (image size), ``R_rect_00`` and ``R``/``T`` of the velodyne file.
    """
    _check_camera(camera)
    folder = Path(path)
    if not (folder / RAW_CAM_TO_CAM).is_file() and (folder.parent / RAW_CAM_TO_CAM).is_file():
        folder = folder.parent
    if not (folder / RAW_CAM_TO_CAM).is_file():
        raise FileNotFoundError(f"no {RAW_CAM_TO_CAM} in {Path(path)} or its parent: give the KITTI raw date "
                                f"folder (e.g. .../2011_09_26) or a drive folder inside it")
    cam_file, velo_file = folder / RAW_CAM_TO_CAM, folder / RAW_VELO_TO_CAM
    cam, velo = read_kitti_text(cam_file), read_kitti_text(velo_file)
    P = _matrix(cam, (f"P_rect_0{camera}",), (3, 4), cam_file)
    R_rect = _matrix(cam, ("R_rect_00",), (3, 3), cam_file)
    width, height = _matrix(cam, (f"S_rect_0{camera}",), (2,), cam_file)
    R = _matrix(velo, ("R",), (3, 3), velo_file)
    t = _matrix(velo, ("T",), (3,), velo_file)
    T_ref_lidar = _homogeneous(R_rect) @ _homogeneous(R, t)
    return Calibration(P=P, T_cam_lidar=_to_camera(P, T_ref_lidar), width=int(round(width)), height=int(round(height)))


def read_kitti_object_calib(path: str | Path, camera: int = 2, image_size: tuple[int, int] | None = None
                            ) -> Calibration:
    """Calibration of camera ``camera`` from a KITTI object (or tracking) calib file.

    Uses ``P<c>``, ``R0_rect`` and ``Tr_velo_to_cam`` (tracking files: ``R_rect``, ``Tr_velo_cam``).
    These files do not state the image size (it varies per frame): pass ``image_size=(width, height)``,
    e.g. from the image, or leave the size None.
    """
    _check_camera(camera)
    path = Path(path)
    entries = read_kitti_text(path)
    P = _matrix(entries, (f"P{camera}",), (3, 4), path)
    R_rect = _matrix(entries, ("R0_rect", "R_rect"), (3, 3), path)
    Tr = _matrix(entries, ("Tr_velo_to_cam", "Tr_velo_cam"), (3, 4), path)
    T_ref_lidar = _homogeneous(R_rect) @ _homogeneous(Tr[:, :3], Tr[:, 3])
    width, height = image_size if image_size is not None else (None, None)
    return Calibration(P=P, T_cam_lidar=_to_camera(P, T_ref_lidar), width=width, height=height)


def _field(msg: Any, name: str) -> Any:
    """``msg.<name>`` for ROS 2 (lower case) or ROS 1 / rosbags ROS 1 types (upper case K, P)."""
    for attr in (name, name.upper()):
        if hasattr(msg, attr):
            return getattr(msg, attr)
    raise ValueError(f"camera info message {type(msg).__name__} has no field '{name}' "
                     f"(expected a sensor_msgs/CameraInfo with k, p, width, height)")


def calibration_from_camera_info(msg: Any, T_cam_lidar: np.ndarray | None = None) -> Calibration:
    """Calibration from a ``sensor_msgs/CameraInfo`` (rclpy, rosbags or any object with its fields).

    Projection uses ``P`` (the rectified camera), so KITTI's rectified images work unchanged; an
    uncalibrated message (``P`` all zero) falls back to ``[K | 0]``. ``T_cam_lidar`` (LiDAR -> this
    message's optical frame, e.g. from TF) is attached as given.
    """
    P = np.asarray(_field(msg, "p"), dtype=np.float64).reshape(3, 4)
    if not P.any():
        K = np.asarray(_field(msg, "k"), dtype=np.float64).reshape(3, 3)
        if not K.any():
            raise ValueError("camera info is uncalibrated: both K and P are all zero; calibrate the camera "
                             "(camera_calibration) or publish its intrinsics")
        P = np.hstack([K, np.zeros((3, 1))])
    intrinsic_matrix(P)
    width, height = int(_field(msg, "width")), int(_field(msg, "height"))
    if width <= 0 or height <= 0:
        raise ValueError(f"camera info has no image size (width={width}, height={height})")
    return Calibration(P=P, T_cam_lidar=T_cam_lidar, width=width, height=height)


def camera_model_from_camera_info(msg: Any) -> CameraModel:
    """The camera of the image a ``sensor_msgs/CameraInfo`` describes, as it is published.

    ``D`` all zero (or empty): the rectified camera of :func:`calibration_from_camera_info` (``P``, or
    ``K`` where ``P`` is unset). ``D`` nonzero: a raw image, projected through ``K`` and the distortion
    (``distortion_model`` ``plumb_bob``, ``rational_polynomial`` or ``equidistant``), with ``P`` and ``R``
    kept for rectification. Raises ``ValueError`` naming the problem and the fix.
    """
    calib = calibration_from_camera_info(msg)
    D = np.asarray(_field(msg, "d"), dtype=np.float64).reshape(-1)
    model = str(getattr(msg, "distortion_model", "") or "")
    if not D.any():
        return CameraModel.pinhole(calib.P, calib.width, calib.height)
    K = np.asarray(_field(msg, "k"), dtype=np.float64).reshape(3, 3)
    if not K.any():
        raise ValueError("camera info has distortion D but K is all zero: a raw image is projected with K and D; "
                         "publish the camera's K")
    R = np.asarray(_field(msg, "r"), dtype=np.float64).reshape(3, 3)
    return CameraModel(K=K, width=calib.width, height=calib.height, D=D, distortion_model=model, P=calib.P,
                       R_rect=R if R.any() else None)


def _line(key: str, values: np.ndarray) -> str:
    return f"{key}: " + " ".join(f"{v:.12e}" for v in np.asarray(values, dtype=np.float64).ravel())


def write_kitti_raw_calib(directory: str | Path, calib: Calibration, R_rect_00: np.ndarray | None = None,
                          stereo_baseline: float = 0.54) -> tuple[Path, Path]:
    """Write ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` so that
    ``read_kitti_raw_calib(directory, 2)`` returns ``calib`` (camera 2) again.

    Camera 0 (the rectified reference) lies where ``calib.baseline_t`` puts it, cameras 1 and 3
    ``stereo_baseline`` metres to the right of cameras 0 and 2, all with camera 2's intrinsics and
    image size, no distortion; ``R_rect_00`` (default identity) is camera 0's rectifying rotation.
    Needs ``calib.T_cam_lidar`` and the image size.
    """
    if calib.T_cam_lidar is None or calib.width is None or calib.height is None:
        raise ValueError("write_kitti_raw_calib needs a calibration with T_cam_lidar, width and height")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    K = intrinsic_matrix(calib.P)
    R_rect = np.eye(3) if R_rect_00 is None else np.asarray(R_rect_00, dtype=np.float64).reshape(3, 3)
    t2 = calib.baseline_t
    shift = np.array([stereo_baseline, 0.0, 0.0])
    translations = {0: np.zeros(3), 1: -shift, 2: t2, 3: t2 - shift}
    size = np.array([calib.width, calib.height], dtype=np.float64)
    cam_lines = ["calib_time: written by lumde_depth", "corner_dist: 0.000000e+00"]
    for c, t in translations.items():
        cam_lines += [_line(f"S_0{c}", size), _line(f"K_0{c}", K), _line(f"D_0{c}", np.zeros(5)),
                      _line(f"R_0{c}", np.eye(3)), _line(f"T_0{c}", t), _line(f"S_rect_0{c}", size),
                      _line(f"R_rect_0{c}", R_rect if c == 0 else np.eye(3)),
                      _line(f"P_rect_0{c}", np.hstack([K, (K @ t)[:, None]]))]
    # Tr_velo_to_cam (unrectified camera 0) = R_rect^-1 @ T_ref_lidar, T_ref_lidar = [I | -t2] @ T_cam_lidar.
    Tr = _homogeneous(R_rect.T) @ _homogeneous(np.eye(3), -t2) @ np.asarray(calib.T_cam_lidar, dtype=np.float64)
    velo_lines = ["calib_time: written by lumde_depth", _line("R", Tr[:3, :3]), _line("T", Tr[:3, 3]),
                  _line("delta_f", np.zeros(2)), _line("delta_c", np.zeros(2))]
    cam_path, velo_path = directory / RAW_CAM_TO_CAM, directory / RAW_VELO_TO_CAM
    cam_path.write_text("\n".join(cam_lines) + "\n")
    velo_path.write_text("\n".join(velo_lines) + "\n")
    return cam_path, velo_path
