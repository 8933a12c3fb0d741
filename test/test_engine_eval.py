"""Evaluation with the KITTI / NYUv2 protocols and the random layer pruning stability test."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import engine_toy
from engine_toy import one_thread  # noqa: F401  (autouse fixture)
from lumde_depth.engine.evaluate import evaluate, format_table
from lumde_depth.engine.prune import disable_filters, format_prune_table, prune_test, prune_units, suggest_width
from lumde_depth.models import build
from lumde_depth.models.blocks import BasicBlock, UnifiedBlock


class Offset(nn.Module):
    """Predicts ground truth + a known offset, from the batch (a model whose metrics are known exactly)."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, rgb, sparse):
        return {"depth": self.gt + self.offset + 0 * self.anchor}


class GtSet(torch.utils.data.Dataset):
    def __init__(self, gts):
        self.gts = gts

    def __len__(self):
        return len(self.gts)

    def __getitem__(self, i):
        gt = torch.as_tensor(self.gts[i], dtype=torch.float32)[None]
        return {"rgb": torch.zeros(3, *gt.shape[-2:]), "sparse": torch.zeros_like(gt), "gt": gt, "name": str(i)}


def test_kitti_metrics_are_averaged_per_image():
    gts = [np.full((4, 4), 10.0), np.where(np.eye(4) > 0, 20.0, 0.0)]
    data = GtSet(gts)
    model = Offset(0.5)
    rows = []
    for i in range(2):  # feed the model its image's ground truth: prediction = gt + 0.5 on valid pixels
        model.gt = data[i]["gt"][None]
        rows.append(evaluate(model, torch.utils.data.Subset(data, [i]), "kitti"))
    assert rows[0]["rmse"] == pytest.approx(500.0) and rows[0]["mae"] == pytest.approx(500.0)
    assert rows[0]["irmse"] == pytest.approx(1000.0 * (1 / 10.0 - 1 / 10.5), rel=1e-6)  # 1/km
    # a constant model over both images: per-image metrics, then the mean over images
    model.gt = torch.full((1, 1, 4, 4), 10.0)
    both = evaluate(model, data, "kitti")
    second = 9500.0  # 10.5 m predicted where image 2 has 20 m (its 4 valid pixels), in mm
    assert both["samples"] == 2
    assert both["mae"] == pytest.approx((500.0 + second) / 2)


def test_nyu_protocol_and_depth_range_clamp():
    data = GtSet([np.full((3, 3), 2.0)])
    model = Offset(10.0)
    model.gt = data[0]["gt"][None]
    clamped = evaluate(model, data, "nyu", depth_range=[0.0, 2.4])
    assert clamped["rmse"] == pytest.approx(0.4) and clamped["rel"] == pytest.approx(0.2)
    assert clamped["d1"] == 1.0
    free = evaluate(model, data, "nyu")
    assert free["rmse"] == pytest.approx(10.0) and free["d3"] == 0.0
    table = format_table({"offset": clamped}, "nyu")
    assert "REL" in table and "0.200" in table


def test_evaluate_refuses_a_set_without_ground_truth():
    class NoGt(GtSet):
        def __getitem__(self, i):
            sample = super().__getitem__(i)
            del sample["gt"]
            return sample
    model = Offset(0.0)
    model.gt = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="no ground truth"):
        evaluate(model, NoGt([np.ones((2, 2))]), "kitti")


class TwoPaths(nn.Module):
    """``depth = important(x) + 0 * unused(x)``: pruning ``unused`` changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.important = nn.Conv2d(1, 8, 1, bias=False)
        self.unused = nn.Conv2d(1, 8, 1, bias=False)
        nn.init.constant_(self.important.weight, 1.0 / 8)
        nn.init.constant_(self.unused.weight, 1.0)

    def forward(self, rgb, sparse):
        return {"depth": self.important(sparse).sum(1, keepdim=True) + 0.0 * self.unused(sparse).sum(1, keepdim=True)}


def test_prune_test_finds_the_unimportant_layer():
    gts = [np.full((4, 4), 5.0 + i) for i in range(3)]

    class SparseIsGt(GtSet):
        def __getitem__(self, i):
            sample = super().__getitem__(i)
            sample["sparse"] = sample["gt"].clone()
            return sample
    model = TwoPaths()
    report = prune_test(model, SparseIsGt(gts), "kitti", gamma=0.5, eps=[0.01, 0.05, 0.25])
    assert report["baseline"]["rmse"] == pytest.approx(0.0, abs=1e-3)
    rows = {r["layer"]: r for r in report["rows"]}
    assert rows["unused"]["verdict"] == "prune" and rows["unused"]["suggested"] == 4
    assert rows["unused"]["change"] == pytest.approx(0.0, abs=1e-6)
    # half of the important filters off halves the prediction: rmse = gt / 2 in mm
    assert rows["important"]["after"] == pytest.approx(1000 * np.mean([2.5, 3.0, 3.5]), rel=1e-5)
    assert rows["important"]["verdict"] == "more" and rows["important"]["suggested"] == 12
    assert rows["important"]["disabled"] == 4
    # hooks are gone afterwards: the model predicts as before
    table = format_prune_table(report)
    assert "| important | Conv2d | 8 | 4 |" in table


def test_disable_filters_zeroes_exactly_the_chosen_channels():
    conv = nn.Conv2d(2, 6, 3, padding=1)
    x = torch.randn(1, 2, 5, 5)
    before = conv(x)
    handles = disable_filters([conv], torch.tensor([1, 4]))
    after = conv(x)
    for handle in handles:
        handle.remove()
    assert torch.all(after[:, [1, 4]] == 0)
    assert torch.equal(after[:, [0, 2, 3, 5]], before[:, [0, 2, 3, 5]])
    assert torch.equal(conv(x), before)


def test_suggest_width_follows_algorithm_1():
    eps = (0.01, 0.05, 0.25)
    assert suggest_width(64, 0.0, 0.75, eps) == ("prune", 16)
    assert suggest_width(64, 0.03, 0.75, eps) == ("fewer", 40)
    assert suggest_width(64, 0.1, 0.75, eps) == ("keep", 64)
    assert suggest_width(64, 0.5, 0.75, eps) == ("more", 96)
    assert suggest_width(3, 0.0, 0.75, eps) == ("prune", 1)


def test_prune_units_filter_by_prefix():
    model = engine_toy.ToyCompletion(width=4)
    names = [u.name for u in prune_units(model)]
    assert names == ["backbone.enc.0", "backbone.dec.0"]  # the 1-filter heads are skipped
    assert [u.name for u in prune_units(model, ["backbone.dec"])] == ["backbone.dec.0"]
    with pytest.raises(ValueError, match="no layer"):
        prune_units(model, ["decoder"])


def test_cdspn_prunes_whole_unified_blocks():
    model = build("cdspn", scale=32)
    units = {u.name: u for u in prune_units(model)}
    blocks = {n for n, m in model.named_modules() if isinstance(m, UnifiedBlock)}
    inner = {f"{b}.{part}" for b in blocks for part in ("depthwise.0", "pointwise", "pointwise.0")}
    assert not inner & set(units)  # a block's depthwise / pointwise convs are not separate layers
    assert {"cd.e3", "dd.e3", "cd.d5"} <= set(units) & blocks
    unit, block = units["cd.e3"], model.cd.e3
    assert unit.type == "UnifiedBlock" and unit.filters == block.pointwise[0].out_channels
    # disabling a block's filters zeroes those pointwise output channels (the next block's input)
    x = torch.randn(1, block.depthwise[0].in_channels, 8, 8)
    block.eval()
    handles = disable_filters(unit.targets, torch.tensor([0, 3]))
    out = block(x)
    for handle in handles:
        handle.remove()
    assert torch.all(out[:, [0, 3]] == 0) and torch.equal(out[:, 1:3], block(x)[:, 1:3])


def test_resnet_models_prune_whole_basic_blocks():
    model = build("lspkd_student", width=0.5)
    units = prune_units(model)
    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, BasicBlock)]
    by_name = {u.name: u for u in units}
    assert all(by_name[n].type == "BasicBlock" and by_name[n].filters == m.conv2.out_channels for n, m in blocks)
    assert not any(u.name.startswith(tuple(f"{n}." for n, _ in blocks)) for u in units)
    name, block = blocks[0]
    x = torch.randn(1, block.conv1.in_channels, 8, 8)
    block.eval()
    handles = disable_filters(by_name[name].targets, torch.arange(block.conv2.out_channels))
    out = block(x)
    for handle in handles:
        handle.remove()
    assert torch.equal(out, torch.relu(block.shortcut(x)))  # the whole block off: only the shortcut passes
