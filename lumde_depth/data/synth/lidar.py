"""An HDL-64E-like spinning LiDAR: ring table, ray grid and the return model.

The 64 lasers sit in two blocks as on the Velodyne HDL-64E: 32 upper lasers from +2.0 deg to
-8.33 deg (about 1/3 deg apart) and 32 lower lasers from -8.83 deg to -24.8 deg (about 1/2 deg).
The azimuth step defaults to 0.18 deg: KITTI's HDL-64E spun at 10 Hz, where the real scans in
``kitti_object`` have a median step of 0.179 deg and about 115k points; the datasheet's 0.08-0.09 deg
holds at 5 Hz and would give twice KITTI's density.

Return model (per ray hit): range noise (Gaussian), reflectivity from the surface albedo, signal
``reflectivity * |cos(incidence)| / (range / 20 m)^2`` with a detection threshold, so dark and grazing
surfaces drop out first and more so far away, plus a small random loss; glass returns rarely.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumde_depth.config import field


def hdl64_elevations() -> np.ndarray:
    """The 64 ring elevation angles in radians, descending (ring 0 is the highest)."""
    upper = np.linspace(2.0, -8.33, 32)
    lower = np.linspace(-8.83, -24.8, 32)
    return np.deg2rad(np.concatenate([upper, lower]))


@dataclass
class LidarConfig:
    """Spinning LiDAR parameters (defaults: HDL-64E on the KITTI car at 10 Hz)."""

    azimuth_step_deg: float = field(0.18, low=0.05, high=2.0, doc="horizontal angle between firings")
    max_range: float = field(120.0, low=5.0, high=300.0, doc="farthest return (metres)")
    min_range: float = field(0.9, low=0.0, high=5.0, doc="nearest return (metres)")
    range_noise: float = field(0.02, low=0.0, high=1.0, doc="range noise standard deviation (metres)")
    detection_threshold: float = field(0.004, low=0.0, high=1.0,
                                       doc="minimum reflectivity*|cos|/(range/20m)^2 that returns")
    random_loss: float = field(0.02, low=0.0, high=1.0, doc="probability a valid return is lost anyway")
    glass_return: float = field(0.15, low=0.0, high=1.0, doc="probability glass gives a return")


def ray_grid(config: LidarConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit ray directions ``(64, C, 3)`` in the sensor frame, ring elevations and azimuth of column 0.

    Columns start behind the car (azimuth -pi) and turn counter-clockwise, as a scan is stored.
    """
    elev = hdl64_elevations()
    step = np.deg2rad(config.azimuth_step_deg)
    n_cols = int(round(2 * np.pi / step))
    az0 = -np.pi
    az = az0 + np.arange(n_cols) * (2 * np.pi / n_cols)
    ce = np.cos(elev)[:, None]
    dirs = np.stack([ce * np.cos(az)[None, :], ce * np.sin(az)[None, :],
                     np.broadcast_to(np.sin(elev)[:, None], (len(elev), n_cols))], axis=-1)
    return dirs, elev, az0


def lidar_returns(config: LidarConfig, rng: np.random.Generator, dirs: np.ndarray, true_range: np.ndarray,
                  normals: np.ndarray, reflectivity: np.ndarray, glass: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rays return, their measured ranges and intensities.

    ``dirs`` ``(N, 3)`` unit rays (any frame shared with ``normals``), ``true_range`` ``(N,)`` (inf =
    no hit), ``normals`` ``(N, 3)``, ``reflectivity`` ``(N,)`` in [0, 1], ``glass`` ``(N,)`` bool.
    Returns the kept-ray mask ``(N,)`` and, for the kept rays in order, range and intensity ``(M,)``.
    """
    n = len(true_range)
    noisy = true_range + rng.normal(0.0, config.range_noise, n)
    cos_inc = np.abs(np.einsum("ij,ij->i", dirs, normals))
    with np.errstate(invalid="ignore"):
        signal = reflectivity * cos_inc / np.maximum(true_range / 20.0, 1.0) ** 2
        keep = (np.isfinite(true_range) & (noisy >= config.min_range) & (noisy <= config.max_range)
                & (signal >= config.detection_threshold) & (rng.random(n) >= config.random_loss)
                & (~glass | (rng.random(n) < config.glass_return)))
    intensity = np.clip(0.2 + 0.7 * reflectivity * cos_inc + rng.normal(0.0, 0.03, n), 0.0, 0.99)
    return keep, noisy[keep], intensity[keep]
