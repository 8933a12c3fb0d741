"""Mode auto without DDS: the monocular fallback in metres, scaled by the LiDAR frames before it."""
from __future__ import annotations

import numpy as np
import pytest

from lumde_depth.geometry.scale import lidar_scale
from lumde_depth.inference import DepthCompleter
from lumde_depth.ros.pipeline import AutoPipeline, DepthPipeline, MonoScale

P = np.array([[120.0, 0.0, 79.5, 0.0], [0.0, 120.0, 47.5, 0.0], [0.0, 0.0, 1.0, 0.0]])
# LiDAR (x forward, y left, z up) -> camera optical (x right, y down, z forward)
T = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.3], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _frame(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random image and a LiDAR-like fan of points on a wall 15 m ahead."""
    rng = np.random.default_rng(seed)
    az, el = np.meshgrid(np.linspace(-0.5, 0.5, 200), np.linspace(-0.3, 0.1, 30))
    points = (np.stack([np.ones_like(az), np.tan(az), np.tan(el)], -1).reshape(-1, 3) * 15.0).astype(np.float32)
    return rng.integers(0, 256, (96, 160, 3), dtype=np.uint8), points


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> tuple[DepthPipeline, DepthPipeline]:
    import torch

    from lumde_depth.models import build
    from lumde_depth.models.io import save_model
    torch.manual_seed(0)
    path = save_model(tmp_path_factory.mktemp("model") / "mono.pt", build("lumde_student", width=0.5),
                      {"input_size": [64, 96], "depth_range": [0.1, 100.0], "kind": "monocular"})
    mono = DepthCompleter.load(path, backend="torch", device="cpu", threads=1)
    classical = DepthCompleter.load(None, backend="classical")
    return DepthPipeline(classical, max_depth=80.0), DepthPipeline(mono, min_depth=0.01, max_depth=1000.0)


def test_mono_scale_is_the_median_of_recent_frames():
    pred = np.full((40, 60), 2.0)
    scale = MonoScale(window=3)
    assert scale.value is None and "model's own scale" in scale.describe()
    for ratio in (10.0, 11.0, 500.0, 12.0):   # 500: one frame with a bad scan
        sparse = np.zeros_like(pred)
        sparse[:5, :10] = 2.0 * ratio
        assert scale.observe(pred, sparse) == pytest.approx(ratio)
    assert scale.value == pytest.approx(12.0)     # median of the last 3: 11, 500, 12
    few = np.zeros_like(pred)
    few[0, :3] = 99.0
    assert np.isnan(scale.observe(pred, few)) and len(scale.recent) == 3
    assert scale.describe().startswith("12 (median of the last 3")


def test_camera_only_frames_use_the_model_scale_until_lidar_gave_one(pipelines):
    completion, mono = pipelines
    auto = AutoPipeline(completion, mono)
    rgb, _ = _frame()
    before = auto.process(rgb, P, None, None)
    np.testing.assert_array_equal(before.depth, mono.process(rgb, P, None, None).depth)
    assert before.sparse is None and auto.scale.value is None


def test_camera_only_frames_are_scaled_by_the_lidar_frames(pipelines):
    completion, mono = pipelines
    auto = AutoPipeline(completion, mono, scale_every=2)
    rgb, points = _frame()
    raw = mono.completer.complete(rgb, None, P[:, :3])
    ratios = []
    for seed in range(4):   # LiDAR frames 0 and 2 update the scale
        rgb, points = _frame(seed)
        result = auto.process(rgb, P, points, T)
        np.testing.assert_array_equal(result.depth, completion.process(rgb, P, points, T).depth)
        if seed % 2 == 0:
            ratios.append(lidar_scale(mono.completer.complete(rgb, None, P[:, :3]), result.sparse))
            assert "mono_scale" in result.timings
    assert len(auto.scale.recent) == 2 and auto.scale.value == pytest.approx(np.median(ratios))
    rgb, _ = _frame()
    fallback = auto.process(rgb, P, None, None)
    expected = raw * np.float32(auto.scale.value)
    expected[(expected < mono.min_depth) | (expected > mono.max_depth)] = 0.0
    np.testing.assert_allclose(fallback.depth, expected, rtol=1e-6)
    assert fallback.cloud is not None and np.nanmax(fallback.cloud["z"]) == pytest.approx(expected.max(), rel=1e-5)
