"""Parameter-free fills (lumde_depth.models.fill): classical prefill, pull-push, LiDAR alignment."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lumde_depth.models import build
from lumde_depth.models.fill import (
    edge_aware_upsample,
    lidar_align,
    lidar_snap,
    nearest_surface_fill,
    pull_push,
    pull_push_at,
)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]


def test_prefill_keeps_the_nearest_surface_and_fills_everything():
    sparse = np.zeros((60, 80), np.float32)
    sparse[30:, ::3] = 20.0          # background wall
    sparse[40:, 30:50:3] = 5.0       # an obstacle in front of it
    dense = nearest_surface_fill(_t(sparse))[0, 0].numpy()
    assert (dense > 0).all()
    assert np.allclose(dense[50, 36:45], 5.0) and np.allclose(dense[50, 5:20], 20.0)
    assert np.allclose(dense[:25, 5:20], 20.0)         # each column's top value extends upwards


def test_prefill_of_scattered_samples_interpolates_between_them():
    sparse = np.zeros((64, 64), np.float32)
    sparse[8, 8], sparse[56, 56] = 2.0, 4.0
    dense = nearest_surface_fill(_t(sparse), max_depth=10.0)[0, 0].numpy()
    assert dense.min() >= 2.0 - 1e-5 and dense.max() <= 4.0 + 1e-5
    assert dense[8, 8] == pytest.approx(2.0) and dense[56, 56] == pytest.approx(4.0)


def test_prefill_ignores_far_points_and_leaves_an_empty_frame_empty():
    sparse = np.zeros((16, 16), np.float32)
    assert not nearest_surface_fill(_t(sparse)).any()
    sparse[4, 4] = 150.0
    assert not nearest_surface_fill(_t(sparse), max_depth=100.0).any()


def test_pull_push_is_exact_at_unit_weights_and_keeps_constants():
    rng = np.random.default_rng(0)
    weights = (rng.random((1, 1, 37, 53)) < 0.05).astype(np.float32)
    values = rng.uniform(1, 9, weights.shape).astype(np.float32)
    field = pull_push(torch.from_numpy(values), torch.from_numpy(weights)).numpy()
    np.testing.assert_allclose(field[weights > 0], values[weights > 0], rtol=1e-5)
    assert field.min() >= values[weights > 0].min() - 1e-4 and field.max() <= values[weights > 0].max() + 1e-4
    constant = pull_push(torch.full(weights.shape, 3.0), torch.from_numpy(weights))
    np.testing.assert_allclose(constant.numpy(), 3.0, rtol=1e-5)
    assert not pull_push(torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)).any()


@pytest.mark.parametrize("size", [(2, 1, 37, 53), (1, 1, 38, 52), (1, 1, 1, 9), (1, 1, 5, 1)])
@pytest.mark.parametrize("full_weight", [1.0, 4.0])
def test_pull_push_at_the_samples_is_the_dense_pull_push(size, full_weight):
    """lidar_align's sparse pull-push (summed from the samples, blended only at them) is the dense one, odd
    sizes (the pooling's doubled last row / column), batches and degenerate one-pixel-wide fields included."""
    rng = np.random.default_rng(1)
    weights = torch.from_numpy(((rng.random(size) < 0.08) * rng.choice([1.0, 4.0], size)).astype(np.float32))
    values = torch.from_numpy(rng.uniform(-1, 1, size).astype(np.float32))
    index = torch.nonzero(weights.reshape(-1) > 0).squeeze(1)
    sparse = pull_push_at(index, values.reshape(-1)[index], weights.reshape(-1)[index], size, full_weight)
    np.testing.assert_allclose(sparse.numpy(), pull_push(values, weights, full_weight).numpy(), rtol=1e-5, atol=1e-6)


def test_pull_push_full_weight_smooths_single_samples():
    weights = np.zeros((1, 1, 32, 32), np.float32)
    weights[..., ::4, ::4] = 1.0
    values = np.where(weights > 0, 1.0, 0.0).astype(np.float32)
    values[..., 16, 16] = 5.0                                        # one outlier among 64 samples
    exact = pull_push(torch.from_numpy(values), torch.from_numpy(weights)).numpy()
    smooth = pull_push(torch.from_numpy(values), torch.from_numpy(weights), full_weight=4.0).numpy()
    assert exact[..., 16, 16] == pytest.approx(5.0)
    assert 1.0 < smooth[..., 16, 16] < 3.0 and smooth[..., 0, 0] == pytest.approx(1.0, abs=0.2)


def test_lidar_align_removes_a_scale_error_and_pulls_depth_to_the_points():
    rng = np.random.default_rng(1)
    truth = np.linspace(5, 40, 48 * 96, dtype=np.float32).reshape(48, 96)
    sparse = np.where(rng.random(truth.shape) < 0.05, truth, 0).astype(np.float32)
    aligned = lidar_align(_t(1.3 * truth), _t(sparse))[0, 0].numpy()
    np.testing.assert_allclose(aligned, truth, rtol=1e-4)               # a constant ratio is recovered everywhere
    bumped = truth * (1 + 0.2 * (np.arange(96) > 48))                   # the prediction is off on one half only
    points = sparse > 0
    for full_weight, tolerance in ((1.0, 1e-4), (4.0, 0.1)):
        out = lidar_align(_t(bumped), _t(sparse), full_weight)[0, 0].numpy()
        err = np.abs(out[points] - truth[points]) / truth[points]
        assert err.max() < tolerance and err.mean() < np.abs(bumped - truth)[points].mean() / truth[points].mean()
    unchanged = lidar_align(_t(1.3 * truth), torch.zeros(1, 1, 48, 96))
    np.testing.assert_array_equal(unchanged[0, 0].numpy(), 1.3 * truth)


def test_lidar_align_meets_points_beyond_the_trusted_range_exactly():
    """A network clipped at 90 m sees a 200 m return as 90 m; that point alone carries the depth there."""
    depth = np.full((32, 64), 20.0, np.float32)
    depth[:, 40:] = 90.0                                  # the network's clipped far region
    sparse = np.zeros_like(depth)
    sparse[::4, :40:4] = 20.0
    sparse[16, 52] = 200.0                                # one far return among near ones
    plain = lidar_align(_t(depth), _t(sparse))[0, 0].numpy()
    trusted = lidar_align(_t(depth), _t(sparse), trust_beyond=90.0)[0, 0].numpy()
    assert plain[16, 52] < 150.0                          # blended away with its coarser cell
    assert trusted[16, 52] == pytest.approx(200.0, rel=1e-4)
    np.testing.assert_allclose(trusted[sparse == 20.0], 20.0, rtol=0.02)   # near points: smoothed as before


def test_guided_student_starts_as_its_prefill_and_learns_a_residual():
    torch.manual_seed(0)
    model = build("lspkd_student", width=0.125, guided=True)
    sparse = torch.zeros(2, 1, 40, 72)
    sparse[:, :, 20:, ::2] = torch.rand(2, 1, 20, 36) * 30 + 2
    out = model(torch.rand(2, 3, 40, 72), sparse)
    assert out["depth"].shape == (2, 1, 40, 72)
    torch.testing.assert_close(out["depth"], out["prefill"].clamp_min(0.5))
    out["depth"].mean().backward()
    assert model.head.weight.grad.abs().sum() > 0
    assert model.depth_encoder.stem[0].in_channels == 2


def test_edge_aware_upsample_keeps_a_step_where_bilinear_blurs_it():
    low = np.full((20, 40), 20.0, np.float32)
    low[:, 21:] = 5.0
    low[:, :10] = np.linspace(10.0, 12.0, 10)                         # a gentle slope, no edge
    up = edge_aware_upsample(_t(low), (40, 80))[0, 0].numpy()
    bilinear = torch.nn.functional.interpolate(_t(low), size=(40, 80), mode="bilinear",
                                               align_corners=False)[0, 0].numpy()
    ramp = (bilinear > 5.5) & (bilinear < 19.5)
    assert ramp[:, 30:50].sum() == 2 * 40                              # bilinear: two flying pixels a row
    assert set(np.unique(up[:, 30:50])) == {5.0, 20.0}                 # edge-aware: a clean step
    np.testing.assert_allclose(up[:, :18], bilinear[:, :18])          # smooth depth stays bilinear


def test_lidar_snap_takes_the_points_on_its_own_surface_only():
    depth = np.full((40, 60), 10.5, np.float32)                      # the network: 5 % too far, an edge at x = 30
    depth[:, 30:] = 31.0
    sparse = np.zeros_like(depth)
    sparse[::3, ::2] = np.where(np.arange(60)[::2] < 30, 10.0, 30.0)[None, :]
    out = lidar_snap(_t(depth), _t(sparse))[0, 0].numpy()
    assert np.abs(out[5:35, 5:27] - 10.0).max() < 0.05                 # pulled to the LiDAR's 10 m
    assert np.abs(out[5:35, 32:55] - 30.0).max() < 0.15
    assert out[:, 28:30].min() > 9.9 and out[:, 30:32].min() > 29.8    # no point across the edge pulls a pixel
    far = np.zeros_like(depth)
    far[20, 20] = 10.0
    lone = lidar_snap(_t(depth), _t(far))[0, 0].numpy()
    assert lone[20, 20] == pytest.approx(10.0, rel=0.01) and lone[0, 0] == pytest.approx(10.5)   # 3 px reach
    off_surface = np.zeros_like(depth)
    off_surface[::3, ::2] = 20.0                                      # points on no surface of the depth
    np.testing.assert_allclose(lidar_snap(_t(depth), _t(off_surface))[0, 0].numpy(), depth, rtol=1e-4)
    assert torch.equal(lidar_snap(_t(depth), torch.zeros(1, 1, 40, 60)), _t(depth))


def test_guided_student_guide_max_depth_keeps_far_points_in_its_prefill():
    sparse = torch.zeros(1, 1, 64, 64)
    sparse[..., 40:, ::4] = 180.0
    rgb = torch.rand(1, 3, 64, 64)
    near = build("lspkd_student", width=0.125, guided=True).eval()
    far = build("lspkd_student", width=0.125, guided=True, guide_max_depth=300.0).eval()
    with torch.no_grad():
        assert not near(rgb, sparse)["prefill"].any()                    # default: 100 m, the points are dropped
        np.testing.assert_allclose(far(rgb, sparse)["depth"][..., 40:, :].numpy(), 180.0, rtol=1e-4)
    with pytest.raises(ValueError, match="guide_max_depth"):
        build("lspkd_student", guided=True, guide_max_depth=0.1)


def test_snap_radius_follows_the_lidar_spacing():
    """A KITTI scan (4 % of the pixels) keeps the 7x7 window; sparser LiDARs get a window of ~0.6 spacings,
    up to SNAP_MAX_RADIUS; a frame without points does not divide by zero."""
    from lumde_depth.models.fill import SNAP_MAX_RADIUS, SNAP_RADIUS, snap_radius
    assert snap_radius(18_600, 1242 * 375) == SNAP_RADIUS
    assert snap_radius(8_000, 1936 * 1216) == 10            # DDAD: 0.34 %, spacing 17 px
    assert snap_radius(500, 640 * 480) == SNAP_MAX_RADIUS    # 500 indoor samples: spacing 25 px
    assert SNAP_RADIUS <= snap_radius(0, 100) <= SNAP_MAX_RADIUS and snap_radius(10_000, 10_000) == SNAP_RADIUS


def test_lidar_snap_range_tolerance_widens_with_its_window():
    """A point 15 % off the depth: the 7x7 window's sigma (5 %) moves the pixel less than a third of the way; a 19x19 window's default
    sigma (5 % x sqrt(3)) pulls the pixel most of the way to it, as the explicit sigma does."""
    from lumde_depth.models.fill import SNAP_SIGMA, lidar_snap
    depth = torch.full((1, 1, 21, 21), 10.0)
    sparse = torch.zeros_like(depth)
    sparse[0, 0, 10, 10] = 11.5
    narrow = lidar_snap(depth, sparse, radius=3)[0, 0, 10, 10]
    wide = lidar_snap(depth, sparse, radius=9)[0, 0, 10, 10]
    explicit = lidar_snap(depth, sparse, radius=9, sigma=SNAP_SIGMA * 3 ** 0.5)[0, 0, 10, 10]
    assert narrow < 10.5 and wide > 11.1 and torch.isclose(wide, explicit)
