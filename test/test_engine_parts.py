"""Engine pieces: learning-rate policy, stages, checkpoints, RNG capture, logs, seeded samples."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lumde_depth.config import ConfigError
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.datasets import SeededSamples
from lumde_depth.engine.experiment import OptimConfig, StageConfig, load_experiment
from lumde_depth.engine.logs import MetricsLog, read_rows
from lumde_depth.engine.schedule import check_stage_prefixes, lr_at, stage_at, trainable

import engine_toy
from engine_toy import one_thread  # noqa: F401  (autouse fixture)


def test_stage_at_and_lr_policies():
    stages = [StageConfig(steps=10, lr=1e-3), StageConfig(steps=5, lr=1e-4)]
    assert [stage_at(stages, s) for s in (0, 9, 10, 14)] == [(0, 0), (0, 0), (1, 10), (1, 10)]
    step = OptimConfig(policy="step", step_size=4, gamma=0.5)
    assert [lr_at(step, stages[0], t) for t in (0, 3, 4, 8)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])
    poly = OptimConfig(policy="poly", power=1.0)
    assert [lr_at(poly, stages[0], t) for t in (0, 5, 9)] == pytest.approx([1e-3, 5e-4, 1e-4])
    warm = OptimConfig(warmup_steps=4)
    assert [lr_at(warm, stages[1], t) for t in (0, 3, 4)] == pytest.approx([2.5e-5, 1e-4, 1e-4])


def test_trainable_prefixes_and_their_check():
    model = engine_toy.ToyCompletion(width=4)
    stage = StageConfig(train=["backbone"], freeze=["backbone.head"])
    chosen = {n for n, _ in model.named_parameters() if trainable(n, stage)}
    assert chosen == {"backbone.enc.0.weight", "backbone.enc.0.bias", "backbone.dec.0.weight", "backbone.dec.0.bias"}
    assert not trainable("backbone_extra.w", StageConfig(train=["backbone"]))  # prefixes match whole names
    with pytest.raises(ConfigError, match=r"stages\[1\]\.freeze: 'refin' names no parameter.*backbone, refine"):
        check_stage_prefixes(model, [StageConfig(), StageConfig(freeze=["refin"])])
    with pytest.raises(ConfigError, match="trains no parameter"):
        check_stage_prefixes(model, [StageConfig(train=["refine"], freeze=["refine"])])


def test_experiment_level_checks(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: {method: lspkd, w1: 0.0, terms: []}\n")
    assert load_experiment(path).total_steps == 1000
    with pytest.raises(ConfigError, match="stages' is empty"):
        load_experiment(path, ["stages=[]"])
    with pytest.raises(ConfigError, match="depth_range"):
        load_experiment(path, ["data.depth_range=[10, 1]"])
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_x'"):
        load_experiment(path, ["imports=[no_such_module_x]"])
    with pytest.raises(ConfigError, match=r"'prune.metric' = 'd1' is not a kitti metric"):
        load_experiment(path, ["prune.metric=d1"])
    assert load_experiment(path, ["prune.metric=d1", "data.protocol=nyu"]).prune.metric == "d1"
    with pytest.raises(ConfigError, match=r"loss: .*'lambda1' applies to method 'blackbox'"):
        load_experiment(path, ["loss.lambda1=0.1"])


def test_checkpoints_are_atomic_pruned_and_safe_to_load(tmp_path):
    for step in (5, 10, 15):
        ckpt.save_checkpoint(tmp_path, {"step": step, "model": {"w": torch.full((2,), float(step))}}, keep=2)
    (ckpt.checkpoint_dir(tmp_path) / ".step_00000020.pt.tmp").write_bytes(b"partial write")
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000010.pt", "step_00000015.pt"]
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert state["step"] == 15 and torch.equal(state["model"]["w"], torch.full((2,), 15.0))
    model_file = tmp_path / "m.pt"
    torch.save({"format": "lumde_depth.model/1"}, model_file)
    with pytest.raises(ckpt.CheckpointError, match="model.init"):
        ckpt.load_checkpoint(model_file)
    assert ckpt.latest_checkpoint(tmp_path / "empty") is None


def test_rng_capture_restores_every_generator(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    torch.rand(3), np.random.rand(), random.random(), np.random.randn()
    ckpt.save_checkpoint(tmp_path, {"step": 1, "rng": ckpt.capture_rng()}, keep=1)
    expected = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)], np.random.randn())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    ckpt.restore_rng(ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))["rng"])
    got = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)], np.random.randn())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert expected[2] == got[2] and expected[3] == got[3]


def test_resumed_log_drops_rows_after_the_checkpoint(tmp_path):
    log = MetricsLog(tmp_path)
    for step in (10, 20, 30):
        log.write("train", {"step": step, "total": step / 10})
    log.write("val", {"step": 20, "rmse": 1.0})
    log.write("val", {"step": 30, "rmse": 0.5})
    MetricsLog(tmp_path, resume_step=20).write("train", {"step": 30, "total": 9.0})
    rows = read_rows(tmp_path / "log.jsonl")
    assert [(r["kind"], r["step"]) for r in rows] == [("train", 10), ("train", 20), ("val", 20), ("train", 30)]
    assert (tmp_path / "train.csv").read_text().splitlines() == ["step,total", "10,1.0", "20,2.0", "30,9.0"]
    assert (tmp_path / "val.csv").read_text().splitlines() == ["step,rmse", "20,1.0"]


def test_seeded_samples_depend_on_seed_epoch_index_only():
    data = engine_toy.ToyScenes("x", "train", frames=8)
    wrapped = SeededSamples(data, seed=5)
    flips = []
    for epoch in (0, 1):
        wrapped.epoch = epoch
        flips.append([wrapped[i]["rgb"] for i in range(8)])
    state = torch.random.get_rng_state()
    wrapped.epoch = 0
    again = [wrapped[i]["rgb"] for i in reversed(range(8))][::-1]  # other order, same samples
    assert all(torch.equal(a, b) for a, b in zip(flips[0], again))
    assert not all(torch.equal(a, b) for a, b in zip(flips[0], flips[1]))  # a new epoch draws anew
    assert torch.equal(state, torch.random.get_rng_state())  # the trainer's generator is untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_a_gpu_is_a_config_error():
    from lumde_depth.engine.distributed import init_world, pick_device
    with pytest.raises(ConfigError, match="device=cpu or device=auto"):
        pick_device("cuda")
    world = init_world("auto")
    assert (world.rank, world.size, world.device.type, world.is_main) == (0, 1, "cpu", True)
