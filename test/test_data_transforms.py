"""Transforms keep K consistent with the pixels: checked by projecting 3D points before and after."""
import numpy as np
import pytest
import torch

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.transforms import (ColorJitter, Compose, Crop, HFlip, SparseAugment, SparseFromGT, crop, hflip,
                                         resize)
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


def _lidar_sample(density: float = 0.3, h: int = 120, w: int = 200) -> dict:
    rng = np.random.default_rng(0)
    gt = torch.from_numpy(rng.uniform(2.0, 50.0, (1, h, w)).astype(np.float32))
    sparse = torch.where(torch.from_numpy(rng.random((1, h, w)) < density), gt, torch.zeros_like(gt))
    return {"rgb": torch.rand(3, h, w), "sparse": sparse, "gt": gt, "K": torch.eye(3), "name": "x"}


def test_sparse_augment_density_goes_where_configured():
    sample = _lidar_sample()
    for target in (0.05, 0.01, 0.002):
        aug = SparseAugment(min_density=target, max_density=target, p_density=1.0, p_rows=0.0, p_patches=0.0)
        densities = [(aug(sample, np.random.default_rng(s))["sparse"] > 0).float().mean().item() for s in range(20)]
        assert np.mean(densities) == pytest.approx(target, rel=0.15)
    spread = SparseAugment(min_density=0.002, max_density=0.05, p_density=1.0, p_rows=0.0, p_patches=0.0)
    densities = np.array([(spread(sample, np.random.default_rng(s))["sparse"] > 0).float().mean().item()
                          for s in range(200)])
    assert densities.min() >= 0.0015 and densities.max() <= 0.055
    assert (densities < 0.005).mean() > 0.2 and (densities > 0.02).mean() > 0.2      # log-uniform: both ends
    sparse_already = _lidar_sample(density=0.001)
    out = spread(sparse_already, np.random.default_rng(0))                              # never adds points
    assert torch.equal(out["sparse"], sparse_already["sparse"])


def test_sparse_augment_rows_and_patches_keep_gt_and_the_surviving_points():
    sample = _lidar_sample()
    rows = SparseAugment(p_density=0.0, p_rows=1.0, row_drop=0.5, row_band=3, p_patches=0.0)
    out = rows(sample, np.random.default_rng(3))
    empty_rows = (out["sparse"][0] > 0).sum(dim=1) == 0
    assert 0.25 < empty_rows.float().mean() < 0.75
    bands = empty_rows.view(-1, 3)
    assert bool((bands.all(dim=1) | ~bands.any(dim=1)).all())                          # whole bands of 3 rows
    kept = out["sparse"] > 0
    assert torch.equal(out["sparse"][kept], sample["sparse"][kept]) and torch.equal(out["gt"], sample["gt"])
    patches = SparseAugment(p_density=0.0, p_rows=0.0, p_patches=1.0, patches=3)
    lost = (sample["sparse"] > 0).sum() - (patches(sample, np.random.default_rng(1))["sparse"] > 0).sum()
    assert lost > 0
    with pytest.raises(ValueError, match="min_density"):
        SparseAugment(min_density=0.1, max_density=0.01)


def test_kitti_transform_resizes_like_the_node_and_augments(tmp_path):
    from lumde_depth.data import build_dataset
    from lumde_depth.data.synth import SynthConfig, generate

    generate(SynthConfig(frames=2, sequences=2, seed=4, camera_scale=0.5, workers=1), tmp_path, progress=False)
    plain = build_dataset("kitti_dc", tmp_path, "train", size=None, resize=(94, 300), cameras=("image_02",),
                          augment=False)[0]
    assert plain["rgb"].shape == (3, 94, 300) and plain["sparse"].shape == (1, 94, 300)
    assert plain["K"][0, 0].item() == pytest.approx(721.5377 * 0.5 * 300 / 621, rel=1e-3)
    aug = build_dataset("kitti_dc", tmp_path, "train", size=None, resize=(94, 300), cameras=("image_02",),
                        sparse_aug={"min_density": 0.01, "max_density": 0.01, "p_density": 1.0, "p_rows": 0.0,
                                    "p_patches": 0.0})[0]
    assert (aug["sparse"] > 0).float().mean().item() == pytest.approx(0.01, rel=0.3)
    assert (plain["sparse"] > 0).float().mean().item() > 0.05
    with pytest.raises(DataError, match="min_densty|valid keys"):
        build_dataset("kitti_dc", tmp_path, "train", size=None, sparse_aug={"min_densty": 0.01})[0]
