"""A user's own recording as camera frames with their projected LiDAR: what ``lumde adapt`` reads.

A :class:`Recording` is a named, re-iterable sequence of :class:`~lumde_depth.data.rig_frame.RigFrame`
(``depth`` = the LiDAR projected into the image, 0 = no point) in time order, each loaded on demand
(``frames()`` may be called more than once: once to train, once to score). Readers here (no ROS):

- :func:`kitti_raw_recording`: a KITTI raw drive folder ``<date>/<drive>_sync`` (or a root holding
  ``<date>`` folders), read by :class:`~lumde_depth.data.kitti_raw.KittiRaw`;
- :func:`ddad_recording`: DDAD / DGP scenes (:mod:`lumde_depth.data.ddad`), optionally some cameras;
- :func:`folder_recording`: a plain folder, the layout documented in :data:`FOLDER_LAYOUT`.

ROS 1 / ROS 2 bags are read in the ROS layer (:mod:`lumde_depth.ros.bag_frames`) into the same frames.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import yaml

from lumde_depth.data.depth_io import DataError, read_rgb, read_timestamps_ns, read_velodyne_bin
from lumde_depth.data.pcd import pcd_xyz
from lumde_depth.data.rig_frame import RigFrame
from lumde_depth.geometry import project_points
from lumde_depth.geometry.distortion import coefficients

FOLDER_LAYOUT = """\
<folder>/calib.yaml         K: [fx, 0, cx, 0, fy, cy, 0, 0, 1]  (3x3, row-major; or a nested 3x3 list)
                            T_cam_lidar: 16 floats row-major (LiDAR -> camera optical frame; or nested 4x4)
                            width, height: image size in pixels
                            D: [k1, k2, p1, p2, k3]  (optional: raw images with lens distortion, as CameraInfo.d)
                            distortion_model: plumb_bob | rational_polynomial | equidistant  (default plumb_bob)
<folder>/images/<stem>.png|.jpg          camera images, in time order by name
<folder>/scans/<stem>.bin|.pcd|.npz|.npy LiDAR scans of the same stems, in the LiDAR frame:
                                         .bin float32 x, y, z, intensity (KITTI); .pcd (ascii, binary or
                                         binary_compressed); .npy / .npz an (N, >=3) array (npz: key 'points'
                                         or 'data', or its only array)"""

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SCAN_SUFFIXES = (".bin", ".pcd", ".npz", ".npy")
_CALIB_KEYS = ("K", "T_cam_lidar", "width", "height", "D", "distortion_model")
_DRIVE = re.compile(r"^\d{4}_\d{2}_\d{2}_drive_\d{4}_(sync|extract)$")


class Recording:
    """A named sequence of frames, each loaded on demand (``load(i)``), re-iterable in time order."""

    def __init__(self, name: str, loaders: Sequence[Callable[[], RigFrame]]) -> None:
        if not loaders:
            raise DataError(f"{name}: the recording holds no frames")
        self.name = name
        self._loaders = list(loaders)

    @classmethod
    def of(cls, name: str, frames: Sequence[RigFrame]) -> "Recording":
        """A recording of frames already in memory (e.g. :func:`lumde_depth.data.ddad.ddad_frames`)."""
        return cls(name, [lambda f=f: f for f in frames])

    def __len__(self) -> int:
        return len(self._loaders)

    def load(self, index: int) -> RigFrame:
        return self._loaders[index]()

    def frames(self, indices: Sequence[int] | None = None) -> Iterator[RigFrame]:
        for index in range(len(self)) if indices is None else indices:
            yield self.load(index)

    def subset(self, indices: Sequence[int], name: str | None = None) -> "Recording":
        """The frames ``indices`` (in that order) as a recording of their own."""
        return Recording(name or self.name, [self._loaders[i] for i in indices])


# ---------------------------------------------------------------------- KITTI raw
def kitti_raw_recording(path: str | Path, camera: str = "image_02") -> Recording:
    """A KITTI raw drive folder (``.../<date>/<date>_drive_XXXX_sync``), or a root of ``<date>`` folders
    (every drive under it): the camera's frames with the LiDAR scan (or its ``proj_depth`` npz) projected,
    their image timestamps and, where the drive has ``oxts/`` packets and ``calib_imu_to_velo.txt``, their
    camera poses (:func:`lumde_depth.data.oxts.camera_poses`)."""
    from lumde_depth.data.kitti_calib import drive_calibration
    from lumde_depth.data.kitti_raw import KittiRaw
    from lumde_depth.data.oxts import camera_poses
    from lumde_depth.data.sample import rgb_array

    path = Path(path)
    drive = path if _DRIVE.match(path.name) else None
    dataset = KittiRaw(path.parent.parent if drive else path, "all", cameras=(camera,), triplets=False)
    if drive is not None:
        dataset.frames = [f for f in dataset.frames if f.drive.resolve() == drive.resolve()]
        if not dataset.frames:
            raise DataError(f"{path}: no {camera} frames in this KITTI raw drive")

    poses: dict[Path, dict[int, np.ndarray]] = {}
    stamps: dict[Path, np.ndarray] = {}

    def loader(index: int) -> Callable[[], RigFrame]:
        def load() -> RigFrame:
            sample = dataset[index]
            where = dataset.frames[index]
            if where.drive not in poses:
                calib = drive_calibration(where.drive.parent, where.camera)
                poses[where.drive] = camera_poses(where.drive, where.camera, calib.T_cam_lidar)
                times = where.drive / where.camera / "timestamps.txt"
                stamps[where.drive] = read_timestamps_ns(times) if times.is_file() else np.zeros(0, np.int64)
            stamp = stamps[where.drive]
            return RigFrame(rgb=rgb_array(sample["rgb"]), depth=sample["sparse"][0].numpy(),
                            K=sample["K"].numpy().astype(np.float64), scene=where.drive.name, camera=where.camera,
                            name=sample["name"], T_world_cam=poses[where.drive].get(where.index),
                            stamp_ns=int(stamp[where.index]) if where.index < stamp.size else -1)
        return load

    return Recording(str(path), [loader(i) for i in range(len(dataset))])


def is_kitti_raw(path: Path) -> bool:
    """A KITTI raw drive folder, or a folder of ``<date>`` folders holding drives."""
    if _DRIVE.match(path.name) and (path / "image_02").is_dir():
        return True
    return path.is_dir() and any(d.is_dir() and _DRIVE.match(d.name) for date in path.iterdir() if date.is_dir()
                                 for d in date.iterdir())


# ---------------------------------------------------------------------- plain folder
def _matrix(value: object, shape: tuple[int, int], key: str, path: Path) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise DataError(f"{path}: '{key}' must be {shape[0] * shape[1]} numbers ({shape[0]}x{shape[1]} row-major), "
                        f"got {value!r}") from None
    if not np.all(np.isfinite(matrix)):
        raise DataError(f"{path}: '{key}' holds NaN or inf")
    return matrix


@dataclass(frozen=True)
class FolderCalib:
    """A recording folder's ``calib.yaml``: intrinsics, extrinsic, image size, lens distortion."""

    K: np.ndarray
    T_cam_lidar: np.ndarray
    width: int
    height: int
    D: np.ndarray | None = None      # None: pinhole (undistorted images)
    distortion_model: str = "plumb_bob"


def read_folder_calib(path: Path) -> FolderCalib:
    """The calibration of a recording folder (:data:`FOLDER_LAYOUT`)."""
    if not path.is_file():
        raise DataError(f"{path}: calibration not found; a recording folder needs it:\n{FOLDER_LAYOUT}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid yaml ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping with K, T_cam_lidar, width, height:\n{FOLDER_LAYOUT}")
    missing = [k for k in _CALIB_KEYS[:4] if k not in data]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; the layout is:\n{FOLDER_LAYOUT}")
    unknown = sorted(set(data) - set(_CALIB_KEYS))
    if unknown:
        raise DataError(f"{path}: unknown key(s) {', '.join(unknown)} (valid: {', '.join(_CALIB_KEYS)})")
    K = _matrix(data["K"], (3, 3), "K", path)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise DataError(f"{path}: K must have positive focal lengths, got fx={K[0, 0]}, fy={K[1, 1]}")
    T = _matrix(data["T_cam_lidar"], (4, 4), "T_cam_lidar", path)
    model = str(data.get("distortion_model") or "plumb_bob")
    try:
        D = coefficients(data.get("D"), model)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    width, height = int(data["width"]), int(data["height"])
    if width <= 0 or height <= 0:
        raise DataError(f"{path}: width and height must be positive, got {width}x{height}")
    return FolderCalib(K, T, width, height, D, model)


def read_scan(path: Path) -> np.ndarray:
    """LiDAR points ``(N, >=3)`` of a ``.bin`` (KITTI float32 x, y, z, i), ``.pcd``, ``.npy`` or ``.npz`` file."""
    if path.suffix == ".bin":
        return read_velodyne_bin(path)
    if path.suffix == ".pcd":
        return pcd_xyz(path)
    try:
        if path.suffix == ".npy":
            points = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as data:
                keys = [k for k in ("points", "data") if k in data.files] or data.files
                if len(keys) != 1:
                    raise DataError(f"{path}: npz holds {', '.join(data.files) or 'nothing'}; store the points "
                                    "as one array named 'points'")
                points = data[keys[0]]
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read LiDAR points ({exc})") from None
    if points.ndim != 2 or points.shape[1] < 3:
        raise DataError(f"{path}: LiDAR points must be an (N, >=3) array of x, y, z[, ...], got shape {points.shape}")
    return points


def folder_recording(path: str | Path) -> Recording:
    """A plain folder of images, scans and one calibration (:data:`FOLDER_LAYOUT`)."""
    path = Path(path)
    calib = read_folder_calib(path / "calib.yaml")
    images = sorted(p for p in (path / "images").glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES) \
        if (path / "images").is_dir() else []
    if not images:
        raise DataError(f"{path / 'images'}: no .png / .jpg images; the layout is:\n{FOLDER_LAYOUT}")
    scans = {p.stem: p for p in (path / "scans").glob("*") if p.suffix in _SCAN_SUFFIXES} \
        if (path / "scans").is_dir() else {}
    lacking = [p.name for p in images if p.stem not in scans]
    if lacking:
        raise DataError(f"{path / 'scans'}: no scan (.bin / .pcd / .npz / .npy) for image(s) {', '.join(lacking[:5])}"
                        f"{' ...' if len(lacking) > 5 else ''}: every image needs the scan of the same name")

    def loader(image: Path) -> Callable[[], RigFrame]:
        def load() -> RigFrame:
            rgb = read_rgb(image)
            if rgb.shape[:2] != (calib.height, calib.width):
                raise DataError(f"{image}: the image is {rgb.shape[1]}x{rgb.shape[0]} but calib.yaml says "
                                f"{calib.width}x{calib.height}")
            points = read_scan(scans[image.stem])
            sparse = project_points(points, calib.T_cam_lidar, calib.K, calib.width, calib.height, D=calib.D,
                                    distortion_model=calib.distortion_model)
            return RigFrame(rgb=rgb, depth=sparse, K=calib.K.copy(), scene=path.name, camera="camera",
                            name=f"{path.name}/{image.stem}", points=points, T_cam_lidar=calib.T_cam_lidar,
                            D=calib.D, distortion_model=calib.distortion_model if calib.D is not None else "")
        return load

    return Recording(str(path), [loader(p) for p in images])


def ddad_recording(path: str | Path, cameras: Sequence[str] | None = None) -> Recording:
    """The DGP scenes under ``path`` (a DDAD root or one scene folder): every sample in time order, seen
    by every camera (or ``cameras``), the LiDAR sweep projected into each image."""
    from lumde_depth.data.ddad import ddad_scenes

    scenes = ddad_scenes(path)
    loaders = []
    for scene in scenes:
        names = scene.cameras if not cameras else [c for c in cameras if c in scene.cameras]
        if cameras and not names:
            raise DataError(f"{scene.path.parent}: none of the cameras {', '.join(cameras)} is in this scene "
                            f"(it has {', '.join(scene.cameras)})")
        loaders += [(lambda s=scene, i=i, c=c: s.frame(i, c)) for i in range(len(scene)) for c in names]
    return Recording(str(path), loaders)


def is_ddad(path: Path) -> bool:
    """A DGP scene folder, or a folder with DGP scenes below it (``scene_*/scene_<hash>.json``)."""
    return path.is_dir() and (any(p.is_file() for p in path.glob("scene_*.json")) or
                              any(path.glob("*/scene_*.json")) or any(path.glob("**/scene_*/scene_*.json")))


def open_recording(path: str | Path, camera: str = "image_02", cameras: Sequence[str] | None = None) -> Recording:
    """The recording at ``path``: a folder with ``calib.yaml`` (:func:`folder_recording`), a KITTI raw
    drive (:func:`kitti_raw_recording`, ``camera``) or DDAD / DGP scenes (:func:`ddad_recording`,
    ``cameras``). Bags are read by :func:`lumde_depth.ros.bag_frames.bag_recording`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such recording (give a bag, a KITTI raw drive folder, DDAD scenes or a "
                        "folder with calib.yaml)")
    if (path / "calib.yaml").is_file() or (path / "images").is_dir():
        return folder_recording(path)
    if path.is_dir() and is_kitti_raw(path):
        return kitti_raw_recording(path, camera)
    if is_ddad(path):
        return ddad_recording(path, cameras)
    raise DataError(f"{path}: not a recording lumde can read: expected a ROS 1 / ROS 2 bag, a KITTI raw drive "
                    f"folder (<date>/<date>_drive_XXXX_sync), DDAD / DGP scenes (scene_*/scene_<hash>.json), or "
                    f"a folder laid out as\n{FOLDER_LAYOUT}")
