"""One synthetic frame: camera image, exact dense depth, LiDAR scan and its projection.

Both sensors cast the same scene snapshot. The camera's depth is the ray parameter of rays whose
optical-axis component is 1, i.e. exactly KITTI's z-depth; the LiDAR's scan is cast from the
Velodyne's own origin, so its projection shows the parallax / see-through artifacts of real KITTI
sparse depth. The sparse depth map is :func:`lumde_depth.geometry.project_points` of the very
float32 points written to the ``.bin`` file, with the calibration written next to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import io

import numpy as np
from PIL import Image
from scipy.ndimage import correlate1d, gaussian_filter

from lumde_depth.data.synth.camera import CameraConfig, camera_rays
from lumde_depth.data.synth.lidar import LidarConfig, lidar_returns, mixed_returns, motion_distort, ray_grid, sweep
from lumde_depth.data.synth.raycast import (PLANE, Primitives, any_hit_towards, camera_rects, cast_grid, lidar_rects,
                                            surface_frame)
from lumde_depth.data.synth.scene import SIDEWALK, SKY, Scene
from lumde_depth.data.synth.texture import HORIZON, sky, surface
from lumde_depth.geometry.calibration import Calibration
from lumde_depth.geometry.projection import project_points


@dataclass
class Frame:
    """Everything generated for one instant (arrays in the camera image grid unless stated)."""

    rgb: np.ndarray            # (H, W, 3) uint8
    depth: np.ndarray          # (H, W) float32 exact z-depth (m), 0 = sky or beyond the dense range
    material: np.ndarray       # (H, W) int8 material id (scene.SKY = -1)
    points: np.ndarray         # (M, 4) float32 x, y, z, intensity in the Velodyne frame (the .bin)
    sparse: np.ndarray         # (H, W) float32 projected LiDAR depth (m), 0 = none
    groundtruth: np.ndarray    # (H, W) float32 KITTI-like ground truth: depth <= gt range, not sky (see GT_COVERAGES)
    T_world_vehicle: np.ndarray  # 4x4 pose of the Velodyne frame
    time: float


GT_COVERAGES = ("dense", "lidar")
"""Where the ground truth has depth: ``dense`` every pixel up to the gt range; ``lidar`` only where an
accumulated, denser scan of the LiDAR would reach (see :meth:`Renderer.lidar_coverage`)."""


class Renderer:
    """Renders frames of scenes for one sensor rig (camera calibration + LiDAR model).

    ``gt_coverage`` / ``gt_density`` shape the ground truth: ``lidar`` keeps it, as KITTI's
    (11 accumulated scans, about 30 % of the benchmark crop, nothing above the top ring), only inside
    the LiDAR's vertical field of view and range, each such pixel kept with probability ``gt_density``.
    """

    def __init__(self, calib: Calibration, lidar: LidarConfig, gt_max_depth: float = 80.0,
                 dense_max_depth: float = 250.0, view_range: float = 300.0, gt_coverage: str = "dense",
                 gt_density: float = 1.0, camera: CameraConfig | None = None) -> None:
        if calib.T_cam_lidar is None or calib.width is None or calib.height is None:
            raise ValueError("the renderer needs a calibration with T_cam_lidar, width and height")
        if gt_coverage not in GT_COVERAGES:
            raise ValueError(f"gt_coverage {gt_coverage!r} unknown; use one of {', '.join(GT_COVERAGES)}")
        self.calib, self.lidar, self.camera = calib, lidar, camera or CameraConfig()
        self.gt_max_depth, self.dense_max_depth, self.view_range = gt_max_depth, dense_max_depth, view_range
        self.gt_coverage, self.gt_density = gt_coverage, gt_density
        self.rays = camera_rays(calib)
        self.T_vehicle_cam = np.linalg.inv(calib.T_cam_lidar)
        self.grid = ray_grid(lidar)
        self.lidar_dirs, self.elevations, self.azimuth0 = self.grid
        self.azimuth_step = 2 * np.pi / self.lidar_dirs.shape[1]

    def render(self, scene: Scene, time: float, T_world_vehicle: np.ndarray, rng: np.random.Generator,
               motion: tuple[np.ndarray, np.ndarray] | None = None) -> Frame:
        """The frame at ``time``; ``motion`` (rotation vector, translation) is the LiDAR's motion over
        half a sweep, used when ``lidar.motion_distortion`` is on."""
        x = T_world_vehicle[0, 3]
        prims = scene.at(time, x - self.lidar.max_range, x + self.view_range)
        rgb, depth, material = self._camera(scene, prims, T_world_vehicle, rng)
        points = self._lidar(scene, prims, T_world_vehicle, rng, motion)
        c = self.calib
        sparse = project_points(points, c.T_cam_lidar, c.P, c.width, c.height)
        groundtruth = np.where(depth <= self.gt_max_depth, depth, 0.0).astype(np.float32)
        if self.gt_coverage == "lidar":  # drawn last: the dense default's random stream is unchanged
            groundtruth *= self.lidar_coverage(depth) & (rng.random(depth.shape) < self.gt_density)
        return Frame(rgb=rgb, depth=depth, material=material, points=points, sparse=sparse,
                     groundtruth=groundtruth, T_world_vehicle=T_world_vehicle, time=time)

    def lidar_coverage(self, depth: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool: pixels whose surface point lies inside the LiDAR's vertical field of view
        (between the lowest and the highest ring, seen from the LiDAR) and range, i.e. those an
        accumulated scan can reach; sky and the upper image part are outside."""
        points = self.rays * depth[..., None]  # camera frame, z = depth
        velo = points @ self.T_vehicle_cam[:3, :3].T + self.T_vehicle_cam[:3, 3]
        ranges = np.linalg.norm(velo, axis=-1)
        elevation = np.arcsin(np.divide(velo[..., 2], ranges, out=np.zeros_like(ranges), where=ranges > 0))
        return ((depth > 0) & (ranges >= self.lidar.min_range) & (ranges <= self.lidar.max_range)
                & (elevation >= self.elevations.min()) & (elevation <= self.elevations.max()))

    def _camera(self, scene: Scene, prims: Primitives, T_world_vehicle: np.ndarray, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.calib
        T_world_cam = T_world_vehicle @ self.T_vehicle_cam
        origin = T_world_cam[:3, 3]
        dirs = self.rays @ T_world_cam[:3, :3].T
        rects = camera_rects(prims, np.linalg.inv(T_world_cam), c.K, c.width, c.height)
        t, idx = cast_grid(prims, origin, dirs, rects)
        t, idx, dirs = t.reshape(-1), idx.reshape(-1), dirs.reshape(-1, 3)
        hit = np.flatnonzero(idx >= 0)
        colour = np.empty((t.size, 3))
        empty = np.flatnonzero(idx < 0)
        up = dirs[empty]
        colour[empty] = sky(up / np.linalg.norm(up, axis=1, keepdims=True), scene.sun)
        material = np.full(t.shape, SKY, dtype=np.int8)
        if hit.size:
            pid = idx[hit]
            points = origin + t[hit, None] * dirs[hit]
            local, normals = surface_frame(prims, pid, points)
            albedo, _, _ = surface(prims, pid, points, local, normals, scene.road)
            cos_sun = normals @ scene.sun
            # shadows are cast onto what lies near the ground (road, sidewalks, car flanks), where
            # they make colour edges without depth edges; casters are everything but the slabs
            lit = np.flatnonzero((cos_sun > 0.0) & (points[:, 2] < 1.0))
            shadow = np.zeros(hit.size, dtype=bool)
            shadow[lit] = any_hit_towards(prims, points[lit] + 1e-3 * normals[lit], scene.sun,
                                          np.flatnonzero((prims.kind != PLANE) & (prims.material != SIDEWALK)))
            light = 0.32 + 0.12 * normals[:, 2] + 0.95 * np.where(shadow, 0.0, np.clip(cos_sun, 0.0, 1.0))
            shaded = albedo * (light[:, None] * np.array([1.0, 0.97, 0.92]))
            haze = (1.0 - np.exp(-t[hit] / 900.0))[:, None]
            colour[hit] = shaded + (HORIZON - shaded) * haze
            material[hit] = prims.material[pid]
        depth = np.where((idx >= 0) & (t <= self.dense_max_depth), t, 0.0).astype(np.float32)
        rgb = develop(colour.reshape(c.height, c.width, 3).astype(np.float32), self.camera, rng)
        return rgb, depth.reshape(c.height, c.width), material.reshape(c.height, c.width)

    def _lidar(self, scene: Scene, prims: Primitives, T_world_vehicle: np.ndarray, rng: np.random.Generator,
               motion: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        R, origin = T_world_vehicle[:3, :3], T_world_vehicle[:3, 3]
        rays = sweep(self.lidar, self.grid, rng)
        dirs = rays.dirs @ R.T
        rects = lidar_rects(prims, np.linalg.inv(T_world_vehicle), self.elevations, self.azimuth0,
                            self.azimuth_step, self.lidar.max_range, row_margin=int(self.lidar.scattered))
        t, idx = cast_grid(prims, origin, dirs, rects)
        if self.lidar.mixed_return > 0:
            t = mixed_returns(t, self.lidar.mixed_return, rng)
        t, idx = t.reshape(-1), idx.reshape(-1)
        hit = np.flatnonzero((idx >= 0) & (t <= self.lidar.max_range + 1.0) & rays.active.reshape(-1))
        pid = idx[hit]
        world_dirs = dirs.reshape(-1, 3)[hit]
        points = origin + t[hit, None] * world_dirs
        local, normals = surface_frame(prims, pid, points)
        _, reflect, glass = surface(prims, pid, points, local, normals, scene.road)
        keep, ranges, intensity = lidar_returns(self.lidar, rng, world_dirs, t[hit], normals, reflect, glass)
        xyz = rays.dirs.reshape(-1, 3)[hit[keep]] * ranges[:, None]
        if self.lidar.motion_distortion and motion is not None:
            xyz = motion_distort(xyz, rays.time.reshape(-1)[hit[keep]], *motion)
        return np.concatenate([xyz, intensity[:, None]], axis=1).astype(np.float32)


_BLUR = np.array([0.25, 0.5, 0.25], dtype=np.float32)
_GAMMA_LUT = (np.linspace(0.0, 1.0, 4096) ** (1 / 2.2) * 255.0).astype(np.float32)
"""Linear radiance (12-bit steps) -> sRGB-like 8-bit scale (gamma 2.2)."""


def _soften(image: np.ndarray) -> np.ndarray:
    """A [1 2 1]/4 blur in both directions: the optics' softness, and less aliasing than one ray per pixel."""
    return correlate1d(correlate1d(image, _BLUR, axis=0, mode="nearest"), _BLUR, axis=1, mode="nearest")


def _to_srgb8(linear: np.ndarray, rng: np.random.Generator, read_noise: float = 1.5,
              shot_noise: float = 0.0) -> np.ndarray:
    """Gamma-encode linear radiance in [0, 1] to uint8 with sensor noise: ``read_noise`` levels
    (Gaussian) and, if set, photon noise of ``shot_noise`` levels at full white."""
    index = (np.clip(linear, 0.0, 1.0) * np.float32(4095.0) + np.float32(0.5)).astype(np.int32)
    out = _GAMMA_LUT[index]
    sigma = np.float32(read_noise)
    if shot_noise > 0:
        sigma = np.sqrt(sigma ** 2 + np.float32(shot_noise) ** 2 * out / np.float32(255.0))
    out += rng.standard_normal(out.shape, dtype=np.float32) * sigma
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def develop(radiance: np.ndarray, camera: CameraConfig, rng: np.random.Generator) -> np.ndarray:
    """The camera's picture ``(H, W, 3)`` uint8 of linear ``radiance``: a random exposure gain, the
    optics' softness (plus ``camera.blur``), vignetting, gamma, sensor noise, JPEG. With the default
    :class:`CameraConfig` only the gain, the softness and the read noise apply (KITTI-like)."""
    image = radiance * np.float32(rng.uniform(*camera.exposure))
    image = _soften(image)
    if camera.blur > 0:
        image = gaussian_filter(image, sigma=(camera.blur, camera.blur, 0.0), mode="nearest")
    if camera.vignetting > 0:
        h, w = image.shape[:2]
        y, x = np.linspace(-1.0, 1.0, h, dtype=np.float32), np.linspace(-1.0, 1.0, w, dtype=np.float32)
        r2 = (x[None, :] ** 2 + y[:, None] ** 2) / 2.0
        image = image * (1.0 - np.float32(camera.vignetting) * r2)[..., None]
    rgb = _to_srgb8(image, rng, camera.read_noise, camera.shot_noise)
    if camera.jpeg_quality:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=camera.jpeg_quality)
        rgb = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return rgb
