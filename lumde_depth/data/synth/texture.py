"""Procedural surface appearance: albedo for the camera, reflectivity and glass for the LiDAR.

Object outlines make colour edges where depth jumps, as in real images; the patterns below add
colour edges with no depth edge (lane paint, paving joints, windows, asphalt stains), and the
renderer adds sun shadows, so a network cannot simply copy image edges into depth.
Every pattern is a vectorized function of the hit point (world and primitive-local coordinates).
"""
from __future__ import annotations

import numpy as np

from lumde_depth.data.synth.raycast import Primitives
from lumde_depth.data.synth.scene import (BUILDING, CAR_BODY, CAR_CABIN, FOLIAGE, GROUND, PERSON, POLE, SIDEWALK,
                                          TRUNK, WHEEL, Road)

_GLASS = np.array([0.06, 0.08, 0.11])
HORIZON, ZENITH = np.array([0.80, 0.85, 0.90]), np.array([0.32, 0.52, 0.85])
"""Sky radiance at the horizon (also the colour of haze) and at the zenith."""


_LATTICE = np.random.default_rng(20240601).random((16, 256, 256)).astype(np.float32)
"""Random lattice values for :func:`value_noise`, one 256x256 tile per noise seed (mod 16)."""


def _lattice(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    return _LATTICE[seed % 16][iy.astype(np.int64) & 255, ix.astype(np.int64) & 255]


def value_noise(x: np.ndarray, y: np.ndarray, seed: int = 0, octaves: int = 2) -> np.ndarray:
    """Smooth 2-D value noise in about [0, 1] (``octaves`` octaves, each half the size)."""
    total, amp, norm = np.zeros(np.shape(x)), 1.0, 0.0
    for octave in range(octaves):
        f = 2.0 ** octave
        fx, fy = x * f, y * f
        ix, iy = np.floor(fx), np.floor(fy)
        tx, ty = fx - ix, fy - iy
        tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
        s = seed + 101 * octave
        a, b = _lattice(ix, iy, s), _lattice(ix + 1, iy, s)
        c, d = _lattice(ix, iy + 1, s), _lattice(ix + 1, iy + 1, s)
        total += amp * ((a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty)
        norm += amp
        amp *= 0.5
    return total / norm


# Each material: (points, local, normals, base colour, primitive size, road) of its hits ->
# (albedo (n, 3), LiDAR reflectivity (n,), glass (n,) bool).

def _ground(p, local, normals, base, size, road: Road):
    """Asphalt with lane paint on the street, packed earth / grass beyond the buildings' line."""
    x, y = p[:, 0], p[:, 1]
    ay = np.abs(y)
    grain = value_noise(x * 2.0, y * 2.0, 11, 2)
    stains = value_noise(x * 0.15, y * 0.3, 12, 1)
    asphalt = (0.17 + 0.08 * grain + 0.06 * (stains - 0.5))[:, None] * np.array([1.0, 1.0, 1.04])
    w, n = road.lane_width, road.lanes
    dashed = ((x % (road.dash + road.gap)) < road.dash)
    paint = (ay < 0.08) & (dashed if n == 1 else np.ones_like(dashed))           # centre line
    for k in range(1, n):
        paint |= (np.abs(ay - k * w) < 0.07) & dashed                            # lane dividers
    paint |= np.abs(ay - n * w) < 0.09                                           # edge lines (parking)
    painted = np.flatnonzero(paint)
    paint[painted] = value_noise(x[painted] * 1.5, y[painted] * 6.0, 13, 2) > 0.25   # worn paint
    albedo = np.where(paint[:, None], 0.78 + 0.1 * grain[:, None], asphalt)
    reflect = np.where(paint, 0.9, 0.16 + 0.1 * grain)
    off_road = ay > road.building_line
    earth = np.stack([0.30 + 0.1 * grain, 0.33 + 0.12 * stains, 0.18 + 0.05 * grain], axis=1)
    albedo[off_road] = earth[off_road]
    reflect[off_road] = 0.3
    return albedo, reflect, None


def _sidewalk(p, local, normals, base, size, road):
    """Paving slabs with joints on top, plain concrete kerb faces."""
    x, y = p[:, 0], p[:, 1]
    joints = ((x % 0.6) < 0.03) | ((y % 0.6) < 0.03)
    tone = 0.48 + 0.08 * value_noise(x * 3.0, y * 3.0, 31, 2) - 0.12 * joints
    albedo = np.where(normals[:, 2] > 0.5, tone, 0.62)[:, None] * np.array([1.0, 0.99, 0.96])
    return albedo, np.full(len(p), 0.45), None


def _facade(p, local, normals, base, size, road):
    """Storeys of windows on walls, dark roofs."""
    along = np.where(np.abs(normals[:, 0]) > 0.5, local[:, 1], local[:, 0])
    z = local[:, 2]
    storey = z % 3.0
    bay = (along + 0.6) % 2.6
    window = (storey > 0.9) & (storey < 2.4) & (bay > 0.7) & (bay < 1.9) & (z > 2.5) & (z < 2 * size[:, 2] - 0.8)
    dirt = value_noise(along * 0.5, z * 0.5, 21, 2)
    albedo = base * (0.85 + 0.25 * dirt)[:, None]
    albedo[(storey < 0.15) & (z > 2.5)] *= 0.75                                 # storey cornice
    albedo[window] = _GLASS + 0.08 * dirt[window, None]
    roof = normals[:, 2] > 0.5
    albedo[roof] = (0.25 + 0.1 * dirt[roof])[:, None]
    glass = window & ~roof
    return albedo, np.where(glass, 0.1, 0.55), glass


def _car_body(p, local, normals, base, size, road):
    albedo = np.where((local[:, 2] < 0.12)[:, None], 0.08, base)                 # dark bumper strip
    return albedo, 0.15 + 0.7 * albedo.mean(axis=1), None


def _cabin(p, local, normals, base, size, road):
    """Car cabin: painted roof and pillars, glass in between."""
    length = 2 * size[:, 0]
    pillar = (local[:, 0] < 0.12 * length) | (local[:, 0] > 0.88 * length) | (np.abs(local[:, 0] - 0.5 * length) < 0.05)
    side = np.abs(normals[:, 1]) > 0.5
    glass = (normals[:, 2] < 0.5) & ~(side & pillar) & (local[:, 2] > 0.05)
    albedo = np.where(glass[:, None], _GLASS, base)
    return albedo, 0.15 + 0.7 * albedo.mean(axis=1), glass


def _wheel(p, local, normals, base, size, road):
    r = np.hypot(local[:, 0] - size[:, 0], local[:, 2] - size[:, 2])
    hub = (r < 0.55 * size[:, 0]) & (np.abs(normals[:, 2]) < 0.9)
    return np.where(hub[:, None], 0.55, 0.05) * np.ones(3), np.where(hub, 0.6, 0.1), None


def _pole(p, local, normals, base, size, road):
    return base, np.full(len(p), 0.6), None


def _trunk(p, local, normals, base, size, road):
    bark = value_noise(np.arctan2(local[:, 1] - size[:, 1], local[:, 0] - size[:, 0]) * 4.0, local[:, 2] * 0.8, 41, 2)
    return base * (0.7 + 0.6 * bark)[:, None], np.full(len(p), 0.4), None


def _foliage(p, local, normals, base, size, road):
    leaves = value_noise(p[:, 0] * 2.5 + p[:, 2] * 1.7, p[:, 1] * 2.5 - p[:, 2] * 1.3, 51, 3)
    return base * (0.5 + 1.0 * leaves)[:, None], np.full(len(p), 0.35), None


def _person(p, local, normals, base, size, road):
    folds = value_noise(local[:, 0] * 6.0 + local[:, 1] * 6.0, local[:, 2] * 3.0, 71, 2)
    return base * (0.75 + 0.5 * folds)[:, None], np.full(len(p), 0.3), None


_MATERIALS = {GROUND: _ground, SIDEWALK: _sidewalk, BUILDING: _facade, CAR_BODY: _car_body, CAR_CABIN: _cabin,
              WHEEL: _wheel, POLE: _pole, TRUNK: _trunk, FOLIAGE: _foliage, PERSON: _person}


def surface(prims: Primitives, idx: np.ndarray, points: np.ndarray, local: np.ndarray, normals: np.ndarray,
            road: Road) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo ``(N, 3)``, LiDAR reflectivity ``(N,)`` and glass mask ``(N,)`` of hit points.

    ``local`` and ``normals`` are what :func:`~lumde_depth.data.synth.raycast.surface_frame` returns.
    The hits are sorted by material once, so each material works on contiguous slices.
    """
    material = prims.material.astype(np.int8)[idx]
    order = np.argsort(material, kind="stable")  # radix sort for int8
    sorted_material = material[order]
    pid, pts, loc, nrm = idx[order], points[order], local[order], normals[order]
    base, size = prims.color[pid], prims.size[pid]
    albedo, reflect = np.empty_like(pts), np.empty(len(pts))
    glass = np.zeros(len(pts), dtype=bool)
    for m, shade in _MATERIALS.items():
        a, b = np.searchsorted(sorted_material, [m, m + 1])
        if a < b:
            s = slice(a, b)
            albedo[s], reflect[s], g = shade(pts[s], loc[s], nrm[s], base[s], size[s], road)
            if g is not None:
                glass[s] = g
    out_albedo, out_reflect, out_glass = np.empty_like(albedo), np.empty_like(reflect), np.empty_like(glass)
    out_albedo[order], out_reflect[order], out_glass[order] = albedo, reflect, glass
    return np.clip(out_albedo, 0.0, 1.0), np.clip(out_reflect, 0.0, 1.0), out_glass


def sky(dirs: np.ndarray, sun: np.ndarray) -> np.ndarray:
    """Sky radiance ``(N, 3)`` for unit world directions: horizon haze to blue zenith, sun glow, clouds."""
    up = np.clip(dirs[:, 2], 0.0, 1.0)
    colour = HORIZON + (ZENITH - HORIZON) * np.sqrt(up)[:, None]
    glow = np.clip(dirs @ sun, 0.0, 1.0) ** 32
    colour = colour + 0.6 * glow[:, None]
    scale = 1.0 / np.maximum(up, 0.05)
    clouds = value_noise(dirs[:, 0] * scale * 1.5, dirs[:, 1] * scale * 1.5, 61, 3)
    cover = np.clip((clouds - 0.55) * 3.0, 0.0, 1.0) * (up > 0.02)
    return colour * (1 - cover[:, None]) + 0.95 * cover[:, None]
