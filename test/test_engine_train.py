"""The training engine: staged training, model files, exact resume after SIGKILL, DDP, distillation."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import engine_toy  # noqa: F401  (registers the toy_completion model)
from engine_toy import one_thread  # noqa: F401  (autouse fixture)
from lumde_depth.config import ConfigError
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.experiment import load_experiment
from lumde_depth.engine.logs import read_rows
from lumde_depth.engine.trainer import run
from lumde_depth.models.io import load_model, save_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

TOY = {
    "name": "toy", "seed": 3, "deterministic": True, "device": "cpu", "imports": ["engine_toy"],
    "model": {"name": "toy_completion", "kwargs": {"width": 8}},
    "data": {"kind": "engine_toy:ToyScenes", "root": "unused", "batch_size": 4, "num_workers": 0,
             "val_split": "", "depth_range": [0.0, 30.0]},
    "loss": {"method": "lspkd", "w1": 0.0, "terms": []},
    "stages": [{"name": "all", "steps": 30, "lr": 0.01}],
    "checkpoint": {"every": 10, "keep": 2},
    "log": {"every": 5, "progress": False},
}


def write_config(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(yaml.safe_dump(TOY))
    for key, value in changes.items():
        node = data
        *parents, last = key.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "OMP_NUM_THREADS": "1"}


def lumde(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lumde_depth.cli.main", *args], cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def state_of(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


def test_staged_training_freezes_and_writes_model_file(tmp_path):
    path = write_config(tmp_path, stages=[
        {"name": "backbone", "steps": 10, "lr": 0.01, "freeze": ["refine"], "target": "coarse_depth"},
        {"name": "refinement", "steps": 10, "lr": 0.01, "train": ["refine"]},
        {"name": "all", "steps": 10, "lr": 0.001}], checkpoint__keep=3)
    cfg = load_experiment(path)
    result = run(cfg, tmp_path / "run")
    states = {p.name: ckpt.load_checkpoint(p)["model"] for p in ckpt.list_checkpoints(tmp_path / "run")}
    s10, s20, s30 = states["step_00000010.pt"], states["step_00000020.pt"], states["step_00000030.pt"]
    # stage 1 trains the backbone on coarse_depth: the refinement keeps its initial weights
    torch.manual_seed(cfg.seed)
    fresh = _named_toy(8).state_dict()
    assert torch.equal(s10["refine.weight"], fresh["refine.weight"])
    assert not torch.equal(s10["backbone.head.weight"], fresh["backbone.head.weight"])
    # stage 2 trains only the refinement
    assert torch.equal(s20["backbone.enc.0.weight"], s10["backbone.enc.0.weight"])
    assert not torch.equal(s20["refine.weight"], s10["refine.weight"])
    # stage 3 trains everything
    assert not torch.equal(s30["backbone.enc.0.weight"], s20["backbone.enc.0.weight"])
    model, meta = load_model(result.model_path)
    assert meta["input_size"] == [16, 16] and meta["depth_range"] == [0.0, 30.0]
    assert meta["kind"] == "completion" and meta["trained_on"].startswith("engine_toy:ToyScenes")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), s30.values()))
    rows = [r for r in read_rows(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    assert [r["stage"] for r in rows] == ["backbone"] * 2 + ["refinement"] * 2 + ["all"] * 2
    assert (tmp_path / "run" / "train.csv").read_text().splitlines()[0].startswith("step,epoch,stage,lr,")


def test_training_reduces_the_loss(tmp_path):
    cfg = load_experiment(write_config(tmp_path, stages=[{"steps": 40, "lr": 0.01}], log__every=1))
    run(cfg, tmp_path / "run")
    losses = [r["total"] for r in read_rows(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])


def test_existing_run_needs_resume_and_the_same_config(tmp_path):
    path = write_config(tmp_path, stages=[{"steps": 10, "lr": 0.01}])
    run(load_experiment(path), tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        run(load_experiment(path), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"differs .* at optim\.betas"):
        run(load_experiment(path, ["optim.betas=[0.8, 0.99]"]), tmp_path / "run", resume=True)
    # a finished run resumed with more steps continues from its last checkpoint... only if the config matches
    result = run(load_experiment(path), tmp_path / "run", resume=True)
    assert result.step == 10


def test_sigkill_then_resume_gives_the_same_weights(tmp_path):
    """Killed with SIGKILL after a checkpoint, resumed, and bit-identical to an uninterrupted run."""
    steps = 240
    path = write_config(tmp_path, stages=[{"name": "a", "steps": steps // 2, "lr": 0.01},
                                          {"name": "b", "steps": steps // 2, "lr": 0.003, "freeze": ["refine"]}],
                        optim={"policy": "step", "step_size": 50, "gamma": 0.7})
    reference = lumde("train", "--config", str(path), "--out", str(tmp_path / "ref"))
    killed = lumde("train", "--config", str(path), "--out", str(tmp_path / "killed"))
    deadline = time.monotonic() + 120
    while not ckpt.list_checkpoints(tmp_path / "killed"):
        assert killed.poll() is None, killed.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert reference.wait(timeout=300) == 0, reference.communicate()[1]
    done = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "killed"))["step"]
    assert done < steps and not (tmp_path / "killed" / "model.pt").exists(), "the run ended before the kill"
    resumed = lumde("train", "--config", str(path), "--out", str(tmp_path / "killed"), "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref, res = state_of(tmp_path / "ref" / "model.pt"), state_of(tmp_path / "killed" / "model.pt")
    assert ref.keys() == res.keys()
    assert all(torch.equal(ref[k], res[k]) for k in ref)
    ref_opt = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "ref"))["optimizer"]["state"]
    res_opt = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "killed"))["optimizer"]["state"]
    assert all(torch.equal(ref_opt[i]["exp_avg_sq"], res_opt[i]["exp_avg_sq"]) for i in ref_opt)
    steps_logged = [r["step"] for r in read_rows(tmp_path / "killed" / "log.jsonl") if r["kind"] == "train"]
    assert steps_logged == list(range(5, steps + 1, 5))


def test_torchrun_two_gloo_processes(tmp_path):
    """Two CPU processes: identical final weights on both ranks, only rank 0 writes."""
    path = write_config(tmp_path, stages=[{"steps": 12, "lr": 0.01}], checkpoint__every=6, data__batch_size=2)
    script = tmp_path / "ddp_run.py"
    script.write_text(
        "import os, sys, torch\n"
        "from lumde_depth.engine.experiment import load_experiment\n"
        "from lumde_depth.engine.trainer import run\n"
        f"result = run(load_experiment({str(path)!r}), {str(tmp_path / 'run')!r})\n"
        f"torch.save(result.model.state_dict(), {str(tmp_path)!r} + f'/rank{{os.environ[\"RANK\"]}}.pt')\n"
        "print('checksums', result.checksums)\n")
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script)], cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    assert out.count("checksums") == 2
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["step_00000006.pt", "step_00000012.pt"]
    rows = [r for r in read_rows(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in rows] == [5, 10, 12]  # one writer: no duplicated rows
    (start,) = [r for r in read_rows(tmp_path / "run" / "log.jsonl") if r["kind"] == "start"]
    assert (start["world_size"], start["batch_per_process"], start["global_batch"]) == (2, 2, 4)
    assert "world size 2 process(es), batch 2 per process = global batch 4" in out
    # two processes of batch 2 each see 4 distinct samples per step: 24 samples -> 6 steps per epoch
    assert rows[-1]["epoch"] == 2
    single = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))["model"]
    assert all(torch.equal(single[k], rank0[k]) for k in rank0)


def test_distill_from_a_teacher_file_trains_the_adapters(tmp_path):
    torch.manual_seed(0)
    teacher = save_model(tmp_path / "teacher.pt", _named_toy(12), {"kind": "completion"})
    path = write_config(tmp_path, loss={"method": "lspkd", "w1": 1.0,
                                        "terms": [{"kind": "lspkd", "weight": 1.0, "layers": ["E1", "D1"]},
                                                  {"kind": "att", "weight": 10.0, "layers": ["D1"]}]},
                        teacher={"source": str(teacher)}, stages=[{"steps": 10, "lr": 0.01}])
    cfg = load_experiment(path)
    result = run(cfg, tmp_path / "run", distill=True)
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    # the 1x1 adapters of LSPKD (teacher 12 channels <- student 8) are saved and optimised
    adapters = {k: v for k, v in state["loss"].items() if "phi" in k and k.endswith("weight")}
    assert {tuple(v.shape) for v in adapters.values()} == {(12, 8, 1, 1)} and len(adapters) == 2
    assert len(state["optimizer"]["state"]) == len(list(result.model.parameters())) + 2 * len(adapters)
    parts = [r for r in read_rows(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"][-1]
    assert {"gt", "teacher_depth", "total"} <= parts.keys()
    assert load_model(result.model_path)[1]["teacher"] == str(teacher)
    with pytest.raises(ConfigError, match="lumde distill"):
        run(cfg, tmp_path / "plain")


def _named_toy(width: int):
    from lumde_depth.models import build
    return build("toy_completion", width=width)


def test_bf16_autocast_on_cpu_trains_and_resumes(tmp_path):
    """precision: bf16 runs the CPU steps under torch.autocast(bfloat16): finite, decreasing loss, and a resume."""
    path = write_config(tmp_path, precision="bf16", stages=[{"steps": 40, "lr": 0.01}], log__every=1)
    seen = []
    original = torch.autocast.__init__

    def spy(self, device_type, *args, **kwargs):
        seen.append((device_type, kwargs.get("dtype")))
        original(self, device_type, *args, **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.autocast, "__init__", spy)
        run(load_experiment(path), tmp_path / "run")
    assert seen and set(seen) == {("cpu", torch.bfloat16)}
    losses = [r["total"] for r in read_rows(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    assert all(map(math.isfinite, losses)) and sum(losses[-10:]) < 0.5 * sum(losses[:10])
    # an interrupted run (its last checkpoint and model file gone) resumes under bf16 to the same weights
    reference = state_of(tmp_path / "run" / "model.pt")
    ckpt.latest_checkpoint(tmp_path / "run").unlink()
    (tmp_path / "run" / "model.pt").unlink()
    result = run(load_experiment(path), tmp_path / "run", resume=True)
    assert result.step == 40
    resumed = state_of(tmp_path / "run" / "model.pt")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    with pytest.raises(ConfigError, match="differs .* at precision"):
        run(load_experiment(path, ["precision=fp32"]), tmp_path / "run", resume=True)


def test_fp16_needs_cuda():
    from lumde_depth.engine.trainer import autocast_dtype
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        autocast_dtype("fp16", torch.device("cpu"))
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("auto", torch.device("cuda")) is torch.float16
