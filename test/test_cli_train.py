"""The train / distill / eval / prune-test commands and the shipped experiment configs."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import engine_toy  # noqa: F401  (registers the toy_completion model)
from engine_toy import one_thread  # noqa: F401  (autouse fixture)
from lumde_depth.cli.main import main
from lumde_depth.config import ConfigWarning
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.experiment import load_experiment
from lumde_depth.engine.objective import needs_teacher, parse_loss_config
from lumde_depth.engine.schedule import check_stage_prefixes
from lumde_depth.models import build, names
from lumde_depth.models.io import load_model, save_model

from test_engine_train import env, write_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "config" / "train").glob("*.yaml"))


def test_there_is_a_config_per_paper_experiment():
    stems = {p.stem for p in CONFIGS}
    for needed in ("lspkd_kitti_teacher", "lspkd_kitti_student", "lspkd_kitti_lspkd", "lspkd_kitti_prob",
                   "lspkd_kitti_att", "lspkd_kitti_lspkd_prob_att", "lspkd_kitti_spkd", "lspkd_nyu_teacher",
                   "lspkd_nyu_student", "lspkd_nyu_lspkd", "cdspn_x32", "cdspn_x64", "cdspn_x96",
                   "cdspn_x32_distill", "cdspn_x64_distill", "cdspn_x96_distill", "synthetic_teacher",
                   "synthetic_student", "synthetic_lspkd", "synthetic_cdspn_x32", "synthetic_cdspn_x32_distill"):
        assert needed in stems


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(path):
    cfg = load_experiment(path)
    assert cfg.name == path.stem
    assert cfg.model.name in names()
    assert cfg.optim.name in ("adam", "adamw") and cfg.total_steps > 0
    if path.stem.startswith(("lspkd_", "cdspn_")):  # the papers' Adam: lr 1e-3 at the start
        assert cfg.optim.name == "adam" and cfg.stages[0].lr == pytest.approx(1e-3)
    assert bool(cfg.teacher.source) == needs_teacher(parse_loss_config(cfg.loss))


def test_cdspn_stages_name_real_modules_and_outputs():
    cfg = load_experiment(CONFIGS[[p.stem for p in CONFIGS].index("cdspn_x32")])
    model = build(cfg.model.name, **cfg.model.kwargs)
    check_stage_prefixes(model, cfg.stages)
    out = model(torch.rand(1, 3, 32, 64), torch.rand(1, 1, 32, 64))
    assert {s.target for s in cfg.stages} <= out.keys()
    assert [s.name for s in cfg.stages] == ["backbone", "refinement", "all"]


def test_a_wrong_key_fails_before_any_work_naming_the_closest(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "optim.weight_decy=0.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'optim.weight_decy'" in err and "did you mean 'optim.weight_decay'" in err
    bad = yaml.safe_load(path.read_text())
    bad["stages"] = [{"stpes": 3}]
    path.write_text(yaml.safe_dump(bad))
    assert main(["distill", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'stages[0].stpes'" in err and "did you mean 'stages[0].steps'" in err
    assert not (tmp_path / "run").exists()
    path = write_config(tmp_path, loss={"method": "lspkd", "w1": 0.0, "terms": [{"kind": "lspdk"}]})
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "lspdk" in capsys.readouterr().err
    path = write_config(tmp_path, stages=[{"steps": 3, "freeze": ["refin"]}])
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "refin" in capsys.readouterr().err and not ckpt.list_checkpoints(tmp_path / "run")


def test_train_eval_prune_commands(tmp_path, capsys):
    path = write_config(tmp_path, stages=[{"steps": 12, "lr": 0.01}], data__val_split="val",
                        data__max_val_samples=4)
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(run)]) == 0
    assert "validation (4 images): RMSE " in capsys.readouterr().out
    meta = load_model(run / "model.pt")[1]
    assert meta["val_metrics"]["samples"] == 4
    assert main(["eval", "--config", str(path), "--out", str(run), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "RMSE [mm]" in out and "iMAE [1/km]" in out
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["metrics"]["rmse"] == pytest.approx(meta["val_metrics"]["rmse"])
    assert main(["eval", "--model", str(run / "model.pt"), "--data", "engine_toy:ToyScenes", "--root", "x",
                 "--split", "val", "--max-samples", "2"]) == 0
    written = json.loads((run / "model_eval_val.json").read_text())
    assert written["metrics"]["samples"] == 2 and written["protocol"] == "kitti"
    assert main(["prune-test", "--config", str(path), "--out", str(run), "prune.gamma=0.5"]) == 0
    out = capsys.readouterr().out
    assert "| backbone.enc.0 | Conv2d | 8 | 4 |" in out
    report = json.loads((run / "model_prune_test.json").read_text())
    assert [r["layer"] for r in report["rows"]] == ["backbone.enc.0", "backbone.dec.0"]
    assert report["gamma"] == 0.5 and report["baseline"]["rmse"] == pytest.approx(result["metrics"]["rmse"])


def test_eval_without_config_needs_model_data_root(capsys):
    assert main(["eval", "--model", "m.pt"]) == 2
    assert "--data, --root" in capsys.readouterr().err


def test_distill_with_a_cached_teacher(tmp_path, capsys):
    torch.manual_seed(1)
    teacher = save_model(tmp_path / "teacher.pt", build("toy_completion", width=4), {"kind": "completion"})
    changes = dict(loss={"method": "blackbox"}, teacher={"source": str(teacher)},
                   stages=[{"steps": 6, "lr": 0.01}])
    path = write_config(tmp_path, **changes)
    # random flips would misalign cached predictions: refused before anything is written
    assert main(["distill", "--config", str(path), "--out", str(tmp_path / "run"), "--cache-teacher"]) == 2
    assert "randomly augmented" in capsys.readouterr().err
    path = write_config(tmp_path, **changes, data__train_kwargs={"augment": False})
    assert main(["distill", "--config", str(path), "--out", str(tmp_path / "run"), "--cache-teacher"]) == 0
    cache = tmp_path / "run" / "teacher_cache"
    index = json.loads((cache / "index.json").read_text())
    assert len(index["files"]) == 24 and index["input_size"] == [16, 16]
    meta = load_model(tmp_path / "run" / "model.pt")[1]
    assert meta["teacher"] == str(cache)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"teacher_depth", "teacher_grad"} <= rows[-1].keys()


def test_eval_nyu_protocol_on_real_indoor_frames(tmp_path, shared_data, capsys):
    """`lumde eval --data nyuv2` on real RGB-D frames (Redwood) written as sparse-to-dense h5 files."""
    import h5py
    import numpy as np
    from PIL import Image
    frames = sorted((shared_data / "redwood_livingroom" / "image").glob("*.jpg"))[:3]
    if not frames:
        pytest.skip("redwood_livingroom frames absent")
    (tmp_path / "nyu" / "val").mkdir(parents=True)
    for path in frames:
        rgb = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
        depth = np.asarray(Image.open(path.parents[1] / "depth" / f"{path.stem}.png"), dtype=np.float32) / 1000.0
        with h5py.File(tmp_path / "nyu" / "val" / f"{path.stem}.h5", "w") as h5:
            h5["rgb"], h5["depth"] = rgb, depth
    torch.manual_seed(0)
    model = save_model(tmp_path / "toy.pt", build("toy_completion", width=4),
                       {"kind": "completion", "depth_range": [0.0, 10.0]})
    assert main(["eval", "--model", str(model), "--data", "nyuv2", "--root", str(tmp_path / "nyu")]) == 0
    out = capsys.readouterr().out
    assert "nyu protocol" in out and "| RMSE [m] | REL | δ1 | δ2 | δ3 |" in out
    written = json.loads((tmp_path / "toy_eval_val.json").read_text())
    result = written["metrics"]
    assert written["protocol"] == "nyu" and result["samples"] == 3
    assert 0.0 <= result["d1"] <= result["d2"] <= result["d3"] <= 1.0 and result["rmse"] > 0


def _failed_before_any_run_folder(args: list[str], run: Path, capsys) -> str:
    """Run the command, expect exit 2 and no run folder; return stderr."""
    assert main(args) == 2
    assert not run.exists(), f"{run} was created by a run that stopped on a configuration error"
    return capsys.readouterr().err


def test_overrides_anywhere_on_the_line_and_list_indexing(tmp_path, capsys):
    path, run = write_config(tmp_path), tmp_path / "run"
    assert main(["train", "--config", str(path), "stages[0].steps=2", "--out", str(run), "stages.0.lr=0.02",
                 "--resume", "data.batch_size=2"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["stages"][0]["steps"] == 2 and saved["stages"][0]["lr"] == 0.02 and saved["data"]["batch_size"] == 2
    with pytest.raises(SystemExit):
        main(["train", "--config", str(path), "--out", str(run), "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_command_line_typo_is_blamed_on_the_command_line(tmp_path, capsys):
    path, run = write_config(tmp_path), tmp_path / "run"
    err = _failed_before_any_run_folder(["train", "--config", str(path), "--out", str(run), "optim.lr=1e-4"],
                                        run, capsys)
    assert "command line 'optim.lr=1e-4': unknown key 'optim.lr'; did you mean 'stages.0.lr'?" in err
    assert f"{path}:" not in err
    err = _failed_before_any_run_folder(["train", "--config", str(path), "--out", str(run), "stages.3.lr=1e-4"],
                                        run, capsys)
    assert "'stages' has 1 item(s)" in err
    # the example in the key=value hint is a key that exists
    err = _failed_before_any_run_folder(["train", "--config", str(path), "--out", str(run), "stages"], run, capsys)
    assert "(e.g. data.batch_size=8)" in err and load_experiment(path, ["data.batch_size=8"]).data.batch_size == 8


def test_model_kwargs_are_checked_against_the_architecture(tmp_path, capsys):
    path, run = write_config(tmp_path), tmp_path / "run"
    err = _failed_before_any_run_folder(["train", "--config", str(path), "--out", str(run), "model.kwargs.widht=4"],
                                        run, capsys)
    assert "'model.kwargs': model 'toy_completion' takes no argument 'widht'; did you mean 'width'?" in err
    assert "its arguments: width=8" in err
    err = _failed_before_any_run_folder(["train", "--config", str(path), "--out", str(run),
                                         "model.name=toy_complection"], run, capsys)
    assert "'model.name': unknown model 'toy_complection'; did you mean 'toy_completion'?" in err
    err = _failed_before_any_run_folder(["train", "--config", str(path), "--out", str(run), "model.kind=monocular"],
                                        run, capsys)
    assert "'model.kind' is 'monocular' but toy_completion takes (rgb, sparse)" in err


@pytest.mark.parametrize("command, why", [
    (["train", "optim.gamma=0.1"], "'optim.gamma' has no effect: it applies to optim.policy 'step' only"),
    (["train", "optim.power=2.0", "optim.policy=step"], "'optim.power' has no effect"),
    (["train", "eval.every=5", "data.max_val_samples=3"],
     "data.max_val_samples, eval.every have no effect: data.val_split is empty"),
    (["train", "data.check=none", "data.skip_corrupt=true"], "'data.skip_corrupt' has no effect with data.check: none"),
    (["train", "eval.best_metric=mae"], "eval.best_metric has no effect: data.val_split is empty"),
    (["train", "log.tensorboard=false", "log.images=4"], "'log.images' has no effect with log.tensorboard: false"),
    (["train", "teacher.source=t.pt"], "'teacher.source' has no effect in `lumde train`"),
    (["distill", "teacher.cache_dir=c", f"teacher.source={Path(__file__).parent / 'absent.pt'}",
      "loss={method: blackbox}"], "'teacher.cache_dir' has no effect without --cache-teacher"),
])
def test_options_without_effect_are_named_in_a_warning(tmp_path, capsys, command, why):
    """Options of a switch that is off (or a command that does not use them) warn; the run goes on."""
    path, run = write_config(tmp_path, stages=[{"steps": 2, "lr": 0.01}]), tmp_path / "run"
    with pytest.warns(ConfigWarning, match=re.escape(why)):
        main([command[0], "--config", str(path), "--out", str(run), *command[1:]])


@pytest.mark.parametrize("command, why", [
    (["distill", "teacher.source=t.pt"], "'teacher.source' has no effect: the loss reads nothing from a teacher"),
    (["distill", "--cache-only"], "--cache-only has no effect without --cache-teacher"),
])
def test_options_without_effect_on_their_command_are_refused(tmp_path, capsys, command, why):
    path, run = write_config(tmp_path), tmp_path / "run"
    err = _failed_before_any_run_folder([command[0], "--config", str(path), "--out", str(run), *command[1:]],
                                        run, capsys)
    assert why in err


def test_a_config_warning_is_one_plain_line_on_the_console(tmp_path):
    path = write_config(tmp_path)
    result = subprocess.run([sys.executable, "-m", "lumde_depth.cli.main", "train", "--config", str(path), "--out",
                             str(tmp_path / "run"), "optim.gamma=0.1", "stages.0.steps=1"],
                            env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "lumde: warning: 'optim.gamma' has no effect" in result.stderr and "ConfigWarning" not in result.stderr


def _mono_teacher(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(tmp_path / "mono.pt", build("lumde_student", width=0.5), {"kind": "monocular"})


@pytest.mark.parametrize("loss", [{"method": "lspkd", "w1": 1.0, "terms": [{"kind": "lspkd", "layers": ["E1"]}]},
                                  {"method": "blackbox"}], ids=["lspkd", "blackbox"])
def test_a_monocular_teacher_for_a_completion_student_is_refused_up_front(tmp_path, capsys, loss):
    path = write_config(tmp_path, loss=loss, teacher={"source": str(_mono_teacher(tmp_path))})
    run = tmp_path / "run"
    err = _failed_before_any_run_folder(["distill", "--config", str(path), "--out", str(run)], run, capsys)
    assert "is a monocular model (model(rgb)) but the student is a completion model" in err
    assert "size_mismatch" not in err
    if loss["method"] == "blackbox":  # --cache-teacher writes nothing either
        err = _failed_before_any_run_folder(["distill", "--config", str(path), "--out", str(run), "--cache-teacher",
                                             "data.train_kwargs={augment: false}"], run, capsys)
        assert "is a monocular model" in err


class _HalfSize(torch.nn.Module):
    """A completion net whose depth comes out at half the input size."""

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"depth": torch.nn.functional.avg_pool2d(sparse, 2) + 1.0}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script
def test_teacher_and_student_output_sizes_are_checked_up_front(tmp_path, capsys):
    teacher = tmp_path / "half.ts"
    torch.jit.script(_HalfSize()).save(str(teacher))
    path = write_config(tmp_path, loss={"method": "blackbox"}, teacher={"source": str(teacher)})
    run = tmp_path / "run"
    err = _failed_before_any_run_folder(["distill", "--config", str(path), "--out", str(run)], run, capsys)
    assert "the first training frame (train/0000, 16x16) does not go through the teacher, the model and the loss" in err
    assert "teacher depth is (1, 1, 8, 8) but the student's is (1, 1, 16, 16)" in err
    err = _failed_before_any_run_folder(["distill", "--config", str(path), "--out", str(run), "--cache-teacher",
                                         "data.train_kwargs={augment: false}"], run, capsys)
    assert "gives 8x8 depth for 16x16 frames; a cache holds depth at the frames' size" in err


def test_a_cached_teacher_folder_is_refused_with_random_augmentation(tmp_path, capsys):
    torch.manual_seed(1)
    teacher = save_model(tmp_path / "teacher.pt", build("toy_completion", width=4), {"kind": "completion"})
    cache = tmp_path / "cache"
    path = write_config(tmp_path, loss={"method": "blackbox"}, teacher={"source": str(teacher)},
                        stages=[{"steps": 2, "lr": 0.01}])
    assert main(["distill", "--config", str(path), "--out", str(tmp_path / "c"), "--cache-teacher", "--cache-only",
                 f"teacher.cache_dir={cache}", "data.train_kwargs={augment: false}"]) == 0
    index = json.loads((cache / "index.json").read_text())
    assert index["augmentation"]["random"] is False and index["kind"] == "completion"
    assert index["augmentation"]["train_kwargs"] == {"augment": False}
    # the cache given directly as teacher.source, the training set flipping at random: refused
    run = tmp_path / "run"
    err = _failed_before_any_run_folder(["distill", "--config", str(path), "--out", str(run),
                                         f"teacher.source={cache}"], run, capsys)
    assert f"teacher.source {cache} (a cache of teacher predictions): the training set is randomly augmented" in err
    assert "data.train_kwargs.augment=false" in err
    assert main(["distill", "--config", str(path), "--out", str(run), f"teacher.source={cache}",
                 "data.train_kwargs={augment: false}"]) == 0
    # a cache that records augmented frames is refused even for a fixed training set
    index["augmentation"]["random"] = True
    (cache / "index.json").write_text(json.dumps(index))
    err = _failed_before_any_run_folder(["distill", "--config", str(path), "--out", str(tmp_path / "run2"),
                                         f"teacher.source={cache}", "data.train_kwargs={augment: false}"],
                                        tmp_path / "run2", capsys)
    assert "was made from randomly augmented frames" in err
