"""Procedural driving scenes: a straight street with lanes, kerbs, sidewalks, facades, cars, poles, trees.

The street runs along world +x, the ground is ``z = 0``, y points left. Right-hand traffic: the ego
car drives in one of the lanes with ``y < 0``, oncoming traffic uses ``y > 0``. Everything is built
from the analytic primitives of :mod:`lumde_depth.data.synth.raycast`; moving cars are kept apart
with an x velocity each, so :meth:`Scene.at` gives the snapshot of any instant.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lumde_depth.data.synth.raycast import BOX, CYLINDER, ELLIPSOID, PLANE, Primitives

# Materials, also the ids of Frame.material (the shading and LiDAR reflectivity of each are in texture.py).
SKY, GROUND, SIDEWALK, BUILDING, CAR_BODY, CAR_CABIN, WHEEL, POLE, TRUNK, FOLIAGE, PERSON = range(-1, 10)

_FACADE_COLOURS = np.array([[0.72, 0.66, 0.55], [0.55, 0.30, 0.22], [0.62, 0.62, 0.60], [0.85, 0.83, 0.78],
                            [0.70, 0.55, 0.32], [0.45, 0.47, 0.50], [0.78, 0.72, 0.64], [0.60, 0.42, 0.35]])
_CAR_COLOURS = np.array([[0.85, 0.85, 0.85], [0.55, 0.56, 0.58], [0.06, 0.06, 0.07], [0.55, 0.08, 0.07],
                         [0.10, 0.18, 0.45], [0.25, 0.26, 0.28], [0.80, 0.78, 0.70], [0.15, 0.30, 0.20]])


@dataclass(frozen=True)
class Road:
    """Cross-section of the street (metres)."""

    lane_width: float
    lanes: int               # per direction
    parking: float           # parking strip width on each side, outside the driving lanes
    sidewalk: float          # sidewalk width
    kerb: float              # kerb height
    dash: float              # dashed line: paint length
    gap: float               # dashed line: gap length

    @property
    def half_width(self) -> float:
        """Distance from the centre line to the kerb."""
        return self.lanes * self.lane_width + self.parking

    @property
    def building_line(self) -> float:
        return self.half_width + self.sidewalk


class _Builder:
    """Collects primitives as rows, then packs them into :class:`Primitives`."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, kind: int, center, size, yaw: float, material: int, color) -> None:
        self.rows.append((kind, center, size, yaw, material, color))

    def build(self) -> Primitives:
        if not self.rows:
            empty = np.zeros((0, 3))
            return Primitives(np.zeros(0, int), empty, empty, np.zeros(0), np.zeros(0, int), empty)
        kind, center, size, yaw, material, color = zip(*self.rows)
        return Primitives(np.array(kind, dtype=np.int64), np.array(center, dtype=np.float64),
                          np.array(size, dtype=np.float64), np.array(yaw, dtype=np.float64),
                          np.array(material, dtype=np.int64), np.array(color, dtype=np.float64))


def add_car(b: _Builder, rng: np.random.Generator, x: float, y: float, yaw: float) -> None:
    """A car as a body box, a cabin box and four wheel ellipsoids (disc-shaped, seen round from the side)."""
    length, width = rng.uniform(3.9, 4.8), rng.uniform(1.65, 1.85)
    body_h, cabin_h = rng.uniform(0.55, 0.75), rng.uniform(0.40, 0.55)
    clearance, wheel_r = 0.28, rng.uniform(0.30, 0.35)
    colour = _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))] * rng.uniform(0.9, 1.05)
    c, s = np.cos(yaw), np.sin(yaw)

    def at(lx: float, ly: float) -> tuple[float, float]:
        return x + c * lx - s * ly, y + s * lx + c * ly

    b.add(BOX, (x, y, clearance + body_h / 2), (length / 2, width / 2, body_h / 2), yaw, CAR_BODY, colour)
    cabin_len = length * rng.uniform(0.48, 0.58)
    cx, cy = at(-length * 0.05, 0.0)
    b.add(BOX, (cx, cy, clearance + body_h + cabin_h / 2), (cabin_len / 2, width / 2 - 0.08, cabin_h / 2), yaw,
          CAR_CABIN, colour)
    for lx in (length / 2 - 0.85, -length / 2 + 0.8):
        for side in (-1.0, 1.0):
            wx, wy = at(lx, side * (width / 2 - 0.12))
            b.add(ELLIPSOID, (wx, wy, wheel_r), (wheel_r, 0.11, wheel_r), yaw, WHEEL, (0.05, 0.05, 0.05))


@dataclass
class Scene:
    """A street with static primitives (ground first), moving cars and the sun."""

    road: Road
    static: Primitives
    moving: Primitives
    velocity: np.ndarray   # (len(moving),) x velocity of each moving primitive (m/s)
    sun: np.ndarray        # unit vector towards the sun (world frame)
    ego_lane_y: float      # centre of the ego car's lane

    def at(self, time: float, x_lo: float = -np.inf, x_hi: float = np.inf) -> Primitives:
        """Every primitive at ``time`` (s), keeping solids whose box overlaps ``x_lo <= x <= x_hi``
        (the ground plane is always index 0)."""
        center = self.moving.center.copy()
        center[:, 0] += self.velocity * time
        both = Primitives.concat([self.static, replace(self.moving, center=center)])
        extent = np.hypot(both.size[:, 0], both.size[:, 1])
        keep = (both.kind == PLANE) | ((both.center[:, 0] + extent >= x_lo) & (both.center[:, 0] - extent <= x_hi))
        return both.select(keep)


def build_scene(rng: np.random.Generator, x_start: float, x_end: float, duration: float, ego_speed: float,
                parked_rate: float = 0.55, moving_cars: int = 6, building_gap: float = 0.15,
                pedestrians: float = 0.0) -> Scene:
    """A random street covering ``x_start..x_end`` and the traffic of a ``duration``-second drive
    (the ego car starts at x = 0 in one of the right-hand lanes and drives at about ``ego_speed``).
    ``building_gap``: share of the building line left open (side streets, open land: long views);
    ``pedestrians``: people standing on each sidewalk per 100 m."""
    lanes = int(rng.integers(1, 3))
    road = Road(lane_width=float(rng.uniform(3.1, 3.6)), lanes=lanes, parking=float(rng.uniform(2.0, 2.6)),
                sidewalk=float(rng.uniform(2.0, 4.0)), kerb=float(rng.uniform(0.10, 0.16)),
                dash=float(rng.uniform(2.5, 4.5)), gap=float(rng.uniform(5.0, 9.0)))
    ego_lane_y = -road.lane_width * (int(rng.integers(lanes)) + 0.5)
    b = _Builder()
    b.add(PLANE, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, GROUND, (0.3, 0.3, 0.3))
    for side in (-1.0, 1.0):
        _sidewalks(b, road, side, x_start, x_end)
        _buildings(b, rng, road, side, x_start, x_end, building_gap)
        _street_furniture(b, rng, road, side, x_start, x_end)
        _parked_cars(b, rng, road, side, x_start, x_end, parked_rate)
        if pedestrians > 0:
            _pedestrians(b, rng, road, side, x_start, x_end, pedestrians)
    static = b.build()

    m = _Builder()
    velocity: list[float] = []
    for oncoming in (False, True):
        for lane in range(lanes):
            y = (1.0 if oncoming else -1.0) * road.lane_width * (lane + 0.5)
            count = int(rng.poisson(moving_cars / (2 * lanes)))
            if oncoming:  # spread so that they pass by during the drive
                v = -rng.uniform(7.0, 14.0)
                x, spacing = rng.uniform(20.0, 60.0), max(10.0, (ego_speed - v) * duration / max(count, 1))
            elif abs(y - ego_lane_y) < 0.5:  # ahead and faster than the ego car ever drives: never caught up
                v, x, spacing = ego_speed + rng.uniform(1.5, 4.0), rng.uniform(12.0, 40.0), 25.0
            else:
                v, x, spacing = ego_speed + rng.uniform(-2.5, 2.5), rng.uniform(-25.0, 40.0), 25.0
            for _ in range(count):
                before = len(m.rows)
                add_car(m, rng, float(x), float(y), np.pi if oncoming else 0.0)
                velocity += [float(v)] * (len(m.rows) - before)
                x += spacing * rng.uniform(0.5, 1.5) + 6.0
    elevation, azimuth = rng.uniform(np.deg2rad(25), np.deg2rad(60)), rng.uniform(-np.pi, np.pi)
    sun = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return Scene(road=road, static=static, moving=m.build(), velocity=np.array(velocity), sun=sun,
                 ego_lane_y=ego_lane_y)


def _sidewalks(b: _Builder, road: Road, side: float, x_start: float, x_end: float, segment: float = 20.0) -> None:
    """Sidewalk slabs (their road-facing side is the kerb), cut into segments so culling stays tight."""
    y = side * (road.half_width + road.sidewalk / 2)
    edges = np.arange(x_start, x_end + segment, segment)
    for x0, x1 in zip(edges[:-1], edges[1:]):
        b.add(BOX, ((x0 + x1) / 2, y, road.kerb / 2), ((x1 - x0) / 2, road.sidewalk / 2, road.kerb / 2), 0.0,
              SIDEWALK, (0.55, 0.54, 0.52))


def _buildings(b: _Builder, rng: np.random.Generator, road: Road, side: float, x_start: float, x_end: float,
               gap: float = 0.15) -> None:
    x = x_start
    while x < x_end:
        if rng.random() < gap:  # a side street or a gap between houses
            x += rng.uniform(6.0, 16.0)
            continue
        length, depth, height = rng.uniform(8.0, 28.0), rng.uniform(8.0, 14.0), rng.uniform(5.0, 22.0)
        setback = rng.uniform(0.0, 2.5) if rng.random() < 0.4 else 0.0
        y = side * (road.building_line + setback + depth / 2)
        colour = _FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))] * rng.uniform(0.85, 1.1)
        b.add(BOX, (x + length / 2, y, height / 2), (length / 2, depth / 2, height / 2), 0.0, BUILDING,
              np.clip(colour, 0, 1))
        x += length + (rng.uniform(0.5, 4.0) if rng.random() < 0.3 else 0.0)


def _street_furniture(b: _Builder, rng: np.random.Generator, road: Road, side: float,
                      x_start: float, x_end: float) -> None:
    """Lamp poles near the kerb and trees along the sidewalk, standing on the sidewalk (z = kerb)."""
    x = x_start + rng.uniform(0.0, 20.0)
    while x < x_end:
        height, radius = rng.uniform(6.0, 9.0), rng.uniform(0.07, 0.12)
        y = side * (road.half_width + 0.5)
        b.add(CYLINDER, (x, y, road.kerb + height / 2), (radius, radius, height / 2), 0.0, POLE, (0.45, 0.46, 0.47))
        b.add(BOX, (x, y - side * 0.8, road.kerb + height), (0.25, 0.8, 0.08), 0.0, POLE, (0.35, 0.36, 0.37))
        x += rng.uniform(22.0, 40.0)
    x = x_start + rng.uniform(0.0, 12.0)
    while x < x_end:
        if rng.random() < 0.6:
            trunk_h, crown = rng.uniform(1.8, 3.0), rng.uniform(1.3, 2.6)
            y = side * (road.half_width + road.sidewalk - 0.9)
            b.add(CYLINDER, (x, y, road.kerb + trunk_h / 2), (0.14, 0.14, trunk_h / 2), 0.0, TRUNK,
                  (0.30, 0.22, 0.15))
            # the crown's lowest point stays above the tallest car (1.6 m): no crown cuts a parked car
            b.add(ELLIPSOID, (x, y, road.kerb + trunk_h + crown * 1.05), (crown, crown, crown * 1.15), 0.0, FOLIAGE,
                  np.array([0.18, 0.32, 0.10]) * rng.uniform(0.8, 1.2))
        x += rng.uniform(8.0, 18.0)


def _parked_cars(b: _Builder, rng: np.random.Generator, road: Road, side: float, x_start: float, x_end: float,
                 rate: float) -> None:
    y = side * (road.half_width - road.parking / 2)
    for x in np.arange(x_start + rng.uniform(0, 6), x_end, 6.5):
        if rng.random() < rate:
            yaw = (0.0 if rng.random() < 0.7 else np.pi) + rng.normal(0.0, 0.03)
            add_car(b, rng, float(x + rng.uniform(-0.6, 0.6)), float(y + rng.uniform(-0.2, 0.2)), float(yaw))


_CLOTHES = np.array([[0.10, 0.10, 0.12], [0.45, 0.12, 0.10], [0.15, 0.22, 0.45], [0.70, 0.68, 0.62],
                     [0.30, 0.35, 0.20], [0.55, 0.45, 0.30]])


def _pedestrians(b: _Builder, rng: np.random.Generator, road: Road, side: float, x_start: float, x_end: float,
                 per_100m: float) -> None:
    """People standing on the sidewalk: a body cylinder and a head ellipsoid each (thin, tall objects
    with depth edges on both sides, at the kerb's height)."""
    count = int(rng.poisson(per_100m * (x_end - x_start) / 100.0))
    xs = rng.uniform(x_start, x_end, count)
    ys = side * (road.half_width + rng.uniform(0.6, max(0.7, road.sidewalk - 0.4), count))
    for x, y in zip(xs, ys):
        height, radius = rng.uniform(1.45, 1.75), rng.uniform(0.17, 0.25)
        colour = _CLOTHES[rng.integers(len(_CLOTHES))]
        body = height - 0.25
        b.add(CYLINDER, (x, y, road.kerb + body / 2), (radius, radius, body / 2), 0.0, PERSON, colour)
        b.add(ELLIPSOID, (x, y, road.kerb + body + 0.12), (0.1, 0.1, 0.13), 0.0, PERSON, (0.62, 0.47, 0.38))
