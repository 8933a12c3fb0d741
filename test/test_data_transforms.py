"""Transforms keep K consistent with the pixels: checked by projecting 3D points before and after."""
import numpy as np
import pytest
import torch

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.transforms import ColorJitter, Compose, Crop, HFlip, SparseFromGT, crop, hflip, resize
from lumde_depth.geometry import project_points

H, W = 48, 64
K = np.array([[50.0, 0, 30.3], [0, 52.0, 20.7], [0, 0, 1]], np.float32)


def _points() -> np.ndarray:
    rng = np.random.default_rng(1)
    z = rng.uniform(2, 20, 400)
    x = rng.uniform(-0.6, 0.6, 400) * z
    y = rng.uniform(-0.45, 0.45, 400) * z
    return np.stack([x, y, z], 1)


def _sample(points: np.ndarray) -> dict:
    sparse = project_points(points, np.eye(4), K, W, H)
    rng = np.random.default_rng(2)
    return {"rgb": torch.from_numpy(rng.random((3, H, W), dtype=np.float32)),
            "rgb_prev": torch.from_numpy(rng.random((3, H, W), dtype=np.float32)),
            "sparse": torch.from_numpy(sparse)[None], "gt": torch.from_numpy(sparse)[None] * 2,
            "K": torch.from_numpy(K), "name": "frame"}


def test_crop_shifts_principal_point_so_projection_matches():
    pts = _points()
    sample = _sample(pts)
    out = crop(sample, top=7, left=11, height=30, width=40)
    assert out["K"][0, 2] == pytest.approx(30.3 - 11) and out["K"][1, 2] == pytest.approx(20.7 - 7)
    assert out["K"][0, 0] == K[0, 0] and out["K"][1, 1] == K[1, 1]
    reprojected = project_points(pts, np.eye(4), out["K"].numpy(), 40, 30)
    assert (reprojected > 0).sum() > 50
    np.testing.assert_array_equal(out["sparse"][0].numpy(), reprojected)
    for key in ("rgb", "rgb_prev", "gt"):
        assert torch.equal(out[key], sample[key][:, 7:37, 11:51])
    assert torch.equal(sample["K"], torch.from_numpy(K)), "input sample must not be modified"


def test_flip_mirrors_cx_and_matches_projection_of_mirrored_scene():
    pts = _points()
    out = hflip(_sample(pts))
    assert out["K"][0, 2] == pytest.approx(W - 1 - 30.3)
    mirrored = pts * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out["sparse"][0].numpy(), project_points(mirrored, np.eye(4), out["K"].numpy(), W, H))
    assert torch.equal(out["rgb_prev"], torch.flip(_sample(pts)["rgb_prev"], (-1,)))


def test_resize_scales_k_and_never_interpolates_depth():
    pts = _points()
    sample = _sample(pts)
    out = resize(sample, H // 2, W // 2, dense_gt=False)
    assert out["rgb"].shape == out["rgb_prev"].shape == (3, H // 2, W // 2)
    assert out["sparse"].shape == out["gt"].shape == (1, H // 2, W // 2)
    # a point at the centre of a 2x2 block (u = 2j + 0.5) lands on pixel j after halving
    assert out["K"][0, 2] == pytest.approx((30.3 + 0.5) / 2 - 0.5) and out["K"][0, 0] == pytest.approx(25.0)
    # sparse depth: nearest point per target pixel, every value one of the input depths
    values = out["sparse"][out["sparse"] > 0]
    assert torch.isin(values, sample["sparse"][sample["sparse"] > 0]).all()
    block = sample["sparse"][0].reshape(H // 2, 2, W // 2, 2).permute(0, 2, 1, 3).reshape(H // 2, W // 2, 4)
    nearest = torch.where(block > 0, block, torch.inf).min(-1).values
    assert torch.equal(out["sparse"][0], torch.where(torch.isfinite(nearest), nearest, 0.0))
    assert 0 <= float(out["rgb"].min()) and float(out["rgb"].max()) <= 1


def test_crop_modes_and_errors():
    sample = _sample(_points())
    bottom = Crop(30, 40, "bottom")(sample, np.random.default_rng(0))
    assert torch.equal(bottom["rgb"], sample["rgb"][:, H - 30:, 12:52])
    centre = Crop(30, 40, "center")(sample, np.random.default_rng(0))
    assert torch.equal(centre["rgb"], sample["rgb"][:, 9:39, 12:52])
    with pytest.raises(DataError, match="frame: crop 80x30 is larger than the 64x48 image"):
        Crop(30, 80)(sample, np.random.default_rng(0))
    with pytest.raises(ValueError, match="crop mode 'top' unknown"):
        Crop(3, 3, "top")


def test_random_pipeline_is_deterministic_per_seed_and_varies_between_seeds():
    pipeline = Compose([Crop(30, 40, "random"), HFlip(0.5), ColorJitter(0.3, 0.3, 0.3)])
    sample = _sample(_points())
    a = pipeline(sample, np.random.default_rng(5))
    b = pipeline(sample, np.random.default_rng(5))
    for key in ("rgb", "sparse", "K"):
        assert torch.equal(a[key], b[key])
    outs = [pipeline(sample, np.random.default_rng(s))["K"][:2, 2].tolist() for s in range(8)]
    assert len({tuple(o) for o in outs}) > 1


def test_color_jitter_changes_colour_only_and_stays_in_range():
    sample = _sample(_points())
    out = ColorJitter(0.5, 0.5, 0.5)(sample, np.random.default_rng(3))
    assert not torch.equal(out["rgb"], sample["rgb"]) and not torch.equal(out["rgb_prev"], sample["rgb_prev"])
    assert torch.equal(out["sparse"], sample["sparse"]) and torch.equal(out["gt"], sample["gt"])
    assert out["rgb"].min() >= 0 and out["rgb"].max() <= 1
    identity = ColorJitter(0.0, 0.0, 0.0)(sample, np.random.default_rng(3))
    assert torch.allclose(identity["rgb"], sample["rgb"], atol=1e-6)


def test_sparse_from_gt_draws_exact_count_from_valid_pixels():
    sample = _sample(_points())
    gt = torch.rand(1, H, W) + 0.5
    gt[0, :10] = 0
    sample["gt"] = gt
    out = SparseFromGT(500)(sample, np.random.default_rng(0))
    chosen = out["sparse"] > 0
    assert int(chosen.sum()) == 500
    assert torch.equal(out["sparse"][chosen], gt[chosen]) and not chosen[0, :10].any()
    few = SparseFromGT(10_000)(sample, np.random.default_rng(0))
    assert int((few["sparse"] > 0).sum()) == int((gt > 0).sum())
