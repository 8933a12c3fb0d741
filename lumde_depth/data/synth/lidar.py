"""Simulated LiDARs: ring tables / scan patterns, ray grids, the return model and scan artefacts.

Patterns (``LidarConfig.pattern``):

- ``hdl64`` (default): the Velodyne HDL-64E on the KITTI car. 64 lasers in two blocks: 32 upper lasers
  from +2.0 deg to -8.33 deg (about 1/3 deg apart) and 32 lower lasers from -8.83 deg to -24.8 deg
  (about 1/2 deg). The azimuth step defaults to 0.18 deg: KITTI's HDL-64E spun at 10 Hz, where the real
  scans in ``kitti_object`` have a median step of 0.179 deg and about 115k points.
- ``uniform``: a spinning LiDAR with ``beams`` rings evenly spaced from ``fov_up_deg`` to ``fov_down_deg``
  (VLP-16, HDL-32E, OS1-128 and the like).
- ``random``: a non-scanning sensor (DDAD-like): ``points`` directions per sweep, drawn anew every
  sweep, uniformly inside the field of view.
- ``rosette``: a Livox-like non-repetitive rosette inside a cone of ``fov_up_deg - fov_down_deg``
  degrees around the forward axis; the pattern keeps turning from sweep to sweep, so it never repeats.

All patterns are cast as one ``(rows, columns)`` grid of rays (columns = azimuth steps over the full
turn, rows = rings, or for ``random`` / ``rosette`` ``beams`` virtual rows): a non-scanning pattern
puts each of its rays in the grid cell that contains it (its exact direction, within half a cell of the
cell centre) and only the cells holding a ray are kept, which keeps the grid culling of
:mod:`~lumde_depth.data.synth.raycast` valid (one row of margin).

Return model (per ray hit): range noise (Gaussian), reflectivity from the surface albedo, signal
``reflectivity * |cos(incidence)| / (range / 20 m)^2`` with a detection threshold, so dark and grazing
surfaces drop out first and more so far away, plus a small random loss; glass returns rarely.
Artefacts of real scans: *mixed returns* (a beam straddling a depth edge returns a range between the
two surfaces, :func:`mixed_returns`) and *motion distortion* (each point is stored in the sensor frame
of its own firing time within the sweep, :func:`motion_distort`). The camera-LiDAR parallax (points the
LiDAR sees behind an edge that the camera cannot) comes from the mounting offset itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumde_depth.config import field

PATTERNS = ("hdl64", "uniform", "random", "rosette")


def hdl64_elevations() -> np.ndarray:
    """The 64 ring elevation angles in radians, descending (ring 0 is the highest)."""
    upper = np.linspace(2.0, -8.33, 32)
    lower = np.linspace(-8.83, -24.8, 32)
    return np.deg2rad(np.concatenate([upper, lower]))


@dataclass
class LidarConfig:
    """LiDAR parameters (defaults: HDL-64E on the KITTI car at 10 Hz)."""

    pattern: str = field("hdl64", choices=PATTERNS,
                         doc="hdl64 (KITTI's ring table), uniform (beams rings), random (non-scanning, new "
                             "directions every sweep), rosette (Livox-like, forward cone)")
    beams: int = field(64, low=4, high=512, doc="uniform: rings; random / rosette: rows of the ray grid")
    fov_up_deg: float = field(2.0, low=-60.0, high=80.0, doc="uniform / random / rosette: highest elevation")
    fov_down_deg: float = field(-24.8, low=-80.0, high=60.0, doc="uniform / random / rosette: lowest elevation")
    points: int = field(45000, low=100, high=2_000_000, doc="random / rosette: directions per sweep")
    azimuth_step_deg: float = field(0.18, low=0.05, high=2.0, doc="horizontal angle between firings (grid columns)")
    max_range: float = field(120.0, low=5.0, high=300.0, doc="farthest return (metres)")
    min_range: float = field(0.9, low=0.0, high=5.0, doc="nearest return (metres)")
    range_noise: float = field(0.02, low=0.0, high=1.0, doc="range noise standard deviation (metres)")
    detection_threshold: float = field(0.004, low=0.0, high=1.0,
                                       doc="minimum reflectivity*|cos|/(range/20m)^2 that returns")
    random_loss: float = field(0.02, low=0.0, high=1.0, doc="probability a valid return is lost anyway")
    glass_return: float = field(0.15, low=0.0, high=1.0, doc="probability glass gives a return")
    height: float = field(1.73, low=0.3, high=5.0, doc="mounting height above the road (metres)")
    mixed_return: float = field(0.0, low=0.0, high=1.0,
                                doc="probability that a beam straddling a depth edge returns a range between "
                                    "the two surfaces (a mixed return)")
    motion_distortion: bool = field(False, doc="store each point in the sensor frame of its own firing time "
                                               "within the 10 Hz sweep (no de-skewing, as raw scans)")

    def elevations(self) -> np.ndarray:
        """Row elevations (radians, descending) of the ray grid."""
        if self.pattern == "hdl64":
            return hdl64_elevations()
        if self.fov_up_deg <= self.fov_down_deg:
            raise ValueError(f"lidar.fov_up_deg ({self.fov_up_deg}) must be above lidar.fov_down_deg "
                             f"({self.fov_down_deg})")
        return np.deg2rad(np.linspace(self.fov_up_deg, self.fov_down_deg, self.beams))

    @property
    def scattered(self) -> bool:
        """Whether rays lie anywhere in their grid cell (non-scanning patterns)."""
        return self.pattern in ("random", "rosette")


def _directions(elevation: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    ce = np.cos(elevation)
    return np.stack([ce * np.cos(azimuth), ce * np.sin(azimuth), np.sin(elevation) * np.ones_like(azimuth)], axis=-1)


def ray_grid(config: LidarConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit ray directions ``(R, C, 3)`` at the grid's cell centres in the sensor frame, row
    elevations and azimuth of column 0.

    Columns start behind the car (azimuth -pi) and turn counter-clockwise, as a scan is stored.
    """
    elev = config.elevations()
    step = np.deg2rad(config.azimuth_step_deg)
    n_cols = int(round(2 * np.pi / step))
    az0 = -np.pi
    az = az0 + np.arange(n_cols) * (2 * np.pi / n_cols)
    return _directions(elev[:, None], az[None, :]), elev, az0


@dataclass
class Sweep:
    """One sweep's rays in the grid: directions ``(R, C, 3)``, which cells fire ``(R, C)`` bool and
    each ray's firing time as a fraction of half the sweep period, in [-1, 1] (0 = the camera's
    trigger, when a spinning sensor faces forward)."""

    dirs: np.ndarray
    active: np.ndarray
    time: np.ndarray


def sweep(config: LidarConfig, grid: tuple[np.ndarray, np.ndarray, float], rng: np.random.Generator) -> Sweep:
    """The rays of one sweep. Spinning patterns use the grid as it is (no random draw); non-scanning
    ones draw ``config.points`` new directions and snap each to its grid cell."""
    dirs, elev, az0 = grid
    rows, cols = dirs.shape[:2]
    if not config.scattered:
        azimuth = az0 + np.arange(cols) * (2 * np.pi / cols)
        time = np.broadcast_to((azimuth / np.pi)[None, :], (rows, cols))
        return Sweep(dirs, np.ones((rows, cols), dtype=bool), time)
    hi, lo = elev[0], elev[-1]
    if config.pattern == "random":
        elevation = np.arcsin(rng.uniform(np.sin(lo), np.sin(hi), config.points))  # uniform on the sphere band
        azimuth = rng.uniform(-np.pi, np.pi, config.points)
        time = rng.uniform(-1.0, 1.0, config.points)
    else:  # rosette: r = R |sin(a s)|, phi = b s, an irrational ratio a / b; s keeps running across sweeps
        s = rng.uniform(0.0, 1e4) + np.linspace(0.0, 2 * np.pi * 37.0, config.points, endpoint=False)
        radius = 0.5 * (hi - lo) * np.abs(np.sin(s * (1.0 + np.sqrt(5.0)) / 2.0))
        phi = s * np.sqrt(2.0)
        elevation = 0.5 * (hi + lo) + radius * np.sin(phi)
        azimuth = radius * np.cos(phi)
        time = np.linspace(-1.0, 1.0, config.points)
    row_step = (hi - lo) / max(rows - 1, 1)
    r = np.clip(np.rint((hi - elevation) / row_step), 0, rows - 1).astype(np.int64)
    c = np.rint((azimuth - az0) / (2 * np.pi / cols)).astype(np.int64) % cols
    flat = r * cols + c
    flat, first = np.unique(flat, return_index=True)  # one ray per cell
    out = dirs.reshape(-1, 3).copy()
    out[flat] = _directions(elevation[first], azimuth[first])
    active = np.zeros(rows * cols, dtype=bool)
    active[flat] = True
    times = np.zeros(rows * cols)
    times[flat] = time[first]
    return Sweep(out.reshape(rows, cols, 3), active.reshape(rows, cols), times.reshape(rows, cols))


def mixed_returns(t: np.ndarray, probability: float, rng: np.random.Generator, edge: float = 0.3) -> np.ndarray:
    """Ranges ``(R, C)`` where a beam that straddles a depth edge with its neighbour in the same row
    (both hit, ranges more than ``edge`` m and 5 % apart) returns, with ``probability``, a range between
    the two surfaces (a weighted mix of the two echoes, as real pulses give at edges)."""
    a, b = t[:, :-1], t[:, 1:]
    with np.errstate(invalid="ignore"):
        gap = np.abs(a - b)
        edges = np.isfinite(a) & np.isfinite(b) & (gap > np.maximum(edge, 0.05 * np.minimum(a, b)))
    out = t.copy()
    rows, cols = np.nonzero(edges & (rng.random(edges.shape) < probability))
    w = rng.uniform(0.0, 1.0, rows.size)
    out[rows, cols] = a[rows, cols] + w * (b[rows, cols] - a[rows, cols])
    return out


def motion_distort(xyz: np.ndarray, fraction: np.ndarray, rotvec: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Points ``(N, 3)`` (sensor frame at the camera's trigger) as stored by a sensor that moved during
    the sweep: a point fired at ``fraction`` (of half the sweep, [-1, 1]) is expressed in the sensor
    frame of that instant. ``rotvec`` / ``translation``: the sensor's motion over half a sweep (its pose
    at +half a sweep in the trigger frame), interpolated linearly (constant velocity)."""
    f = fraction[:, None]
    v = xyz - f * translation[None, :]
    w = -f * rotvec[None, :]                        # rotate by the inverse of R(f * rotvec)
    angle = np.linalg.norm(w, axis=1, keepdims=True)
    axis = np.divide(w, angle, out=np.zeros_like(w), where=angle > 0)
    cos, sin = np.cos(angle), np.sin(angle)
    return (v * cos + np.cross(axis, v) * sin + axis * np.sum(axis * v, axis=1, keepdims=True) * (1 - cos))


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
