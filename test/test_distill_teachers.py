"""Teacher sources: live module, TorchScript and ONNX files, lumde model files, prediction cache."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from distill_helpers import TinyCompletion, TinyMonocular, make_batch
from lumde_depth.distill import (CachedTeacher, ModuleTeacher, OnnxTeacher, TeacherError, TorchScriptTeacher,
                                 cache_teacher_predictions, load_teacher)
from lumde_depth.models import registry
from lumde_depth.models.io import save_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def teacher_net():
    torch.manual_seed(0)
    return TinyCompletion(width=3)


def test_module_teacher_is_frozen_and_gives_depth_and_features(teacher_net):
    teacher_net.train()
    teacher = ModuleTeacher(teacher_net)
    assert teacher.kind == "completion" and not teacher_net.training
    assert all(not p.requires_grad for p in teacher_net.parameters())
    batch = make_batch()
    out = teacher(batch, features=("E1", "D1"))
    assert set(out) == {"depth", "E1", "D1"}
    assert out["depth"].shape == (2, 1, 16, 20) and not out["depth"].requires_grad
    assert torch.equal(out["E1"], teacher_net(batch["rgb"], batch["sparse"])["E1"])
    with pytest.raises(TeacherError, match="no feature 'E4'.*'E2'"):
        teacher(batch, features=("E4",))


def test_monocular_teacher_takes_rgb_only():
    teacher = ModuleTeacher(TinyMonocular())
    assert teacher.kind == "monocular"
    batch = make_batch()
    del batch["sparse"]
    assert teacher(batch)["depth"].shape == (2, 1, 16, 20)


def test_torchscript_teacher_gives_depth_only(tmp_path, teacher_net):
    path = tmp_path / "teacher.ts"
    torch.jit.script(teacher_net).save(str(path))
    teacher = load_teacher(path)
    assert isinstance(teacher, TorchScriptTeacher) and teacher.kind == "completion"
    batch = make_batch()
    expected = teacher_net(batch["rgb"], batch["sparse"])["depth"]
    assert torch.allclose(teacher(batch)["depth"], expected, atol=1e-6)
    with pytest.raises(TeacherError, match="depth only"):
        teacher(batch, features=("E1",))


class _DepthOnly(torch.nn.Module):
    """What an export wraps: the depth tensor alone."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.net(rgb, sparse)["depth"]


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_onnx_teacher_matches_the_module(tmp_path, teacher_net, dynamic_batch):
    path = tmp_path / "teacher.onnx"
    batch = make_batch(b=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_DepthOnly(teacher_net), (batch["rgb"][:1], batch["sparse"][:1]), str(path),
                          input_names=["rgb", "sparse"], output_names=["depth"], dynamo=False,
                          dynamic_axes={k: {0: "b"} for k in ("rgb", "sparse", "depth")} if dynamic_batch else None)
    teacher = load_teacher(path)
    assert isinstance(teacher, OnnxTeacher) and teacher.kind == "completion"
    expected = teacher_net(batch["rgb"], batch["sparse"])["depth"]
    assert torch.allclose(teacher(batch)["depth"], expected, atol=1e-5)
    with pytest.raises(TeacherError, match="exported for 16x20 inputs but the batch is 8x20"):
        teacher({k: v[..., :8, :] if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    with pytest.raises(TeacherError, match="depth only"):
        teacher(batch, features=("D1",))


@pytest.fixture
def registered_tiny():
    name = "test_distill_tiny"
    registry.register(name)(TinyCompletion)
    yield name
    registry._BUILDERS.pop(name)


def test_lumde_model_file_gives_a_live_teacher_with_features(tmp_path, registered_tiny):
    model = registry.build(registered_tiny, width=3)
    path = save_model(tmp_path / "teacher.pt", model, {"kind": "completion", "input_size": [16, 20]})
    teacher = load_teacher(path)
    assert isinstance(teacher, ModuleTeacher) and teacher.provides_features
    assert teacher.identity.startswith("teacher.pt@")
    batch = make_batch()
    out = teacher(batch, features=("E2",))
    assert torch.allclose(out["depth"], model(batch["rgb"], batch["sparse"])["depth"])


def test_missing_teacher_path_is_a_clear_error(tmp_path):
    with pytest.raises(TeacherError, match="teacher not found"):
        load_teacher(tmp_path / "nope.onnx")
    with pytest.raises(TeacherError, match="no index.json"):
        load_teacher(tmp_path)


@pytest.mark.parametrize("dtype,rtol", [("float32", 0.0), ("float16", 2.0 ** -11)])
def test_cache_round_trip_is_keyed_by_name(tmp_path, teacher_net, dtype, rtol):
    batches = [make_batch(b=2, seed=s) for s in range(3)]
    index = cache_teacher_predictions(teacher_net, batches, tmp_path / "cache", dtype=dtype, progress=False)
    meta = json.loads(index.read_text())
    assert meta["input_size"] == [16, 20] and meta["dtype"] == dtype and len(meta["files"]) == 6
    assert meta["teacher"] == ModuleTeacher(teacher_net).identity
    cached = load_teacher(tmp_path / "cache")
    assert isinstance(cached, CachedTeacher) and len(cached) == 6
    live = ModuleTeacher(teacher_net)
    # frames regrouped across the original batches: lookup goes by name, not by position
    mixed = {k: torch.cat([batches[2][k][1:], batches[0][k][:1]]) for k in ("rgb", "sparse")}
    mixed["name"] = [batches[2]["name"][1], batches[0]["name"][0]]
    expected = live(mixed)["depth"]
    got = cached(mixed)["depth"]
    assert got.dtype == torch.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=rtol, atol=0)
    with pytest.raises(TeacherError, match="'seq/unknown'.* not in the teacher cache"):
        cached({**mixed, "name": ["seq/unknown", mixed["name"][1]]})
    with pytest.raises(TeacherError, match="holds 16x20 predictions but the batch is 8x20"):
        cached({"rgb": mixed["rgb"][..., :8, :], "name": mixed["name"]})
    with pytest.raises(TeacherError, match="depth only"):
        cached(mixed, features=("E1",))


def test_cache_refuses_duplicate_names(tmp_path, teacher_net):
    batches = [make_batch(names=["a", "b"]), make_batch(seed=1, names=["b", "c"])]
    with pytest.raises(TeacherError, match="'b' occurs twice"):
        cache_teacher_predictions(teacher_net, batches, tmp_path / "cache", progress=False)
