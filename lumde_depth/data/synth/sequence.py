"""Ego-motion of the synthetic car at 10 Hz and the KITTI timestamp format.

The car follows its lane with a smoothly varying speed, a small lateral sway (its yaw follows the
path's tangent) and a little pitch / roll from the suspension, so consecutive frames have the
motion a monocular self-supervised method needs to learn from.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from transforms3d.axangles import mat2axangle
from transforms3d.euler import euler2mat, mat2euler

from lumde_depth.data.synth.camera import LIDAR_HEIGHT

FRAME_RATE = 10.0
"""KITTI raw frames per second."""
EARTH_RADIUS = 6378137.0
"""Metres; the KITTI devkit's Mercator projection of the OXTS positions uses it."""
GRAVITY = 9.81
ORIGIN_LAT_LON_ALT = (49.011, 8.416, 115.0)
"""Where synthetic drives start (Karlsruhe, where KITTI was recorded)."""


@dataclass(frozen=True)
class EgoMotion:
    """Smooth ego trajectory; :meth:`pose` gives the vehicle (Velodyne) frame in the world."""

    lane_y: float
    speed: float         # mean forward speed (m/s)
    speed_amp: float     # speed oscillation amplitude (m/s)
    speed_freq: float    # rad/s
    speed_phase: float
    sway_amp: float      # lateral sway (m)
    sway_freq: float     # rad/s
    sway_phase: float
    pitch_amp: float     # rad
    roll_amp: float      # rad
    bounce_freq: float   # rad/s
    height: float = LIDAR_HEIGHT  # the vehicle (LiDAR) frame's height above the road (m)

    @staticmethod
    def random(rng: np.random.Generator, lane_y: float, speed: float, height: float = LIDAR_HEIGHT) -> "EgoMotion":
        return EgoMotion(lane_y=lane_y, speed=speed, speed_amp=float(rng.uniform(0.0, min(1.5, speed / 2))),
                         speed_freq=float(rng.uniform(0.2, 0.6)), speed_phase=float(rng.uniform(0, 2 * np.pi)),
                         sway_amp=float(rng.uniform(0.0, 0.25)), sway_freq=float(rng.uniform(0.2, 0.5)),
                         sway_phase=float(rng.uniform(0, 2 * np.pi)),
                         pitch_amp=float(np.deg2rad(rng.uniform(0.1, 0.5))),
                         roll_amp=float(np.deg2rad(rng.uniform(0.1, 0.4))), bounce_freq=float(rng.uniform(4.0, 9.0)),
                         height=height)

    def x(self, t: float | np.ndarray) -> float | np.ndarray:
        """Distance driven along the street at time ``t`` (integral of the speed)."""
        w, p = self.speed_freq, self.speed_phase
        return self.speed * t - self.speed_amp / w * (np.cos(w * t + p) - np.cos(p))

    def pose(self, t: float) -> np.ndarray:
        """4x4 ``T_world_vehicle`` at time ``t`` (s)."""
        x = float(self.x(t))
        y = self.lane_y + self.sway_amp * np.sin(self.sway_freq * t + self.sway_phase)
        vx = self.speed + self.speed_amp * np.sin(self.speed_freq * t + self.speed_phase)
        vy = self.sway_amp * self.sway_freq * np.cos(self.sway_freq * t + self.sway_phase)
        yaw = np.arctan2(vy, vx)
        pitch = self.pitch_amp * np.sin(self.bounce_freq * t)
        roll = self.roll_amp * np.sin(0.7 * self.bounce_freq * t + 1.0)
        T = np.eye(4)
        T[:3, :3] = euler2mat(roll, pitch, yaw, "sxyz")
        T[:3, 3] = (x, y, self.height + 0.01 * np.sin(self.bounce_freq * t))
        return T


def sweep_motion(ego: EgoMotion, t: float, half_period: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The vehicle's motion over half a LiDAR sweep after ``t``, in its frame at ``t``: (rotation vector,
    translation), what :func:`~lumde_depth.data.synth.lidar.motion_distort` interpolates."""
    rel = np.linalg.inv(ego.pose(t)) @ ego.pose(t + half_period)
    axis, angle = mat2axangle(rel[:3, :3], unit_thresh=1e-5)
    return np.asarray(axis) * angle, rel[:3, 3]


def frame_times(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Capture times (s from the drive's start) at 10 Hz with KITTI-like trigger jitter (~1 ms)."""
    return np.arange(frames) / FRAME_RATE + rng.normal(0.0, 0.001, frames).clip(-0.004, 0.004) + 0.004


def kitti_timestamp(start: datetime, seconds: float) -> str:
    """``2011-09-26 13:02:25.964389445`` style: date, time, nanoseconds."""
    ns = int(round(float(seconds) * 1e9))
    moment = start + timedelta(microseconds=ns // 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond:06d}{ns % 1000:03d}"


def _differentiate(f, t: float, h: float = 1e-3):
    return (f(t + h) - f(t - h)) / (2 * h)


def oxts_packets(ego: EgoMotion, times: np.ndarray, T_vehicle_imu: np.ndarray) -> np.ndarray:
    """``(N, 30)`` OXTS packets (KITTI raw ``oxts/data/*.txt``) of the IMU riding on the ego car.

    The world's x axis points east and y north; positions go through the inverse of the devkit's
    Mercator projection (scale from the first packet's latitude), so pykitti / ``lumde kitti2bag``
    recover the trajectory. Accelerations are specific forces (gravity included, as a real IMU
    reads), body rates come from the rotation's derivative; ``*f``, ``*l``, ``*u`` are in the level
    (heading-only) frame, ``*x``, ``*y``, ``*z`` in the body frame.
    """
    def pose(t: float) -> np.ndarray:
        return ego.pose(t) @ T_vehicle_imu

    lat0, lon0, alt0 = ORIGIN_LAT_LON_ALT
    scale = np.cos(np.deg2rad(lat0))
    mx0 = scale * EARTH_RADIUS * np.deg2rad(lon0)
    my0 = scale * EARTH_RADIUS * np.log(np.tan(np.deg2rad(90.0 + lat0) / 2.0))
    first = pose(float(times[0]))[:3, 3]
    packets = np.zeros((len(times), 30))
    for k, t in enumerate(np.asarray(times, dtype=np.float64)):
        T = pose(t)
        R, p = T[:3, :3], T[:3, 3] - first
        v = _differentiate(lambda s: pose(s)[:3, 3], t)
        a = _differentiate(lambda s: _differentiate(lambda r: pose(r)[:3, 3], s), t) + np.array([0, 0, GRAVITY])
        dR = _differentiate(lambda s: pose(s)[:3, :3], t)
        W = R.T @ dR
        w_body = np.array([W[2, 1], W[0, 2], W[1, 0]])
        roll, pitch, yaw = mat2euler(R, "sxyz")
        level = euler2mat(0.0, 0.0, yaw, "sxyz")
        lon = np.rad2deg((mx0 + p[0]) / (scale * EARTH_RADIUS))
        lat = np.rad2deg(2.0 * np.arctan(np.exp((my0 + p[1]) / (scale * EARTH_RADIUS)))) - 90.0
        packets[k, :6] = (lat, lon, alt0 + p[2], roll, pitch, yaw)
        packets[k, 6:8] = (v[1], v[0])
        packets[k, 8:11] = level.T @ v
        packets[k, 11:14] = R.T @ a
        packets[k, 14:17] = level.T @ a
        packets[k, 17:20] = w_body
        packets[k, 20:23] = level.T @ (R @ w_body)
        packets[k, 23:30] = (0.05, 0.02, 4, 11, 5, 5, 6)  # accuracies, navstat, satellites, RTK modes
    return packets
