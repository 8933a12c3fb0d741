"""KITTI raw drive -> ROS 2 bag (MCAP or sqlite3) with kitti2bag's topic names and frames, via ``rosbags``.

Topics (present when the drive has the data):

- ``/kitti/camera_{gray,color}_{left,right}/image_raw`` (mono8 / rgb8) and ``.../camera_info``
  (rectified: ``K = P[:, :3]``, ``D = 0``, ``R = I``, ``P = P_rect_0c``), frames ``camera_*``;
- ``/kitti/velo/pointcloud``: float32 x, y, z, intensity in ``velo_link``;
- ``/tf_static`` (offered transient-local, so late subscribers get it): ``velo_link -> camera_*``,
  and with ``calib_imu_to_velo.txt`` also ``base_link -> imu_link -> velo_link``;
- with ``oxts/``: ``/tf`` (``world -> base_link``, pykitti's Mercator pose relative to the first
  packet), ``/kitti/oxts/imu`` and ``/kitti/oxts/gps/fix``.

Stamps come from each sensor's ``timestamps.txt`` at full nanosecond precision. Messages are written in
time order; the bag is written to a temporary folder next to ``out`` and moved into place only
when complete, so an error never leaves a half-written bag.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lumde_depth.data import depth_io
from lumde_depth.data.depth_io import DataError
from lumde_depth.data.oxts import oxts_poses, read_imu_to_velo, read_oxts
from lumde_depth.geometry import read_kitti_raw_calib
from lumde_depth.ros import convert
from lumde_depth.ros.bag_io import BagError, check_new_bag, new_bag, typestore
from lumde_depth.ros.compat import tf_transformations

#: camera folder -> (ROS frame / topic name, encoding, KITTI camera number)
CAMERAS: dict[str, tuple[str, str, int]] = {
    "image_00": ("camera_gray_left", "mono8", 0), "image_01": ("camera_gray_right", "mono8", 1),
    "image_02": ("camera_color_left", "rgb8", 2), "image_03": ("camera_color_right", "rgb8", 3),
}
VELO_TOPIC, VELO_FRAME = "/kitti/velo/pointcloud", "velo_link"
IMU_TOPIC, GPS_TOPIC, IMU_FRAME, BASE_FRAME, WORLD_FRAME = "/kitti/oxts/imu", "/kitti/oxts/gps/fix", "imu_link", \
    "base_link", "world"


class Kitti2BagError(BagError):
    """A KITTI drive that cannot be converted; the message names the file (and frame)."""


def camera_topics(frame: str) -> tuple[str, str]:
    """(image topic, camera_info topic) of a kitti2bag camera frame name."""
    return f"/kitti/{frame}/image_raw", f"/kitti/{frame}/camera_info"


#: The node's inputs in a kitti2bag bag: left colour image, its camera_info, the Velodyne cloud.
KITTI_INPUTS: tuple[str, str, str] = (*camera_topics(CAMERAS["image_02"][0]), VELO_TOPIC)


def read_timestamps_ns(path: Path) -> np.ndarray:
    """KITTI ``timestamps.txt`` -> int64 ns since the epoch, -1 for empty lines (frames KITTI lost);
    :func:`lumde_depth.data.depth_io.read_timestamps_ns` with this tool's error type."""
    try:
        return depth_io.read_timestamps_ns(path)
    except DataError as exc:
        raise Kitti2BagError(str(exc)) from None


@dataclass
class _Stream:
    """One sensor folder: its frame files (sorted by index) and their stamps."""

    folder: Path
    files: list[Path]
    stamps: np.ndarray  # int64 ns, one per file

    @classmethod
    def scan(cls, folder: Path, pattern: str) -> "_Stream | None":
        data = folder / "data"
        if not data.is_dir():
            return None
        files = sorted(data.glob(pattern), key=lambda p: p.stem)
        if not files:
            return None
        all_stamps = read_timestamps_ns(folder / "timestamps.txt")
        indices = []
        for f in files:
            if not f.stem.isdigit():
                raise Kitti2BagError(f"{f}: KITTI frame files are named by their index (0000000000{f.suffix})")
            indices.append(int(f.stem))
        indices = np.asarray(indices)
        missing = indices >= all_stamps.size
        stamps = np.where(missing, -1, all_stamps[np.minimum(indices, all_stamps.size - 1)])
        if (stamps < 0).any():
            bad = files[int(np.argmax(stamps < 0))]
            raise Kitti2BagError(f"{bad}: frame {int(bad.stem)} has no timestamp in {folder / 'timestamps.txt'} "
                                 f"({all_stamps.size} lines)")
        return cls(folder, files, stamps)


@dataclass
class DriveSummary:
    """What was written: message counts per topic, first and last stamp (ns)."""

    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0


def _qos(depth: int, transient_local: bool = False) -> Any:
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(sec=0, nsec=0)
    return Qos(history=QosHistory.KEEP_LAST, depth=depth, reliability=QosReliability.RELIABLE,
               durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
               deadline=zero, lifespan=zero, liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=zero,
               avoid_ros_namespace_conventions=False)


def _transform(parent: str, child: str, T_parent_child: np.ndarray, stamp_ns: int, ts: Any) -> Any:
    """``geometry_msgs/TransformStamped`` holding ``T_parent_child`` (maps child-frame points into the parent)."""
    q = tf_transformations.quaternion_from_matrix(T_parent_child)
    Vector3 = convert.message_class("geometry_msgs/msg/Vector3", ts)
    Quaternion = convert.message_class("geometry_msgs/msg/Quaternion", ts)
    Transform = convert.message_class("geometry_msgs/msg/Transform", ts)
    t = T_parent_child[:3, 3]
    return convert.message_class("geometry_msgs/msg/TransformStamped", ts)(
        header=convert.make_header(stamp_ns, parent, ts), child_frame_id=child,
        transform=Transform(translation=Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                            rotation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))))


def _tf_message(transforms: list[Any], ts: Any) -> Any:
    return convert.message_class("tf2_msgs/msg/TFMessage", ts)(transforms=transforms)


def _read_image(path: Path, encoding: str, frame: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L" if encoding == "mono8" else "RGB"))
    except (OSError, SyntaxError) as exc:
        raise Kitti2BagError(f"{path}: cannot read image of frame {frame} ({exc}); the file is truncated or corrupt") \
            from None


def _read_scan(path: Path, frame: int) -> np.ndarray:
    try:
        return depth_io.read_velodyne_bin(path)
    except DataError as exc:
        raise Kitti2BagError(f"scan of frame {frame} unreadable, {exc}") from None


def _imu_to_velo(date_dir: Path) -> np.ndarray | None:
    """``T_velo_imu`` from ``calib_imu_to_velo.txt`` (None when the file is absent)."""
    try:
        return read_imu_to_velo(date_dir)
    except DataError as exc:
        raise Kitti2BagError(str(exc)) from None


def _read_oxts(stream: _Stream) -> np.ndarray:
    """(N, 30) oxts packets (lat, lon, alt, roll, pitch, yaw, vn, ve, vf, vl, vu, ax, ay, az, af, al, au, wx .. wu, ...)."""
    try:
        return read_oxts(stream.files)
    except DataError as exc:
        raise Kitti2BagError(str(exc)) from None


class _Drive:
    """What a drive folder holds, checked before anything is written."""

    def __init__(self, drive: Path, cameras: tuple[str, ...] | None) -> None:
        if not drive.is_dir():
            raise Kitti2BagError(f"{drive}: not a folder; give a KITTI raw drive folder "
                                 f"(e.g. 2011_09_26/2011_09_26_drive_0001_sync)")
        self.drive = drive
        self.date_dir = drive.parent
        wanted = tuple(CAMERAS) if cameras is None else cameras
        unknown = [c for c in wanted if c not in CAMERAS]
        if unknown:
            raise Kitti2BagError(f"unknown camera folder(s) {unknown}; use some of {', '.join(CAMERAS)}")
        self.cameras = {c: s for c in wanted if (s := _Stream.scan(drive / c, "*.png")) is not None}
        self.velo = _Stream.scan(drive / "velodyne_points", "*.bin")
        self.oxts = _Stream.scan(drive / "oxts", "*.txt")
        if not self.cameras and self.velo is None:
            raise Kitti2BagError(f"{drive}: no image_0X/data/*.png and no velodyne_points/data/*.bin; "
                                 f"is this a KITTI raw drive folder?")
        try:
            self.calibs = {c: read_kitti_raw_calib(self.date_dir, CAMERAS[c][2]) for c in self.cameras}
            if not self.calibs:
                self.calibs = {"image_02": read_kitti_raw_calib(self.date_dir, 2)}
        except (FileNotFoundError, ValueError) as exc:
            raise Kitti2BagError(f"calibration of {drive}: {exc}") from None
        self.T_velo_imu = _imu_to_velo(self.date_dir)
        self.start_ns = int(min(s.stamps.min() for s in self._streams()))

    def _streams(self) -> list[_Stream]:
        return [*self.cameras.values(), *(s for s in (self.velo, self.oxts) if s is not None)]

    def static_transforms(self, ts: Any) -> list[Any]:
        out = [_transform(VELO_FRAME, CAMERAS[camera][0], np.linalg.inv(calib.T_cam_lidar), self.start_ns, ts)
               for camera, calib in self.calibs.items()]
        if self.T_velo_imu is not None:
            out.append(_transform(BASE_FRAME, IMU_FRAME, np.eye(4), self.start_ns, ts))
            out.append(_transform(IMU_FRAME, VELO_FRAME, np.linalg.inv(self.T_velo_imu), self.start_ns, ts))
        return out

    def events(self) -> Iterator[tuple[int, str, int]]:
        """(stamp ns, stream key, file index) of every frame, in time order."""
        keyed = [(k, s) for k, s in (*self.cameras.items(), ("velo", self.velo), ("oxts", self.oxts)) if s is not None]
        return iter(sorted((int(t), k, i) for k, s in keyed for i, t in enumerate(s.stamps)))

    @property
    def count(self) -> int:
        return sum(len(s.files) for s in self._streams())


def _imu_and_fix(packet: np.ndarray, stamp: int, ts: Any) -> tuple[Any, Any]:
    header = convert.make_header(stamp, IMU_FRAME, ts)
    q = tf_transformations.quaternion_from_euler(packet[3], packet[4], packet[5])
    Vector3 = convert.message_class("geometry_msgs/msg/Vector3", ts)
    Quaternion = convert.message_class("geometry_msgs/msg/Quaternion", ts)
    unknown = np.zeros(9)
    Imu = convert.message_class("sensor_msgs/msg/Imu", ts)
    imu = Imu(header=header, orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]), orientation_covariance=unknown,
              angular_velocity=Vector3(x=packet[20], y=packet[21], z=packet[22]), angular_velocity_covariance=unknown,
              linear_acceleration=Vector3(x=packet[14], y=packet[15], z=packet[16]),
              linear_acceleration_covariance=unknown)
    NavSatStatus = convert.message_class("sensor_msgs/msg/NavSatStatus", ts)
    fix = convert.message_class("sensor_msgs/msg/NavSatFix", ts)(
        header=header, status=NavSatStatus(status=0, service=1), latitude=packet[0], longitude=packet[1],
        altitude=packet[2], position_covariance=unknown, position_covariance_type=0)
    return imu, fix


def kitti2bag(drive: str | Path, out: str | Path, storage: str = "mcap", cameras: tuple[str, ...] | None = None,
              progress: bool = True) -> DriveSummary:
    """Convert the KITTI raw drive folder ``drive`` into the ROS 2 bag ``out`` (a new folder)."""
    from tqdm import tqdm

    out = check_new_bag(out, storage)
    drive = Path(drive)
    source = _Drive(drive, cameras)
    ts = typestore()
    summary = DriveSummary(out=out, start_ns=source.start_ns)
    with new_bag(out, storage) as writer:
        connections: dict[str, Any] = {}

        def write(topic: str, msgtype: str, msg: Any, stamp: int, transient_local: bool = False) -> None:
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, msgtype, typestore=ts, offered_qos_profiles=[_qos(1 if transient_local else 10,
                                                                              transient_local)])
            writer.write(connections[topic], stamp, ts.serialize_cdr(msg, msgtype))
            summary.counts[topic] = summary.counts.get(topic, 0) + 1
            summary.end_ns = max(summary.end_ns, stamp)

        write("/tf_static", "tf2_msgs/msg/TFMessage", _tf_message(source.static_transforms(ts), ts),
              source.start_ns, transient_local=True)
        packets = _read_oxts(source.oxts) if source.oxts is not None else None
        poses = oxts_poses(packets) if packets is not None else None
        for stamp, key, index in tqdm(source.events(), total=source.count, desc=f"kitti2bag {drive.name}",
                                      unit="frame", disable=not progress):
            if key == "velo":
                path = source.velo.files[index]
                cloud = convert.xyzi_to_cloud(_read_scan(path, int(path.stem)),
                                              convert.make_header(stamp, VELO_FRAME, ts), ts)
                write(VELO_TOPIC, "sensor_msgs/msg/PointCloud2", cloud, stamp)
            elif key == "oxts":
                write("/tf", "tf2_msgs/msg/TFMessage",
                      _tf_message([_transform(WORLD_FRAME, BASE_FRAME, poses[index], stamp, ts)], ts), stamp)
                imu, fix = _imu_and_fix(packets[index], stamp, ts)
                write(IMU_TOPIC, "sensor_msgs/msg/Imu", imu, stamp)
                write(GPS_TOPIC, "sensor_msgs/msg/NavSatFix", fix, stamp)
            else:
                frame, encoding, _ = CAMERAS[key]
                path = source.cameras[key].files[index]
                pixels = _read_image(path, encoding, int(path.stem))
                calib = source.calibs[key]
                if calib.width is not None and (pixels.shape[1], pixels.shape[0]) != (calib.width, calib.height):
                    raise Kitti2BagError(f"{path}: frame {int(path.stem)} is {pixels.shape[1]}x{pixels.shape[0]} "
                                         f"but the calibration says {calib.width}x{calib.height} (S_rect)")
                header = convert.make_header(stamp, frame, ts)
                image_topic, info_topic = camera_topics(frame)
                write(image_topic, "sensor_msgs/msg/Image", convert.numpy_to_image(pixels, encoding, header, ts),
                      stamp)
                write(info_topic, "sensor_msgs/msg/CameraInfo",
                      convert.make_camera_info(header, pixels.shape[1], pixels.shape[0], P=calib.P, typestore=ts),
                      stamp)
    return summary
