"""Other rigs in the synthetic generator: LiDAR patterns, ranges, image sizes, scan artefacts, camera
realism and the random-rig mode; every figure is measured on rendered frames."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lumde_depth.config import ConfigError, load
from lumde_depth.data import build_dataset
from lumde_depth.data.synth import Generator, SynthConfig, generate
from lumde_depth.data.synth.camera import CameraConfig
from lumde_depth.data.synth.frame import develop
from lumde_depth.data.synth.lidar import LidarConfig, mixed_returns, motion_distort, ray_grid, sweep
from lumde_depth.data.synth.raycast import cast_grid, lidar_rects
from lumde_depth.data.synth.rigs import SPINNING
from lumde_depth.data.synth.scene import build_scene
from lumde_depth.data.synth.sequence import EgoMotion


def _render(*overrides: str, sequence: int = 0, index: int = 0):
    gen = Generator(load(SynthConfig, None, ["frames=1", "sequences=1", *overrides]), Path("unused"))
    return gen, gen.render(sequence, index)


def _elevations(points: np.ndarray) -> np.ndarray:
    return np.degrees(np.arcsin(points[:, 2] / np.linalg.norm(points[:, :3], axis=1)))


@pytest.mark.parametrize("beams", [16, 32, 128])
def test_spinning_lidar_has_its_rings(beams: int) -> None:
    rings, up, down = next(s for s in SPINNING if s[0] == beams)
    _, f = _render("camera_scale=0.25", "lidar.pattern=uniform", f"lidar.beams={beams}", f"lidar.fov_up_deg={up}",
                   f"lidar.fov_down_deg={down}", "lidar.range_noise=0", "seed=4")
    table = np.linspace(up, down, beams)
    elevation = _elevations(f.points)
    nearest = np.abs(elevation[:, None] - table[None, :]).min(axis=1)
    assert nearest.max() < 1e-3                                     # every point on one of the rings
    seen = np.unique(np.abs(elevation[:, None] - table[None, :]).argmin(axis=1))
    assert len(seen) >= 0.8 * beams                                 # (the top rings may see only sky)
    assert up - 0.01 <= elevation.max() and elevation.min() <= down + 0.01


def test_non_scanning_lidar_density_is_ddad_like() -> None:
    """A DDAD-like sensor (80k directions a sweep, 40-70k returns, +10..-20 deg) on a 1936x1216 camera
    with a 48 deg field of view: 0.2-0.5 % of the pixels, points off any ring, new directions every sweep."""
    options = ["camera.width=1936", "camera.height=1216", "camera.hfov_deg=48", "camera_scale=0.25",
               "lidar.pattern=random", "lidar.points=80000", "lidar.beams=150", "lidar.fov_up_deg=10",
               "lidar.fov_down_deg=-20", "lidar.azimuth_step_deg=0.2", "lidar.max_range=250", "seed=3"]
    gen, f = _render(*options)
    assert f.rgb.shape == (304, 484, 3)
    cam = f.points[:, :3] @ gen.calib.T_cam_lidar[:3, :3].T + gen.calib.T_cam_lidar[:3, 3]
    uv = cam[cam[:, 2] > 0.1] @ gen.calib.K.T
    u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
    in_view = ((u > -0.5) & (u < 483.5) & (v > -0.5) & (v < 303.5)).sum()
    density = in_view / (1936 * 1216)             # each point is one pixel of the full-resolution image
    assert 0.002 <= density <= 0.005, density
    assert (f.sparse > 0).sum() > 0.7 * in_view   # (a few points share a pixel at this reduced size)
    assert 40_000 < len(f.points) < 70_000
    assert len(np.unique(np.round(_elevations(f.points), 2))) > 2000    # not a ring pattern
    second = gen.render(0, 0)                                            # same frame: same draw
    np.testing.assert_array_equal(second.points, f.points)
    _, other = _render(*options, "frames=2", index=1)
    assert not np.isin(np.round(other.points[:100, 0], 4), np.round(f.points[:, 0], 4)).all()


def test_rosette_stays_in_its_cone() -> None:
    _, f = _render("camera_scale=0.25", "lidar.pattern=rosette", "lidar.points=30000", "lidar.beams=130",
                   "lidar.fov_up_deg=15", "lidar.fov_down_deg=-25", "lidar.azimuth_step_deg=0.3", "seed=2")
    x, y, z = f.points[:, 0], f.points[:, 1], f.points[:, 2]
    azimuth, elevation = np.degrees(np.arctan2(y, x)), _elevations(f.points)
    off_axis = np.hypot(azimuth, elevation + 5.0)
    assert len(f.points) > 5000 and off_axis.max() <= 20.0 + 0.3 and (x > 0).all()
    assert (f.sparse > 0).any()


def test_long_range_lidar_returns_beyond_200m() -> None:
    _, f = _render("camera_scale=0.25", "lidar.max_range=250", "building_gap=0.9", "seed=1")
    ranges = np.linalg.norm(f.points[:, :3], axis=1)
    assert ranges.max() <= 250.0 + 0.2 and (ranges > 150.0).sum() > 50
    assert f.sparse.max() > 150.0


def test_image_size_focal_length_and_mounting() -> None:
    gen, f = _render("camera.width=1280", "camera.height=720", "camera.hfov_deg=90", "camera_scale=0.5",
                     "camera.offset=[1.0, 0.2, -0.5]", "camera.pitch_deg=5", "lidar.height=2.0")
    assert f.rgb.shape == (360, 640, 3) and f.depth.shape == (360, 640)
    K = gen.calib.K
    assert K[0, 0] == pytest.approx(640 / 2 / np.tan(np.radians(45)), rel=1e-4)
    centre = -gen.calib.T_cam_lidar[:3, :3].T @ gen.calib.T_cam_lidar[:3, 3]
    np.testing.assert_allclose(centre, [1.0, 0.2, -0.5], atol=1e-4)
    assert gen.drive(0).ego.pose(0.0)[2, 3] == pytest.approx(2.0, abs=0.02)
    # pitched down 5 deg: the road in the bottom row is nearer than with a level camera
    _, level = _render("camera.width=1280", "camera.height=720", "camera.hfov_deg=90", "camera_scale=0.5",
                       "camera.offset=[1.0, 0.2, -0.5]", "lidar.height=2.0")
    assert np.median(f.depth[-1][f.depth[-1] > 0]) < np.median(level.depth[-1][level.depth[-1] > 0])


def test_mixed_returns_only_at_depth_edges() -> None:
    t = np.full((4, 10), 10.0)
    t[:, 5:] = 30.0
    t[0, 2] = np.inf
    rng = np.random.default_rng(0)
    mixed = mixed_returns(t, 1.0, rng)
    changed = mixed != t
    assert changed[:, 4].all() and changed.sum() == 4            # only the beam left of each edge (not at the miss)
    assert ((mixed[:, 4] > 10.0) & (mixed[:, 4] < 30.0)).all()
    np.testing.assert_array_equal(mixed_returns(t, 0.0, rng), t)


def test_motion_distortion_moves_points_by_the_sweep_motion() -> None:
    xyz = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    out = motion_distort(xyz, np.array([1.0, -1.0]), np.zeros(3), np.array([0.5, 0.0, 0.0]))
    np.testing.assert_allclose(out, [[9.5, 0.0, 0.0], [0.5, 10.0, 0.0]])
    yaw = motion_distort(np.array([[10.0, 0.0, 0.0]]), np.array([1.0]), np.array([0.0, 0.0, np.pi / 2]), np.zeros(3))
    np.testing.assert_allclose(yaw, [[0.0, -10.0, 0.0]], atol=1e-9)
    fast = ["camera_scale=0.25", "speed_min=20", "speed_max=20", "seed=6"]
    _, still = _render(*fast)
    _, moving = _render(*fast, "lidar.motion_distortion=true")
    assert still.points.shape == moving.points.shape
    shift = np.linalg.norm(still.points[:, :3] - moving.points[:, :3], axis=1)
    assert 0.5 < shift.max() < 1.5 and np.median(shift) > 0.05    # 20 m/s over +-0.05 s: up to 1 m


def test_scattered_rays_lose_no_hit_with_the_row_margin() -> None:
    rng = np.random.default_rng(1)
    scene = build_scene(rng, -130.0, 250.0, 2.0, 8.0)
    pose = EgoMotion.random(rng, scene.ego_lane_y, 8.0).pose(0.5)
    prims = scene.at(0.5, pose[0, 3] - 120, pose[0, 3] + 300)
    config = LidarConfig(pattern="random", beams=40, fov_up_deg=10, fov_down_deg=-25, points=20000,
                         azimuth_step_deg=1.0)
    grid = ray_grid(config)
    rays = sweep(config, grid, rng)
    dirs = rays.dirs @ pose[:3, :3].T
    rects = lidar_rects(prims, np.linalg.inv(pose), grid[1], grid[2], np.deg2rad(1.0), config.max_range, row_margin=1)
    full = [[(0, dirs.shape[0], 0, dirs.shape[1])]] * len(prims)
    t_cull, _ = cast_grid(prims, pose[:3, 3], dirs, rects)
    t_full, _ = cast_grid(prims, pose[:3, 3], dirs, full)
    near = t_full <= config.max_range
    np.testing.assert_array_equal(t_cull[near], t_full[near])
    assert rays.active.sum() > 5000


def test_camera_realism_noise_blur_vignetting_jpeg() -> None:
    yy, xx = np.mgrid[0:120, 0:160]
    radiance = np.repeat((0.2 + 0.3 * ((xx // 4 + yy // 4) % 2))[..., None], 3, axis=2).astype(np.float32)

    def picture(**kwargs) -> np.ndarray:
        return develop(radiance, CameraConfig(exposure=[1.0, 1.0], **kwargs), np.random.default_rng(0)).astype(float)

    plain, blurred = picture(), picture(blur=2.0)
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.5 * np.abs(np.diff(plain, axis=1)).mean()
    vignetted = picture(vignetting=0.5)
    assert vignetted[:10, :10].mean() < 0.8 * plain[:10, :10].mean()
    assert vignetted[55:65, 75:85].mean() == pytest.approx(plain[55:65, 75:85].mean(), rel=0.03)
    noisy = picture(read_noise=8.0, shot_noise=10.0)
    assert (noisy - plain).std() > 3 * (picture(read_noise=0.0) - plain).std()
    jpeg = picture(jpeg_quality=20)
    assert 1.0 < np.abs(jpeg - plain).mean() < 20.0


def test_random_rig_mode_varies_the_rig_per_drive_and_reads_back(tmp_path: Path) -> None:
    config = SynthConfig(frames=4, sequences=4, val_sequences=0, seed=11, rig="random", camera_scale=0.25, workers=1)
    generate(config, tmp_path / "a", progress=False)
    gen = Generator(config, tmp_path / "a")
    sizes, patterns = set(), set()
    ds = build_dataset("kitti_dc", tmp_path / "a", "train", size=None, cameras=("image_02",))
    assert len(ds) == 4
    for sequence in range(4):
        drive = gen.drive(sequence)
        sizes.add((drive.sensors.calib.width, drive.sensors.calib.height))
        patterns.add(drive.sensors.renderer.lidar.pattern)
        sample = ds[sequence]
        np.testing.assert_allclose(sample["K"].numpy(), drive.sensors.calib.K, rtol=1e-5)
        assert sample["rgb"].shape[-2:] == (drive.sensors.calib.height, drive.sensors.calib.width)
    assert len(sizes) > 1 and len({gen.drive(s).date for s in range(4)}) == 4
    generate(SynthConfig(**{**config.__dict__, "workers": 2}), tmp_path / "b", progress=False)
    digest = {p.relative_to(tmp_path / "a"): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()}
    assert digest == {p.relative_to(tmp_path / "b"): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted((tmp_path / "b").rglob("*")) if p.is_file()}


def test_bad_rig_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fov_up_deg"):
        Generator(load(SynthConfig, None, ["lidar.pattern=uniform", "lidar.fov_up_deg=-30"]), tmp_path)
    with pytest.raises(ConfigError, match="lidar.pattern"):
        load(SynthConfig, None, ["lidar.pattern=spiral"])
    with pytest.raises(ConfigError, match="exposure"):
        Generator(load(SynthConfig, None, ["camera.exposure=[1.2, 0.8]"]), tmp_path)
