"""Runs you can watch: start-up summary, plain progress lines, validation with units, TensorBoard,
best.pt, Ctrl-C with a resume command, fallback from a corrupt checkpoint, extending a finished run."""
from __future__ import annotations

import csv
import signal
import sys
import time

import pytest
import torch

import engine_toy  # noqa: F401  (registers the toy_completion model)
from engine_toy import one_thread  # noqa: F401  (autouse fixture)
from lumde_depth.cli.main import main
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.logs import read_rows
from lumde_depth.models.io import load_model

from test_engine_train import lumde, state_of, write_config


def test_a_run_says_what_it_does_and_writes_tensorboard_and_best(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    path = write_config(tmp_path, stages=[{"steps": 30, "lr": 0.01}], data__val_split="val",
                        data__max_val_samples=3, eval={"every": 10}, log={"every": 5, "progress": True})
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    # the summary: run folder, device, world size, per-process and global batch, parameters, data sizes
    assert f"toy: new run; run folder {run}" in out
    assert "device cpu" in out and "world size 1 process(es), batch 4 per process = global batch 4" in out
    assert "972 parameters" in out and "24 training samples (6 steps per epoch)" in out
    assert "validation on 3 samples every 10 steps" in out and f"tensorboard --logdir {run / 'tensorboard'}" in out
    # stdout is not a terminal here: plain progress lines instead of the bar, every log.every steps
    assert [line.split()[1] for line in out.splitlines() if line.startswith("step ") and "loss" in line] == \
        [f"{s}/30" for s in range(5, 31, 5)]
    val_lines = [line for line in out.splitlines() if " validation (3 images): RMSE " in line]
    assert len(val_lines) == 3 and all(" mm, MAE " in line and " 1/km" in line for line in val_lines)
    assert out.splitlines()[-2].startswith("validation (3 images): RMSE ") and out.rstrip().endswith("best.pt")
    start = [r for r in read_rows(run / "log.jsonl") if r["kind"] == "start"]
    assert start == [{**start[0], "world_size": 1, "global_batch": 4, "batch_per_process": 4, "train_samples": 24,
                      "val_samples": 3, "parameters": 972}]
    # best.pt is the validation with the lowest RMSE, saved at that step
    with open(run / "val.csv") as handle:
        rows = list(csv.DictReader(handle))
    best_row = min(rows, key=lambda r: float(r["rmse"]))
    meta = load_model(run / "best.pt")[1]
    assert meta["best"]["metric"] == "rmse" and meta["best"]["step"] == int(best_row["step"])
    assert meta["val_metrics"]["rmse"] == pytest.approx(float(best_row["rmse"]))
    best_line = next(line for line in val_lines if line.startswith(f"step {best_row['step']} validation"))
    assert best_line.endswith("best rmse so far: saved best.pt")
    # TensorBoard: losses, lr, metrics per validation and a picture per validation frame
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"train/total", "train/gt", "train/lr", "val/rmse", "val/imae"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/total")] == list(range(5, 31, 5))
    assert [e.step for e in events.Scalars("val/rmse")] == [10, 20, 30]
    assert set(events.Tags()["images"]) == {"val/frame_0", "val/frame_1"}
    picture = events.Images("val/frame_0")[-1]
    assert (picture.width, picture.height) == (16, 3 * 16 + 2 * 2)  # camera + LiDAR, prediction, ground truth


def test_best_metric_must_be_a_metric_of_the_protocol(tmp_path, capsys):
    path = write_config(tmp_path, eval={"best_metric": "d1"})
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "'eval.best_metric' = 'd1' is not a kitti metric" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path):
    steps = 400
    path = write_config(tmp_path, stages=[{"steps": steps, "lr": 0.003}], checkpoint__every=1000, log__every=20)
    reference = lumde("train", "--config", str(path), "--out", str(tmp_path / "ref"))
    run = tmp_path / "run"
    proc = lumde("train", "--config", str(path), "--out", str(run))
    deadline = time.monotonic() + 120
    while not (run / "train.csv").exists() or len((run / "train.csv").read_text().splitlines()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    stopped = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["step"]
    assert 40 <= stopped < steps  # saved at the step it stopped (checkpoint.every is longer than the run)
    assert f"Ctrl-C: stopped at step {stopped} of {steps}" in out
    command = out.split("resume with:\n")[1].split()
    assert command == ["lumde", "train", "--config", str(path), "--out", str(run), "--resume"]
    resumed = lumde(*command[1:])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"toy: resumed from step {stopped} ({ckpt.checkpoint_dir(run) / f'step_{stopped:08d}.pt'})" in out
    assert reference.wait(timeout=300) == 0
    ref, res = state_of(tmp_path / "ref" / "model.pt"), state_of(run / "model.pt")
    assert all(torch.equal(ref[k], res[k]) for k in ref)  # the interruption changed nothing


def test_corrupt_newest_checkpoint_falls_back_and_a_finished_run_extends(tmp_path, capsys):
    path = write_config(tmp_path, stages=[{"steps": 20, "lr": 0.01}])
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(run)]) == 0
    newest = ckpt.latest_checkpoint(run)
    newest.write_bytes(newest.read_bytes()[:2000])  # a disk that filled up while writing it
    capsys.readouterr()
    assert main(["train", "--config", str(path), "--out", str(run), "--resume", "--extend", "10"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {newest} is unreadable" in out and "falling back to the one before it" in out
    assert "resumed from step 10" in out and "extending the run: 20 -> 30 steps" in out
    assert (run / "checkpoints" / "step_00000020.pt.corrupt").is_file()
    assert load_model(run / "model.pt")[1]["steps"] == 30 and "trained 30 steps" in out
    assert [r["step"] for r in read_rows(run / "log.jsonl") if r["kind"] == "train"] == [5, 10, 15, 20, 25, 30]
    # the extended run resumes with its original config; a finished run says so
    assert main(["train", "--config", str(path), "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "the run's last stage has 30 steps (extended earlier; the config says 20): it keeps 30" in out
    assert "already finished its 30 steps" in out
    # more steps through the config works too; other changes to the stages are refused with the way out
    more = write_config(tmp_path, stages=[{"steps": 35, "lr": 0.01}])
    assert main(["train", "--config", str(more), "--out", str(run), "--resume"]) == 0
    assert "extending the run: 30 -> 35 steps" in capsys.readouterr().out
    other = write_config(tmp_path, stages=[{"steps": 35, "lr": 0.02}])
    assert main(["train", "--config", str(other), "--out", str(run), "--resume"]) == 2
    assert "differs from the one" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "new"), "--extend", "5"]) == 2
    assert "use it with --resume" in capsys.readouterr().err


def test_progress_bar_on_a_terminal_keeps_stdout_for_the_summary(tmp_path, capsys, monkeypatch):
    """With a terminal the bar (stderr) replaces the plain lines; summary and metrics still print."""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    path = write_config(tmp_path, stages=[{"steps": 10, "lr": 0.01}], data__val_split="val",
                        data__max_val_samples=2, log={"every": 5, "progress": True})
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "step 5/10" not in captured.out and "10/10" in captured.err   # the bar
    assert "global batch 4" in captured.out and "validation (2 images): RMSE" in captured.out



def test_without_the_tensorboard_package_the_error_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails as if not installed
    path = write_config(tmp_path, stages=[{"steps": 2, "lr": 0.01}])
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "pip install 'tensorboard>=2.15,<3'" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "off"), "log.tensorboard=false"]) == 0
    assert not (tmp_path / "off" / "tensorboard").exists()
