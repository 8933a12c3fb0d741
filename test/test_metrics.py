"""Depth metrics against hand-computed values."""
import math

import numpy as np
import pytest
import torch

from lumde_depth.engine.metrics import MetricAccumulator, garg_crop_mask, kitti_metrics, mono_metrics, nyu_metrics


def test_kitti_hand_computed():
    gt = np.array([[10.0, 20.0], [0.0, 5.0]])
    pred = np.array([[11.0, 18.0], [99.0, 5.0]])  # the gt=0 pixel is ignored
    m = kitti_metrics(pred, gt)
    # errors (m): 1, -2, 0 -> rmse = sqrt(5/3) m, mae = 1 m
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3) * 1000)
    assert m["mae"] == pytest.approx(1000.0)
    # inverse errors (1/m): 1/11-1/10, 1/18-1/20, 0
    inv = [1 / 11 - 1 / 10, 1 / 18 - 1 / 20, 0.0]
    assert m["irmse"] == pytest.approx(math.sqrt(sum(e * e for e in inv) / 3) * 1000)
    assert m["imae"] == pytest.approx(sum(abs(e) for e in inv) / 3 * 1000)


def test_kitti_zero_prediction_is_finite_and_empty_gt_is_nan():
    m = kitti_metrics(np.zeros((2, 2)), np.full((2, 2), 10.0))
    assert all(math.isfinite(v) for v in m.values()) and m["mae"] == pytest.approx(10000)
    assert all(math.isnan(v) for v in kitti_metrics(np.ones((2, 2)), np.zeros((2, 2))).values())
    with pytest.raises(ValueError, match="NaN/inf"):
        kitti_metrics(np.full((2, 2), np.nan), np.ones((2, 2)))
    with pytest.raises(ValueError, match="differ in size"):
        kitti_metrics(np.ones((2, 3)), np.ones((2, 2)))


def test_nyu_hand_computed():
    gt = np.array([1.0, 2.0, 4.0, 0.0, 5e-5]).reshape(1, 5)
    pred = np.array([1.2, 3.0, 4.0, 7.0, 7.0]).reshape(1, 5)
    m = nyu_metrics(pred, gt)
    assert m["rmse"] == pytest.approx(math.sqrt((0.04 + 1.0 + 0.0) / 3))
    assert m["rel"] == pytest.approx((0.2 + 0.5 + 0.0) / 3)
    # ratios 1.2, 1.5, 1.0: d1 counts 1.2 and 1.0; 1.5 < 1.5625 = 1.25^2
    assert (m["d1"], m["d2"], m["d3"]) == pytest.approx((2 / 3, 1.0, 1.0))


def test_mono_median_scaling_and_caps():
    gt = np.array([[2.0, 4.0, 8.0, 100.0]])  # 100 > max_depth: excluded
    pred = gt / 2  # right up to scale
    m = mono_metrics(pred, gt)
    assert m["scale"] == pytest.approx(2.0)
    assert m["abs_rel"] == pytest.approx(0.0) and m["rmse_log"] == pytest.approx(0.0) and m["d1"] == 1.0
    raw = mono_metrics(pred, gt, median_scale=False)
    # unscaled: pred = gt / 2 -> abs_rel 0.5, sq_rel mean(g/4), rmse sqrt(mean(g^2/4)), log error log 2
    g = np.array([2.0, 4.0, 8.0])
    assert raw["abs_rel"] == pytest.approx(0.5)
    assert raw["sq_rel"] == pytest.approx(np.mean(g / 4))
    assert raw["rmse"] == pytest.approx(math.sqrt(np.mean(g ** 2 / 4)))
    assert raw["rmse_log"] == pytest.approx(math.log(2))
    assert (raw["d1"], raw["d2"], raw["d3"]) == (0.0, 0.0, 0.0)  # ratio 2 > 1.25^3 = 1.95
    capped = mono_metrics(np.full((1, 3), 500.0), g[None], median_scale=False)
    assert capped["rmse"] == pytest.approx(math.sqrt(np.mean((80 - g) ** 2)))


def test_garg_crop():
    mask = garg_crop_mask(375, 1242)
    assert mask.shape == (375, 1242) and mask[200, 600] and not mask[10, 600] and not mask[200, 5]
    gt = np.full((375, 1242), 10.0)
    pred = np.full((375, 1242), 10.0)
    pred[:100] = 1.0  # wrong only above the crop
    assert mono_metrics(pred, gt, median_scale=False, garg_crop=True)["abs_rel"] == 0.0


def test_accumulator_averages_per_image_and_takes_torch_batches():
    gt = torch.tensor([[[[10.0, 10.0]]], [[[20.0, 0.0]]], [[[0.0, 0.0]]]])  # B x 1 x 1 x 2
    pred = torch.tensor([[[[11.0, 13.0]]], [[[20.0, 5.0]]], [[[1.0, 1.0]]]])
    acc = MetricAccumulator(kitti_metrics)
    per_image = acc.update(pred, gt)
    assert len(per_image) == 3 and acc.count == 2 and acc.skipped == 1
    # image 1: mae 2000 mm, image 2: mae 0 -> mean of images 1000 (pixel-pooled would be 1333)
    assert acc.result()["mae"] == pytest.approx(1000.0)
    assert acc.result()["rmse"] == pytest.approx((math.sqrt(5) * 1000 + 0.0) / 2)
    nyu = MetricAccumulator(nyu_metrics)
    nyu.update(np.ones((4, 4)), np.ones((4, 4)))
    assert nyu.result() == {"rmse": 0.0, "rel": 0.0, "d1": 1.0, "d2": 1.0, "d3": 1.0}
    mono = MetricAccumulator(mono_metrics, median_scale=False)
    mono.update(np.full((2, 3, 3), 2.0), np.full((2, 3, 3), 4.0))
    assert mono.count == 2 and mono.result()["abs_rel"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one image"):
        kitti_metrics(np.ones((2, 3, 3)), np.ones((2, 3, 3)))


def test_accepts_half_precision_tensors_and_unit_dims():
    gt = torch.full((1, 1, 4, 4), 10.0)
    pred = torch.full((1, 1, 4, 4), 11.0, dtype=torch.bfloat16)
    assert kitti_metrics(pred, gt)["mae"] == pytest.approx(1000.0)
    assert nyu_metrics(pred[0], gt[0, 0])["rel"] == pytest.approx(0.1)
