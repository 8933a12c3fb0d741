"""KITTI raw OXTS (GPS / IMU) packets and the camera poses they give.

A KITTI raw drive holds ``oxts/data/<frame>.txt`` (30 values per packet: lat, lon, alt, roll, pitch,
yaw, velocities, accelerations, rates, accuracies) with ``oxts/timestamps.txt``; the date folder holds
``calib_imu_to_velo.txt``. :func:`oxts_poses` is the devkit's / pykitti's pose of the IMU in a
Mercator world frame; :func:`camera_poses` turns it into each frame's camera pose ``T_world_cam``.

A ``_sync`` drive holds one packet per frame (the one nearest the LiDAR sweep), so frame ``i``'s pose is
packet ``i``'s, as pykitti takes it. It is not exact: in drive 0023 the distance between consecutive
frames alternates between 0.89 and 0.98 m at a steady 8.8 m/s (the packets are 100 or 110 ms apart while
the images are 103.7 ms apart), i.e. a relative pose is good to about 5 % in translation. Interpolating
the packets to the image timestamps does not fix it (the packets' positions do not follow their own
stamps either), so it is not done.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from lumde_depth.data.depth_io import DataError
from lumde_depth.geometry import read_kitti_text

EARTH_RADIUS = 6378137.0  # metres, as pykitti / the KITTI devkit
IMU_TO_VELO = "calib_imu_to_velo.txt"


def read_oxts(paths: Sequence[Path]) -> np.ndarray:
    """``(N, 30)`` OXTS packets of the files ``paths`` (in order)."""
    rows = []
    for path in paths:
        values = np.array(path.read_text().split(), dtype=np.float64) if path.stat().st_size else np.zeros(0)
        if values.size < 23:
            raise DataError(f"{path}: oxts packet of frame {int(path.stem)} has {values.size} values, "
                            f"expected 30; the file is truncated")
        rows.append(values[:30] if values.size >= 30 else np.pad(values, (0, 30 - values.size)))
    return np.stack(rows)


def oxts_poses(packets: np.ndarray) -> np.ndarray:
    """(N, 4, 4) ``T_world_imu`` of oxts packets: Mercator position relative to the first packet, R = Rz Ry Rx.

    This is pykitti's ``pose_from_oxts_packet`` (scale from the first latitude).
    """
    lat, lon, alt, roll, pitch, yaw = (packets[:, i] for i in range(6))
    scale = math.cos(math.radians(lat[0]))
    t = np.stack([scale * EARTH_RADIUS * np.radians(lon),
                  scale * EARTH_RADIUS * np.log(np.tan(np.radians(90.0 + lat) / 2.0)), alt], axis=1)
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    R = np.empty((len(packets), 3, 3))
    R[:, 0] = np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], axis=1)
    R[:, 1] = np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], axis=1)
    R[:, 2] = np.stack([-sp, cp * sr, cp * cr], axis=1)
    T = np.tile(np.eye(4), (len(packets), 1, 1))
    T[:, :3, :3], T[:, :3, 3] = R, t - t[0]
    return T


def read_imu_to_velo(date_dir: Path) -> np.ndarray | None:
    """``T_velo_imu`` from ``calib_imu_to_velo.txt`` (None when the file is absent)."""
    path = Path(date_dir) / IMU_TO_VELO
    if not path.is_file():
        return None
    entries = read_kitti_text(path)
    try:
        R = np.array(entries["R"].split(), dtype=np.float64).reshape(3, 3)
        t = np.array(entries["T"].split(), dtype=np.float64).reshape(3)
    except (KeyError, ValueError) as exc:
        raise DataError(f"{path}: needs 'R' (9 numbers) and 'T' (3 numbers): {exc}") from None
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def camera_poses(drive: Path, camera: str, T_cam_velo: np.ndarray) -> dict[int, np.ndarray]:
    """``T_world_cam`` of each frame of ``drive`` that has an OXTS packet (by frame index), from the packets,
    ``calib_imu_to_velo.txt`` and ``T_cam_velo`` (the camera's LiDAR extrinsic). Empty when the drive has
    no ``oxts/`` packets or the date folder no IMU calibration."""
    drive = Path(drive)
    files = sorted((drive / "oxts" / "data").glob("*.txt"))
    T_velo_imu = read_imu_to_velo(drive.parent)
    if not files or T_velo_imu is None:
        return {}
    T_imu_cam = np.linalg.inv(T_cam_velo @ T_velo_imu)
    return {int(f.stem): pose for f, pose in zip(files, oxts_poses(read_oxts(files)) @ T_imu_cam)}
