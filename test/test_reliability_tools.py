"""The offline tools on damaged input: clear errors naming the file (and frame), no half-written output, no pickle code.

Already covered elsewhere (referenced from docs/reliability.md, not repeated here): kitti2bag on a
truncated scan / corrupt PNG / missing stamp (test_kitti2bag.py), SIGKILL mid-training then resume
to identical weights (test_engine_train.py), a wrong config key or value failing before any work
(test_cli_train.py, test_config.py), a model file given to --resume (test_engine_parts.py).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rosbags")

from bag_helpers import make_drive  # noqa: E402
from lumde_depth.cli.main import main as lumde  # noqa: E402
from lumde_depth.engine import checkpoint as ckpt  # noqa: E402
from lumde_depth.inference import DepthCompleter  # noqa: E402
from lumde_depth.models import build  # noqa: E402
from lumde_depth.models.io import ModelFileError, load_model, save_model  # noqa: E402
from lumde_depth.ros.bag_io import BagError  # noqa: E402
from lumde_depth.ros.bag_process import process_bag  # noqa: E402
from lumde_depth.ros.kitti2bag import kitti2bag  # noqa: E402
from lumde_depth.ros.pipeline import DepthPipeline  # noqa: E402

MARKER = Path("/tmp/lumde_reliability_pwned")


class Payload:
    """Unpickling this runs ``os.system``: what a tampered checkpoint would carry."""

    def __reduce__(self):
        import os
        return os.system, (f"touch {MARKER}",)


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bag")
    drive, _ = make_drive(tmp / "raw")
    kitti2bag(drive, tmp / "bag", progress=False)
    return tmp / "bag"


def _damaged_bag(bag: Path, tmp: Path, keep: float) -> Path:
    """A copy of ``bag`` whose data file is cut to ``keep`` of its length (a copy interrupted half way)."""
    import shutil
    out = tmp / f"cut_{int(keep * 100)}"
    shutil.copytree(bag, out)
    data = next(p for p in out.iterdir() if p.suffix in (".mcap", ".db3"))
    raw = data.read_bytes()
    data.write_bytes(raw[: int(len(raw) * keep)])
    return out


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_bag_process_on_a_truncated_bag_names_it_and_leaves_nothing(bag, tmp_path, keep, capsys):
    damaged = _damaged_bag(bag, tmp_path, keep)
    pipeline = DepthPipeline(DepthCompleter.load(backend="classical"), colored=False)
    (tmp_path / "out").mkdir()
    with pytest.raises(BagError, match=str(damaged)) as info:
        process_bag(damaged, tmp_path / "out" / "bag", pipeline, progress=False)
    assert "truncated or corrupt" in str(info.value) or "not a readable" in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []
    assert lumde(["bag", "process", str(damaged), str(tmp_path / "out" / "bag"), "--backend", "classical",
                  "--no-progress"]) == 1
    assert str(damaged) in capsys.readouterr().err and list((tmp_path / "out").iterdir()) == []


@pytest.mark.real_libs
def test_bag_process_on_a_corrupt_message_names_bag_topic_and_frame(tmp_path, capsys):
    """An sqlite3 bag whose second image was overwritten by 30 bytes: the error names bag, topic and frame 1."""
    import sqlite3
    drive, _ = make_drive(tmp_path / "raw")
    kitti2bag(drive, tmp_path / "bag", storage="sqlite3", progress=False)
    with sqlite3.connect(next((tmp_path / "bag").glob("*.db3"))) as db:
        db.execute("UPDATE messages SET data = substr(data, 1, 30) WHERE id = (SELECT m.id FROM messages m JOIN "
                   "topics t ON m.topic_id = t.id WHERE t.name LIKE '%image_raw' ORDER BY m.timestamp "
                   "LIMIT 1 OFFSET 1)")
    (tmp_path / "out").mkdir()
    args = ["bag", "process", str(tmp_path / "bag"), str(tmp_path / "out" / "bag"), "--backend", "classical",
            "--no-progress"]
    assert lumde(args) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bag'}: frame 1 (message 1 of /kitti/camera_color_left/image_raw, bag time" in err
    assert "is corrupt" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_kitti2bag_on_a_scan_of_garbage_size(tmp_path):
    """A scan whose byte count is not a multiple of 16 (x, y, z, intensity float32)."""
    drive, _ = make_drive(tmp_path / "raw", oxts=False)
    bad = drive / "velodyne_points" / "data" / "0000000000.bin"
    bad.write_bytes(bad.read_bytes() + b"\x00" * 5)
    (tmp_path / "out").mkdir()
    with pytest.raises(Exception, match="frame 0") as info:
        kitti2bag(drive, tmp_path / "out" / "bag", progress=False)
    assert bad.name in str(info.value) and list((tmp_path / "out").iterdir()) == []


def _tampered(path: Path) -> Path:
    torch.save({"format": ckpt.FORMAT, "step": 10, "model": Payload()}, path)
    return path


def test_tampered_checkpoint_is_refused_without_running_its_code(tmp_path):
    MARKER.unlink(missing_ok=True)
    path = _tampered(tmp_path / "step_00000010.pt")
    with pytest.raises(ModelFileError, match=f"{path}: refused"):
        ckpt.load_checkpoint(path)
    with pytest.raises(ModelFileError, match="refused"):
        load_model(path)
    with pytest.raises(ModelFileError, match="refused"):
        DepthCompleter.load(path, backend="torch", device="cpu")
    assert not MARKER.exists(), "unpickling ran the payload's code"


@pytest.mark.parametrize("content", ["text", "npz", "pickle_list", "truncated"])
def test_foreign_or_damaged_files_are_refused(tmp_path, content):
    path = tmp_path / "model.pt"
    if content == "text":
        path.write_text("definitely not a model\n")
    elif content == "npz":
        with open(path, "wb") as f:
            np.savez(f, w=np.ones(3))
    elif content == "pickle_list":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    else:
        save_model(path, build("cdspn", scale=32), {"input_size": [32, 48], "depth_range": [0.1, 80.0],
                                                    "kind": "completion"})
        path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match=str(path)):
        load_model(path)
    with pytest.raises(ModelFileError, match=str(path)):
        ckpt.load_checkpoint(path)


def test_train_on_a_truncated_depth_png_names_it_before_any_run_folder(tmp_path, capsys):
    """A KITTI DC layout with one truncated ground-truth PNG: `lumde train` stops up front naming the file;
    with data.skip_corrupt=true it trains on the other frames and says how many it skipped."""
    import engine_toy  # noqa: F401  (registers toy_completion)
    from test_data_kitti_dc import DRIVES, _write_layout
    from test_engine_train import write_config
    _write_layout(tmp_path / "dc", tmp_path / "dc", tmp_path / "dc" / "raw", split="train")
    gt = tmp_path / "dc" / "train" / DRIVES[1] / "proj_depth" / "groundtruth" / "image_02" / "0000000006.png"
    gt.write_bytes(gt.read_bytes()[:300])
    path = write_config(tmp_path, data__kind="kitti_dc", data__root=str(tmp_path / "dc"),
                        data__train_kwargs={"size": None}, stages=[{"steps": 2, "lr": 0.01}], data__batch_size=2)
    run = tmp_path / "run"
    assert lumde(["train", "--config", str(path), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"data (train split 'train'): 1 of 6 frames are damaged: {gt}: truncated" in err
    assert "data.skip_corrupt=true" in err and not run.exists()
    assert lumde(["train", "--config", str(path), "--out", str(run), "data.skip_corrupt=true"]) == 0
    out = capsys.readouterr().out
    assert f"images and calibration from {tmp_path / 'dc' / 'raw'} (found inside the root" in out
    assert f"data (train split 'train'): skipped 1 of 6 frames (damaged; data.skip_corrupt=true): {gt}" in out
    assert (run / "model.pt").is_file()
