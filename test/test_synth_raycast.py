"""Analytic ray casting: exact hits per primitive, and culling that never loses a hit."""
from __future__ import annotations

import numpy as np

from lumde_depth.data.synth.camera import camera_rays, kitti_rig
from lumde_depth.data.synth.lidar import LidarConfig, ray_grid
from lumde_depth.data.synth.raycast import (BOX, CYLINDER, ELLIPSOID, PLANE, Primitives, any_hit_towards,
                                            camera_rects, cast_grid, hit_distance, lidar_rects, surface_frame)
from lumde_depth.data.synth.scene import build_scene
from lumde_depth.data.synth.sequence import EgoMotion


def _prims(rows: list[tuple]) -> Primitives:
    kind, center, size, yaw = zip(*rows)
    n = len(rows)
    return Primitives(np.array(kind), np.array(center, float), np.array(size, float), np.array(yaw, float),
                      np.zeros(n, int), np.full((n, 3), 0.5))


def test_primitive_hits_are_exact() -> None:
    p = _prims([(PLANE, (0, 0, 0), (0, 0, 0), 0.0),
                (BOX, (10, 0, 1), (1, 2, 1), np.pi / 4),
                (ELLIPSOID, (10, 0, 1), (1, 2, 3), 0.0),
                (CYLINDER, (10, 0, 2), (0.5, 0.5, 2), 0.0)])
    o = np.array([0.0, 0.0, 1.0])
    forward = np.array([[1.0, 0.0, 0.0]])
    assert hit_distance(p, 0, o, np.array([[1.0, 0.0, -0.5]]))[0] == 2.0          # z = 1 - 0.5 t
    assert np.isinf(hit_distance(p, 0, o, forward)[0])
    # a box rotated by 45 deg: its corner (half diagonal along the ray) faces the origin
    np.testing.assert_allclose(hit_distance(p, 1, o, forward), 10 - np.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose(hit_distance(p, 2, o, forward), 9.0)
    np.testing.assert_allclose(hit_distance(p, 3, o, forward), 9.5)
    down = np.array([[0.0, 0.0, -1.0]])                                          # from above: the cap
    np.testing.assert_allclose(hit_distance(p, 3, np.array([10.2, 0.0, 9.0]), down), 5.0)
    assert np.isinf(hit_distance(p, 3, np.array([10.6, 0.0, 9.0]), down)[0])
    # normals: box face, ellipsoid pole, cylinder side
    pts = np.array([[10 - np.sqrt(2), 0, 1], [9.0, 0, 1], [10, 0, 4.0], [9.5, 0, 1]])
    local, normals = surface_frame(p, np.array([1, 2, 2, 3]), pts)
    np.testing.assert_allclose(np.abs(normals[0]), [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-9)
    np.testing.assert_allclose(normals[1:], [[-1, 0, 0], [0, 0, 1], [-1, 0, 0]], atol=1e-9)
    np.testing.assert_allclose(local[1], [0, 2, 3])


def _random_scene():
    rng = np.random.default_rng(4)
    scene = build_scene(rng, -130.0, 300.0, 2.0, 9.0, moving_cars=8)
    pose = EgoMotion.random(rng, scene.ego_lane_y, 9.0).pose(0.3)
    return scene, scene.at(0.3, -130.0, 300.0), pose


def test_camera_culling_loses_no_hit() -> None:
    scene, prims, pose = _random_scene()
    calib = kitti_rig(0.25)
    T_world_cam = pose @ np.linalg.inv(calib.T_cam_lidar)
    dirs = camera_rays(calib) @ T_world_cam[:3, :3].T
    rects = camera_rects(prims, np.linalg.inv(T_world_cam), calib.K, calib.width, calib.height)
    full = [[(0, calib.height, 0, calib.width)]] * len(prims)
    t_cull, i_cull = cast_grid(prims, T_world_cam[:3, 3], dirs, rects)
    t_full, i_full = cast_grid(prims, T_world_cam[:3, 3], dirs, full)
    np.testing.assert_array_equal(t_cull, t_full)
    np.testing.assert_array_equal(i_cull, i_full)
    assert sum(len(r) for r in rects) < len(prims)      # culling removes work
    assert len(np.unique(i_full)) > 20


def test_lidar_culling_loses_no_hit() -> None:
    scene, prims, pose = _random_scene()
    config = LidarConfig(azimuth_step_deg=1.0)
    local, elevations, az0 = ray_grid(config)
    dirs = local @ pose[:3, :3].T
    rects = lidar_rects(prims, np.linalg.inv(pose), elevations, az0, np.deg2rad(1.0), config.max_range)
    full = [[(0, dirs.shape[0], 0, dirs.shape[1])]] * len(prims)
    t_cull, i_cull = cast_grid(prims, pose[:3, 3], dirs, rects)
    t_full, i_full = cast_grid(prims, pose[:3, 3], dirs, full)
    in_range = t_full <= config.max_range
    np.testing.assert_array_equal(t_cull[in_range], t_full[in_range])
    np.testing.assert_array_equal(i_cull[in_range], i_full[in_range])
    assert (i_full[in_range] > 0).sum() > 1000           # hits on solids, not only the ground


def test_shadow_rays_match_brute_force() -> None:
    _, prims, pose = _random_scene()
    rng = np.random.default_rng(0)
    origins = np.column_stack([rng.uniform(-20, 60, 3000), rng.uniform(-15, 15, 3000), np.zeros(3000)])
    sun = np.array([0.5, 0.3, 0.8])
    sun /= np.linalg.norm(sun)
    blocked = any_hit_towards(prims, origins, sun)
    brute = np.zeros(len(origins), bool)
    for i in np.flatnonzero(prims.kind != PLANE):
        brute |= np.isfinite(hit_distance(prims, int(i), origins, sun[None, :]))
    np.testing.assert_array_equal(blocked, brute)
    assert 0.05 < blocked.mean() < 0.95
