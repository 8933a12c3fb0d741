"""Random sensor rigs (``lumde synth --set rig=random``): a new camera, LiDAR and street style per drive.

What real robots and cars carry varies far more than one KITTI car: the image size (VGA to 1936x1216)
and focal length, where the camera sits relative to the LiDAR (tens of centimetres to metres: more
parallax), its pitch, the LiDAR's pattern (16 to 128 rings, non-scanning sensors with 0.2-0.5 % of the
pixels, Livox-like rosettes), its height and range (80 to 250 m), its artefacts, and the camera's
image formation (exposure, noise, blur, vignetting, JPEG). :func:`random_rig` draws all of these for
one drive from the drive's own random generator, so a model trained on such data does not learn one
rig's statistics.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from lumde_depth.data.synth.camera import CameraConfig
from lumde_depth.data.synth.lidar import LidarConfig

RIGS = ("fixed", "random")

IMAGE_SIZES = ((1242, 375), (1936, 1216), (1920, 1200), (1920, 1080), (1600, 900), (1280, 720), (1280, 960),
               (1024, 768), (640, 480), (2048, 1024))
"""(width, height) of common automotive and robot cameras (KITTI, DDAD, PJLab, HD, VGA, ...)."""
SPINNING = ((16, 15.0, -15.0), (32, 10.67, -30.67), (64, 2.0, -24.8), (64, 16.6, -16.6), (128, 22.5, -22.5),
            (128, 15.0, -25.0))
"""(rings, highest, lowest elevation in degrees) of common spinning LiDARs (VLP-16, HDL-32E, HDL-64E,
OS1-64, OS1-128, a 128-ring automotive sensor)."""


def random_rig(rng: np.random.Generator, camera: CameraConfig, lidar: LidarConfig
               ) -> tuple[CameraConfig, LidarConfig, dict[str, float]]:
    """A random camera, LiDAR and scene style (``build_scene`` keywords); fields not drawn here (e.g.
    ``lidar.detection_threshold``) keep the values of ``camera`` / ``lidar``."""
    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    lidar_height = float(rng.uniform(1.4, 2.3))
    jpeg = 0 if rng.random() < 0.5 else int(rng.integers(60, 96))
    cam = replace(camera, width=width, height=height, hfov_deg=float(rng.uniform(45.0, 100.0)),
                  offset=[float(rng.uniform(-0.3, 1.5)), float(rng.uniform(-0.5, 0.5)),
                          float(rng.uniform(-min(1.0, lidar_height - 0.9), 0.15))],
                  pitch_deg=float(rng.uniform(-3.0, 8.0)),
                  exposure=sorted(float(v) for v in rng.uniform(0.6, 1.4, 2)),
                  read_noise=float(rng.uniform(1.0, 4.0)), shot_noise=float(rng.uniform(0.0, 8.0)),
                  blur=float(rng.uniform(0.0, 1.2)), vignetting=float(rng.uniform(0.0, 0.4)), jpeg_quality=jpeg)
    kind = rng.choice(["hdl64", "uniform", "random", "rosette"], p=[0.15, 0.4, 0.3, 0.15])
    common = dict(height=lidar_height, max_range=float(rng.uniform(80.0, 250.0)),
                  range_noise=float(rng.uniform(0.01, 0.05)), mixed_return=float(rng.uniform(0.1, 0.5)),
                  motion_distortion=bool(rng.random() < 0.7))
    if kind == "hdl64":
        lid = replace(lidar, pattern="hdl64", azimuth_step_deg=float(rng.uniform(0.09, 0.25)), **common)
    elif kind == "uniform":
        beams, up, down = SPINNING[rng.integers(len(SPINNING))]
        lid = replace(lidar, pattern="uniform", beams=beams, fov_up_deg=up, fov_down_deg=down,
                      azimuth_step_deg=float(rng.uniform(0.1, 0.4)), **common)
    elif kind == "random":  # DDAD-like non-scanning: 50-120k directions a sweep over 360 deg (30-70k returns)
        up, down = float(rng.uniform(5.0, 15.0)), float(rng.uniform(-30.0, -15.0))
        lid = replace(lidar, pattern="random", beams=int((up - down) / 0.2), fov_up_deg=up, fov_down_deg=down,
                      azimuth_step_deg=0.2, points=int(rng.integers(50_000, 120_000)), **common)
    else:  # a forward rosette (Livox Avia / Mid-70-like cones)
        cone, centre = float(rng.uniform(38.0, 70.0)), float(rng.uniform(-8.0, 0.0))
        lid = replace(lidar, pattern="rosette", beams=int(cone / 0.3), fov_up_deg=centre + cone / 2,
                      fov_down_deg=centre - cone / 2, azimuth_step_deg=0.3, points=int(rng.integers(15_000, 60_000)),
                      **common)
    scene = {"parked_rate": float(rng.uniform(0.3, 0.8)), "building_gap": float(rng.uniform(0.1, 0.6)),
             "pedestrians": float(rng.uniform(0.0, 6.0))}
    return cam, lid, scene
