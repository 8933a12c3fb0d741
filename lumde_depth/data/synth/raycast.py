"""Analytic, vectorized ray casting against the synthetic scene's primitives.

Primitives are kept as a struct of arrays (:class:`Primitives`): the ground plane ``z = 0``,
boxes rotated about the vertical axis, ellipsoids rotated about the vertical axis (spheres, tree
crowns, car wheels) and vertical capped cylinders (poles, trunks). Each intersection routine works
on a whole block of rays at once; the only Python loop is over primitives (a few hundred at most),
and each primitive only sees the rays that can hit it:

* sensors whose rays form a grid (the pinhole camera, the spinning LiDAR) give every primitive a
  rectangle of the grid from its bounding box (:func:`camera_rects`, :func:`lidar_rects`);
* scattered rays (shadow rays) give every primitive the rays whose origin lies under its shadow
  footprint (:func:`any_hit_towards`).

A ray is ``origin + t * direction``; the returned ``t`` is in units of the direction's length, so
camera rays with a unit optical-axis component give the z-depth directly and unit LiDAR rays give
the range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANE, BOX, ELLIPSOID, CYLINDER = 0, 1, 2, 3
"""Primitive kinds."""

T_EPS = 1e-4
"""Hits closer than this along the ray are ignored (self-intersection of secondary rays)."""

_BOX_EDGES = np.array([(0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7),
                       (0, 4), (1, 5), (2, 6), (3, 7)])
_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)


@dataclass
class Primitives:
    """``P`` primitives as parallel arrays.

    ``size`` holds the half extents of a box, the radii of an ellipsoid, and ``(r, r, half height)``
    of a cylinder; ``center`` is the centre of the shape (for the plane it is unused).
    ``material`` and ``color`` drive the shading.
    """

    kind: np.ndarray       # (P,) int
    center: np.ndarray     # (P, 3) float64
    size: np.ndarray       # (P, 3) float64
    yaw: np.ndarray        # (P,) float64, rotation about +z
    material: np.ndarray   # (P,) int
    color: np.ndarray      # (P, 3) float64 base albedo in [0, 1]

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def corners(self) -> np.ndarray:
        """``(P, 8, 3)`` corners of each primitive's oriented bounding box (world frame)."""
        local = _CORNER_SIGNS[None] * self.size[:, None, :]
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x = c * local[..., 0] - s * local[..., 1]
        y = s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y, local[..., 2]], axis=-1) + self.center[:, None, :]

    def select(self, keep: np.ndarray) -> "Primitives":
        """The primitives where boolean/integer index ``keep`` selects."""
        return Primitives(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: list["Primitives"]) -> "Primitives":
        return Primitives(*(np.concatenate([getattr(p, f) for p in parts]) for f in Primitives.__dataclass_fields__))


def _to_local(p: Primitives, i: int, o: np.ndarray, d: np.ndarray) -> tuple[tuple, tuple]:
    """Ray origin and direction components in primitive ``i``'s frame (centre 0, axes along its yaw).

    Works component-wise on ``(..., 3)`` arrays: no ``(..., 3)`` temporaries, no reductions along
    the short last axis, both of which dominate the cost of numpy ray casting otherwise.
    """
    c, s = np.cos(p.yaw[i]), np.sin(p.yaw[i])
    ox, oy, oz = o[..., 0] - p.center[i, 0], o[..., 1] - p.center[i, 1], o[..., 2] - p.center[i, 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    if s == 0.0 and c == 1.0:
        return (ox, oy, oz), (dx, dy, dz)
    return (c * ox + s * oy, c * oy - s * ox, oz), (c * dx + s * dy, c * dy - s * dx, dz)


def _slab(h: float, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(d == 0.0, 1e-30, d)
    t1, t2 = (-h - o) * inv, (h - o) * inv
    return np.minimum(t1, t2), np.maximum(t1, t2)


def _hit_box(h: np.ndarray, o: tuple, d: tuple) -> np.ndarray:
    """Slab test against the box ``|x| <= h`` (local frame); ``inf`` where the ray misses."""
    nx, fx = _slab(h[0], o[0], d[0])
    ny, fy = _slab(h[1], o[1], d[1])
    nz, fz = _slab(h[2], o[2], d[2])
    t_near = np.maximum(np.maximum(nx, ny), nz)
    t_far = np.minimum(np.minimum(fx, fy), fz)
    t = np.where(t_near > T_EPS, t_near, t_far)
    return np.where((t_far >= t_near) & (t > T_EPS), t, np.inf)


def _hit_ellipsoid(radii: np.ndarray, o: tuple, d: tuple) -> np.ndarray:
    """Ellipsoid ``|x / radii| = 1``: a unit sphere after scaling, which keeps ``t``."""
    ox, oy, oz = o[0] / radii[0], o[1] / radii[1], o[2] / radii[2]
    dx, dy, dz = d[0] / radii[0], d[1] / radii[1], d[2] / radii[2]
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - 1.0
    disc = b * b - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = (-b - root) / a, (-b + root) / a
    t = np.where(t0 > T_EPS, t0, t1)
    return np.where((disc >= 0.0) & (t > T_EPS), t, np.inf)


def _hit_cylinder(size: np.ndarray, o: tuple, d: tuple) -> np.ndarray:
    """Vertical cylinder of radius ``size[0]`` and half height ``size[2]`` with a top cap."""
    r, hz = size[0], size[2]
    (ox, oy, oz), (dx, dy, dz) = o, d
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - r * r
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        z_side = oz + t_side * dz
        side_ok = (disc >= 0.0) & (a > 0.0) & (t_side > T_EPS) & (np.abs(z_side) <= hz)
        t_cap = (hz - oz) / dz
        cx, cy = ox + t_cap * dx, oy + t_cap * dy
        cap_ok = (dz < 0.0) & (t_cap > T_EPS) & (cx * cx + cy * cy <= r * r)
    return np.minimum(np.where(side_ok, t_side, np.inf), np.where(cap_ok, t_cap, np.inf))


def _hit_plane(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The ground ``z = 0``, seen from above."""
    oz, dz = o[..., 2], d[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -oz / dz
    return np.where((dz < 0.0) & (oz > 0.0) & (t > T_EPS), t, np.inf)


def hit_distance(p: Primitives, i: int, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameter of the first hit of rays ``o + t d`` (``(..., 3)``, broadcast) with primitive ``i``."""
    kind = p.kind[i]
    if kind == PLANE:
        return np.broadcast_to(_hit_plane(o, d), np.broadcast_shapes(np.shape(o), d.shape)[:-1])
    lo, ld = _to_local(p, i, o, d)
    if kind == BOX:
        return _hit_box(p.size[i], lo, ld)
    if kind == ELLIPSOID:
        return _hit_ellipsoid(p.size[i], lo, ld)
    if kind == CYLINDER:
        return _hit_cylinder(p.size[i], lo, ld)
    raise ValueError(f"unknown primitive kind {kind}")


Rect = tuple[int, int, int, int]
"""``(row0, row1, col0, col1)``, half-open, of a ray grid."""


def cast_grid(p: Primitives, origin: np.ndarray, dirs: np.ndarray,
              rects: list[list[Rect]]) -> tuple[np.ndarray, np.ndarray]:
    """First hits of a ``(R, C, 3)`` grid of rays sharing one origin.

    ``rects[i]`` are the grid rectangles primitive ``i`` can hit. Returns ``t`` ``(R, C)`` (inf = no
    hit) and the index of the hit primitive ``(R, C)`` (-1 = no hit).
    """
    t_best = np.full(dirs.shape[:2], np.inf)
    idx = np.full(dirs.shape[:2], -1, dtype=np.int32)
    for i, boxes in enumerate(rects):
        for r0, r1, c0, c1 in boxes:
            t = hit_distance(p, i, origin, dirs[r0:r1, c0:c1])
            best = t_best[r0:r1, c0:c1]
            closer = t < best
            best[closer] = t[closer]
            idx[r0:r1, c0:c1][closer] = i
    return t_best, idx


def camera_rects(p: Primitives, T_cam_world: np.ndarray, K: np.ndarray, width: int, height: int,
                 near: float = 0.05, margin: int = 1) -> list[list[Rect]]:
    """Image rectangles each primitive can cover, from its bounding box clipped to ``z >= near``.

    The image of a convex body in front of a pinhole camera lies in the convex hull of its projected
    vertices; for a box crossing the near plane, the box edges' crossing points are added, which
    keeps the bound exact instead of falling back to the whole image.
    """
    corners = p.corners() @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]          # (P, 8, 3)
    za, zb = corners[:, _BOX_EDGES[:, 0], 2], corners[:, _BOX_EDGES[:, 1], 2]  # (P, 12)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (near - za) / (zb - za)
    crossing = ((za - near) * (zb - near) < 0.0)
    pa, pb = corners[:, _BOX_EDGES[:, 0]], corners[:, _BOX_EDGES[:, 1]]
    cross_pts = pa + np.where(crossing, s, 0.0)[..., None] * (pb - pa)
    pts = np.concatenate([corners, cross_pts], axis=1)
    ok = np.concatenate([corners[..., 2] >= near, crossing], axis=1)
    z = np.where(ok, pts[..., 2], 1.0)
    u = K[0, 0] * pts[..., 0] / z + K[0, 2]
    v = K[1, 1] * pts[..., 1] / z + K[1, 2]
    inf = np.inf
    u0 = np.where(ok, u, inf).min(axis=1)
    u1 = np.where(ok, u, -inf).max(axis=1)
    v0 = np.where(ok, v, inf).min(axis=1)
    v1 = np.where(ok, v, -inf).max(axis=1)
    rects: list[list[Rect]] = []
    for i in range(len(p)):
        if p.kind[i] == PLANE:
            rects.append([(0, height, 0, width)])
            continue
        if not ok[i].any():
            rects.append([])
            continue
        c0, c1 = int(max(0, np.floor(u0[i]) - margin)), int(min(width, np.ceil(u1[i]) + margin + 1))
        r0, r1 = int(max(0, np.floor(v0[i]) - margin)), int(min(height, np.ceil(v1[i]) + margin + 1))
        rects.append([(r0, r1, c0, c1)] if r0 < r1 and c0 < c1 else [])
    return rects


def lidar_rects(p: Primitives, T_sensor_world: np.ndarray, elevations: np.ndarray, azimuth0: float,
                azimuth_step: float, max_range: float, row_margin: int = 0) -> list[list[Rect]]:
    """(ring, column) rectangles each primitive can cover in a spinning LiDAR's ray grid.

    ``elevations`` are the rings' elevation angles (radians, descending); column ``j`` has azimuth
    ``azimuth0 + j * azimuth_step``. Azimuth extremes of a convex body that does not surround the
    spin axis are at its vertices; elevation bounds use the nearest and farthest horizontal distance
    of its bounding circle, which is conservative. ``row_margin`` widens each rectangle by that many
    rows on both sides: for rays anywhere inside their grid cell (non-scanning patterns) rather than on
    the ring's elevation.
    """
    n_rings, n_cols = len(elevations), int(round(2 * np.pi / azimuth_step))
    corners = p.corners() @ T_sensor_world[:3, :3].T + T_sensor_world[:3, 3]
    centre = corners.mean(axis=1)
    rho_c = np.hypot(centre[:, 0], centre[:, 1])
    radius = np.hypot(corners[..., 0] - centre[:, None, 0], corners[..., 1] - centre[:, None, 1]).max(axis=1)
    rho_min, rho_max = np.maximum(rho_c - radius, 0.0), rho_c + radius
    z_lo, z_hi = corners[..., 2].min(axis=1), corners[..., 2].max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        el_hi = np.where(z_hi > 0, np.arctan2(z_hi, rho_min), np.arctan2(z_hi, rho_max))
        el_lo = np.where(z_lo < 0, np.arctan2(z_lo, rho_min), np.arctan2(z_lo, rho_max))
    az_c = np.arctan2(centre[:, 1], centre[:, 0])
    az = np.arctan2(corners[..., 1], corners[..., 0])
    rel = (az - az_c[:, None] + np.pi) % (2 * np.pi) - np.pi
    az_lo, az_hi = az_c + rel.min(axis=1), az_c + rel.max(axis=1)
    too_far = rho_min > max_range
    # rings are sorted by descending elevation: ring k is in range if el_lo <= elev[k] <= el_hi
    neg = -elevations
    rects: list[list[Rect]] = []
    for i in range(len(p)):
        if p.kind[i] == PLANE:
            rects.append([(0, n_rings, 0, n_cols)])
            continue
        r0 = max(0, int(np.searchsorted(neg, -el_hi[i] - 1e-9, side="left")) - row_margin)
        r1 = min(n_rings, int(np.searchsorted(neg, -el_lo[i] + 1e-9, side="right")) + row_margin)
        if r0 >= r1 or too_far[i]:
            rects.append([])
            continue
        if rho_min[i] <= 0.0:  # the spin axis passes through the bounding circle
            rects.append([(r0, r1, 0, n_cols)])
            continue
        j0 = int(np.floor((az_lo[i] - azimuth0) / azimuth_step)) - 1
        j1 = int(np.ceil((az_hi[i] - azimuth0) / azimuth_step)) + 2
        rects.append(_wrap_columns(r0, r1, j0, j1, n_cols))
    return rects


def _wrap_columns(r0: int, r1: int, j0: int, j1: int, n: int) -> list[Rect]:
    """Column span ``[j0, j1)`` of a circular grid of ``n`` columns, as at most two rectangles."""
    if j1 - j0 >= n:
        return [(r0, r1, 0, n)]
    a, b = j0 % n, j1 % n
    if a < b:
        return [(r0, r1, a, b)]
    return [(r0, r1, a, n)] + ([(r0, r1, 0, b)] if b > 0 else [])


def any_hit_towards(p: Primitives, origins: np.ndarray, direction: np.ndarray,
                    candidates: np.ndarray | None = None, margin: float = 0.5, band: float = 4.0) -> np.ndarray:
    """Whether rays from ``origins`` ``(N, 3)`` along one ``direction`` (pointing up) hit anything.

    Used for sun shadows: a primitive can only block the points under its shadow footprint (its
    bounding box swept along ``-direction`` down to ``z = 0``). The origins are sorted by y band,
    then x, so each primitive finds its candidates with a few binary searches.
    ``candidates`` restricts the test to some primitives (default: all but planes).
    """
    blocked = np.zeros(len(origins), dtype=bool)
    if len(origins) == 0:
        return blocked
    bands = np.floor(origins[:, 1] / band).astype(np.int64)
    order = np.lexsort((origins[:, 0], bands))
    bands, xs = bands[order], origins[order, 0]
    keep = np.nonzero(p.kind != PLANE)[0] if candidates is None else candidates
    corners = p.corners()[keep]
    foot = corners[..., :2] - (corners[..., 2:3] / direction[2]) * direction[:2]
    both = np.concatenate([corners[..., :2], foot], axis=1)
    lo, hi = both.min(axis=1) - margin, both.max(axis=1) + margin
    band_lo, band_hi = np.floor(lo[:, 1] / band).astype(np.int64), np.floor(hi[:, 1] / band).astype(np.int64)
    for k, i in enumerate(keep):
        b0, b1 = np.searchsorted(bands, [band_lo[k], band_hi[k] + 1])
        if b0 >= b1:
            continue
        spans = []
        for b in range(band_lo[k], band_hi[k] + 1):
            s0, s1 = np.searchsorted(bands[b0:b1], [b, b + 1]) + b0
            a, z = np.searchsorted(xs[s0:s1], [lo[k, 0], hi[k, 0]]) + s0
            if a < z:
                spans.append(order[a:z])
        if not spans:
            continue
        sel = np.concatenate(spans)
        y = origins[sel, 1]
        sel = sel[(y >= lo[k, 1]) & (y <= hi[k, 1]) & ~blocked[sel]]
        if sel.size:
            blocked[sel] |= np.isfinite(hit_distance(p, int(i), origins[sel], direction[None, :]))
    return blocked


def surface_frame(p: Primitives, idx: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hit ``points`` ``(N, 3)`` of primitives ``idx`` ``(N,)`` in their primitive's frame (measured
    from its bounding box's min corner), and the unit outward world normals ``(N, 3)``."""
    local = points.copy()                 # the ground plane: world coordinates, normal +z
    normals = np.zeros_like(points)
    normals[:, 2] = 1.0
    solid = np.flatnonzero(p.kind[idx] != PLANE)
    if solid.size == 0:
        return local, normals
    sid = idx[solid]
    kind = p.kind[sid]
    c, s = np.cos(p.yaw[sid]), np.sin(p.yaw[sid])
    rel = points[solid] - p.center[sid]
    size = p.size[sid]
    q = np.empty_like(rel)
    q[:, 0] = c * rel[:, 0] + s * rel[:, 1]
    q[:, 1] = c * rel[:, 1] - s * rel[:, 0]
    q[:, 2] = rel[:, 2]
    n_local = np.zeros_like(q)
    box = np.flatnonzero(kind == BOX)
    if box.size:
        r = q[box] / size[box]
        axis = np.abs(r).argmax(axis=1)
        n_local[box, axis] = np.sign(r[np.arange(box.size), axis])
    ell = np.flatnonzero(kind == ELLIPSOID)
    if ell.size:
        n = q[ell] / size[ell] ** 2
        n_local[ell] = n / np.linalg.norm(n, axis=1, keepdims=True)
    cyl = np.flatnonzero(kind == CYLINDER)
    if cyl.size:
        n = q[cyl].copy()
        n[:, 2] = 0.0
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        n[q[cyl, 2] >= size[cyl, 2] - 1e-6] = (0.0, 0.0, 1.0)
        n_local[cyl] = n
    normals[solid, 0] = c * n_local[:, 0] - s * n_local[:, 1]
    normals[solid, 1] = s * n_local[:, 0] + c * n_local[:, 1]
    normals[solid, 2] = n_local[:, 2]
    local[solid] = q + size
    return local, normals
