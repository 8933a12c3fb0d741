"""LUMDE end to end: loss config, training and distillation through the engine (critic optimizer,
exact resume), the monocular evaluation protocols, ONNX export and inference."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import Dataset

import engine_toy  # noqa: F401  (registers toy_completion)
from engine_toy import one_thread  # noqa: F401  (autouse fixture)
from lumde_depth.cli.main import main
from lumde_depth.config import ConfigError, from_dict, load
from lumde_depth.distill.losses import LossConfig, build_loss
from lumde_depth.distill.lumde import LumdeLoss
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.evaluate import evaluate
from lumde_depth.engine.experiment import load_experiment
from lumde_depth.engine.objective import Objective, needs_teacher
from lumde_depth.engine.trainer import build_optimizer, run
from lumde_depth.geometry.scale import lidar_scale
from lumde_depth.inference import DepthCompleter
from lumde_depth.models import build
from lumde_depth.models.io import load_model, save_model

from test_engine_train import ROOT, env

SIZE = [64, 128]
CRITIC = {"grid": SIZE, "patch": 16, "dim": 16, "layers": 1, "heads": 2}
KD_ADV = {"pixel": 1.0, "pairwise": 1.0, "adversarial": 0.01}
KD_OFF = {"pixel": 0.0, "pairwise": 0.0, "adversarial": 0.0}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Tiny synthetic drives: training triplets (kitti_raw, seed 0), held-out frames with ground truth
    (kitti_dc, seed 1)."""
    from lumde_depth.data.synth.generate import SynthConfig, generate
    root = tmp_path_factory.mktemp("lumde_data")
    common = ["camera_scale=0.2", "workers=1", "lidar.azimuth_step_deg=1.0"]
    generate(load(SynthConfig, None, ["frames=6", "sequences=1", "seed=0", "layout=kitti_raw", *common]),
             root / "raw", progress=False)
    generate(load(SynthConfig, None, ["frames=3", "sequences=1", "val_sequences=1", "seed=1", "layout=kitti_dc",
                                      *common]), root / "dc", progress=False)
    return {"raw": root / "raw", "dc": root / "dc"}


def experiment(data: dict[str, Path], model: str = "lumde_student", kd: dict | None = None, steps: int = 2,
               val: bool = False, teacher: str | None = None, scales: tuple[int, ...] = (0, 1), **loss) -> dict:
    return {
        "name": "lumde_test", "seed": 1, "deterministic": True, "device": "cpu",
        "model": {"name": model, "kind": "monocular"},
        "data": {"kind": "kitti_raw", "root": str(data["raw"]), "train_split": "all",
                 "train_kwargs": {"size": SIZE, "augment": True}, "val_kind": "kitti_dc", "val_root": str(data["dc"]),
                 "val_split": "val" if val else "", "val_kwargs": {"size": SIZE, "cameras": ["image_02"]},
                 "batch_size": 2, "num_workers": 0, "depth_range": [0.1, 100.0], "protocol": "mono"},
        "loss": {"method": "lumde", "lumde": {"pose_encoder": "resnet18" if model == "lumde_teacher" else "separable",
                                              "selfsup": {"scales": list(scales)}, "kd": kd or KD_OFF, "critic": CRITIC,
                                              **loss}},
        "teacher": {"source": teacher},
        "stages": [{"name": "all", "steps": steps, "lr": 1e-4}],
        "checkpoint": {"every": 2, "keep": 3}, "log": {"every": 1, "progress": False},
    }


def write(tmp_path: Path, cfg: dict, name: str = "lumde.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def random_teacher(tmp_path: Path) -> Path:
    """An untrained teacher model file (what distillation needs: a monocular net with E4 / D3)."""
    torch.manual_seed(0)
    return save_model(tmp_path / "teacher.pt", build("lumde_teacher"),
                      {"input_size": SIZE, "depth_range": [0.1, 100.0], "kind": "monocular"})


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------- configuration
def test_lumde_loss_section_is_strict_and_complete():
    cfg = from_dict(LossConfig, {"method": "lumde", "lumde": {"kd": {"adversarial": 0.05}}})
    assert cfg.lumde.kd.adversarial == 0.05 and cfg.lumde.selfsup.ssim_weight == 0.85
    assert from_dict(LossConfig, {"method": "lumde"}).lumde is not None  # the defaults
    with pytest.raises(ConfigError, match="'lumde' applies to method 'lumde'"):
        from_dict(LossConfig, {"method": "lspkd", "lumde": {}})
    with pytest.raises(ConfigError, match="adversarial"):
        from_dict(LossConfig, {"method": "lumde", "lumde": {"kd": {"adversarail": 0.1}}})
    assert needs_teacher(from_dict(LossConfig, {"method": "lumde"}))
    assert not needs_teacher(from_dict(LossConfig, {"method": "lumde", "lumde": {"kd": KD_OFF}}))


def test_build_loss_checks_depth_range_and_teacher_kind():
    student = build("lumde_student")
    loss = build_loss({"method": "lumde", "lumde": {"kd": KD_ADV, "critic": CRITIC}}, student=student,
                      teacher=build("lumde_teacher"))
    assert isinstance(loss, LumdeLoss) and loss.critic is not None
    assert loss.required_features == ("E4", "D3")
    with pytest.raises(ConfigError, match="max_depth"):
        build_loss({"method": "lumde", "lumde": {"max_depth": 80.0}}, student=student)
    with pytest.raises(ConfigError, match="monocular"):
        build_loss({"method": "lumde"}, student=student, teacher=build("toy_completion"))


def test_critic_has_its_own_optimizer(tmp_path, data):
    cfg = load_experiment(write(tmp_path, experiment(data, kd=KD_ADV)))
    model = build("lumde_student")
    loss = build_loss(cfg.loss, student=model)
    student_params = {id(p) for g in build_optimizer(cfg, Objective(model, loss, "monocular")).param_groups
                      for p in g["params"]}
    critic_params = {id(p) for p in loss.critic.parameters()}
    assert critic_params and not critic_params & student_params
    assert {id(p) for p in loss.pose.parameters()} <= student_params  # the pose net learns with the student
    critic_opt = loss.critic_optimizer()
    assert critic_opt.param_groups[0]["lr"] == 1e-4
    assert tuple(critic_opt.param_groups[0]["betas"]) == (0.5, 0.9)


def test_critic_learns_only_in_its_own_step():
    torch.manual_seed(0)
    loss = LumdeLoss(from_dict(LossConfig, {"method": "lumde", "lumde": {"kd": KD_ADV, "critic": CRITIC}}).lumde)
    student_depth = (1.0 + 10.0 * torch.rand(2, 1, *SIZE)).requires_grad_(True)
    adversarial = -loss.critic(student_depth).mean()  # the student's term
    adversarial.backward()
    assert student_depth.grad is not None and all(p.grad is None for p in loss.critic.parameters())
    before = [p.detach().clone() for p in loss.critic.parameters()]
    parts = loss.critic_step(student_depth.detach(), 1.0 + 10.0 * torch.rand(2, 1, *SIZE), loss.critic_optimizer())
    assert {"critic", "wasserstein", "gp"} <= parts.keys()
    assert any(not torch.equal(a, b) for a, b in zip(before, loss.critic.parameters()))
    assert not any(p.requires_grad for p in loss.critic.parameters())  # frozen again for the student


def test_shipped_lumde_configs_pair_up():
    root = Path(__file__).resolve().parents[1] / "config" / "train"
    for prefix in ("lumde_{}_kitti", "synthetic_lumde_{}"):
        teacher, alone, adv, noadv = (load_experiment(root / f"{prefix.format(n)}.yaml")
                                      for n in ("teacher", "student", "distill", "distill_noadv"))
        assert teacher.model.name == "lumde_teacher" and alone.model.name == adv.model.name == "lumde_student"
        assert {c.model.kind for c in (teacher, alone, adv, noadv)} == {"monocular"}
        assert adv.loss["lumde"]["kd"]["adversarial"] > 0 and noadv.loss["lumde"]["kd"]["adversarial"] == 0
        assert adv.teacher.source == noadv.teacher.source and adv.teacher.source.endswith(f"{teacher.name}/model.pt")
        assert alone.total_steps == adv.total_steps == noadv.total_steps == teacher.total_steps


# ---------------------------------------------------------------------------- training
def test_train_teacher_with_the_cli_then_eval_mono(tmp_path, data, capsys):
    config = write(tmp_path, experiment(data, model="lumde_teacher", val=True))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    model, meta = load_model(tmp_path / "run" / "model.pt")
    assert meta["kind"] == "monocular" and model.arch_name == "lumde_teacher"
    assert {"abs_rel", "rmse", "d1", "scale"} <= meta["val_metrics"].keys()
    logged = rows(tmp_path / "run" / "log.jsonl")
    train_rows = [r for r in logged if "photometric" in r]
    assert len(train_rows) == 2 and all(0 < r["photometric"] < 1 and "critic" not in r for r in train_rows)
    capsys.readouterr()
    assert main(["eval", "--config", str(config), "--out", str(tmp_path / "run"), "--protocol", "mono_lidar",
                 "data.val_split=val"]) == 0
    out = capsys.readouterr().out
    assert "mono_lidar protocol" in out and "AbsRel" in out and "δ1" in out


def test_distill_with_the_adversarial_term_alternates_steps(tmp_path, data):
    teacher = random_teacher(tmp_path)
    config = write(tmp_path, experiment(data, kd=KD_ADV, steps=2, teacher=str(teacher)))
    assert main(["distill", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    logged = [r for r in rows(tmp_path / "run" / "log.jsonl") if "photometric" in r]
    assert len(logged) == 2
    for row in logged:
        assert {"kd_pixel", "kd_pairwise", "adversarial", "critic", "wasserstein", "gp"} <= row.keys()
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    assert all(s["step"] == 2 for s in state["critic_optimizer"]["state"].values())  # one critic step per step
    assert any(k.startswith("critic.") for k in state["loss"])
    assert not any(k.startswith(("critic.", "pose.")) for k in load_model(tmp_path / "run" / "model.pt")[0].state_dict())


def test_lumde_train_refuses_distillation_terms_without_a_teacher(tmp_path, data, capsys):
    config = write(tmp_path, experiment(data, kd=KD_ADV))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "lumde distill" in capsys.readouterr().err


def test_resume_with_the_critic_is_exact(tmp_path, data):
    teacher = random_teacher(tmp_path)
    cfg = experiment(data, kd=KD_ADV, steps=4, teacher=str(teacher))
    whole = run(load_experiment(write(tmp_path, cfg)), tmp_path / "whole", distill=True)
    resumed_dir = tmp_path / "resumed"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt.list_checkpoints(tmp_path / "whole")[0], resumed_dir / "checkpoints")  # the step-2 state
    assert ckpt.latest_checkpoint(resumed_dir).name == "step_00000002.pt"
    resumed = run(load_experiment(write(tmp_path, cfg)), resumed_dir, resume=True, distill=True)
    assert resumed.step == whole.step == 4
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    final = {d: ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / d)) for d in ("whole", "resumed")}
    for key, value in final["whole"]["loss"].items():  # critic and pose net too
        assert torch.equal(value, final["resumed"]["loss"][key]), key
    critic = [final[d]["critic_optimizer"]["state"][0]["exp_avg"] for d in ("whole", "resumed")]
    assert torch.equal(*critic)


# ---------------------------------------------------------------------------- evaluation
class ScaledScenes(Dataset):
    """Frames whose prediction (see ScaledNet) is the ground truth times 3; LiDAR = ground truth at
    every 5th pixel."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> dict:
        gt = torch.linspace(2.0, 40.0, 16 * 24).view(1, 16, 24) + index
        sparse = torch.where(torch.rand(1, 16, 24, generator=torch.Generator().manual_seed(index)) < 0.2, gt, 0.0)
        return {"rgb": (gt / 50.0).expand(3, -1, -1).clone(), "sparse": sparse, "gt": gt, "K": torch.eye(3),
                "name": str(index)}


class ScaledNet(torch.nn.Module):
    def forward(self, rgb: torch.Tensor) -> dict:
        return {"depth": rgb[:, :1] * 50.0 * 3.0}


def test_mono_protocols_recover_the_scale():
    median = evaluate(ScaledNet(), ScaledScenes(), "mono", kind="monocular")
    lidar = evaluate(ScaledNet(), ScaledScenes(), "mono_lidar", kind="monocular")
    for metrics in (median, lidar):
        assert metrics["abs_rel"] < 1e-5 and metrics["d1"] == 1.0 and metrics["samples"] == 2
        assert metrics["scale"] == pytest.approx(1 / 3, rel=1e-5)
    kitti = evaluate(ScaledNet(), ScaledScenes(), "kitti", kind="monocular")
    assert kitti["rmse"] > 1000  # without scaling the error is plain


def test_lidar_scale():
    rng = np.random.default_rng(0)
    pred = rng.uniform(1, 20, (30, 40)).astype(np.float32)
    sparse = np.where(rng.random((30, 40)) < 0.1, 2.5 * pred, 0).astype(np.float32)
    sparse[0, :5] = 1000.0  # a few outliers (occlusion artefacts) do not move the median
    assert lidar_scale(pred, sparse) == pytest.approx(2.5, rel=1e-6)
    assert np.isnan(lidar_scale(pred, np.zeros_like(pred)))
    with pytest.raises(ValueError, match="differ in size"):
        lidar_scale(pred, sparse[:10])


# ---------------------------------------------------------------------------- deployment
def test_exported_student_runs_in_inference_like_pytorch(tmp_path):
    torch.manual_seed(0)
    model = build("lumde_student")
    with torch.no_grad():  # a non-trivial BatchNorm state, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = save_model(tmp_path / "student.pt", model, {"input_size": [64, 192], "depth_range": [0.1, 100.0],
                                                        "kind": "monocular"})
    assert main(["export", str(path), "--out", str(tmp_path / "exported"), "--format", "onnx"]) == 0
    onnx_path = tmp_path / "exported" / "student.onnx"
    rgb = np.random.default_rng(0).integers(0, 256, (94, 310, 3), dtype=np.uint8)
    K = np.array([[180.0, 0.0, 150.0], [0.0, 180.0, 45.0], [0.0, 0.0, 1.0]])
    torch_run = DepthCompleter.load(path, backend="torch", device="cpu", warmup=0)
    onnx_run = DepthCompleter.load(onnx_path, backend="onnxruntime", warmup=0)
    assert torch_run.kind == onnx_run.kind == "monocular"
    expected, got = torch_run.complete(rgb, None, K), onnx_run.complete(rgb, None, K)
    assert expected.shape == (94, 310) and float(expected.min()) >= 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # and the completer's network input is the model's own
        direct = model.eval()(torch.from_numpy(torch_run.backend.rgb))["depth"][0, 0].numpy()
    np.testing.assert_allclose(torch_run.backend.run(), direct, rtol=1e-5)


@pytest.mark.slow
def test_torchrun_distill_with_the_critic(tmp_path, data):
    """Two gloo processes: the critic's gradients are averaged, so both ranks end with the same critic."""
    teacher = random_teacher(tmp_path)
    # every disparity head in the loss: DistributedDataParallel needs a gradient for every trained parameter
    path = write(tmp_path, experiment(data, kd=KD_ADV, steps=2, teacher=str(teacher), scales=(0, 1, 2, 3)))
    script = tmp_path / "ddp_run.py"
    script.write_text(
        "import os, torch\n"
        "from lumde_depth.engine.experiment import load_experiment\n"
        "from lumde_depth.engine.trainer import run\n"
        f"result = run(load_experiment({str(path)!r}), {str(tmp_path / 'run')!r}, distill=True)\n"
        f"torch.save(result.model.state_dict(), {str(tmp_path)!r} + f'/rank{{os.environ[\"RANK\"]}}.pt')\n")
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script)], cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=500)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    assert state["critic_optimizer"]["state"]
