"""``lumde demo``: synthetic drive -> bag -> node pipeline -> pictures and KITTI metrics, end to end."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lumde_depth.ros import demo
from lumde_depth.cli.main import main as lumde
from lumde_depth.data.depth_io import read_velodyne_bin

pytest.importorskip("rosbags")

FRAMES = 3
SCALE = "0.2"      # 248x75 images: the LiDAR still sees the street, the network runs in milliseconds


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from lumde_depth.models import build
    from lumde_depth.models.io import save_model

    path = tmp_path_factory.mktemp("model") / "tiny_student.pt"
    return save_model(path, build("cdspn", scale=32),
                      meta={"input_size": [64, 224], "depth_range": [0.5, 90.0], "kind": "completion"})


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path / "cache"))


def _check_outputs(out, frames):
    for k in range(frames):
        for kind, min_size in (("frame", (200, 150)), ("cloud", (400, 300))):
            path = out / f"{kind}_{k:04d}.png"
            assert path.is_file(), path
            image = np.asarray(Image.open(path).convert("RGB"))
            assert image.shape[1] >= min_size[0] and image.shape[0] >= min_size[1], (path, image.shape)
            colours = np.unique(image.reshape(-1, 3), axis=0)
            assert len(colours) > 50, f"{path} has only {len(colours)} colours"
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["frames"] == frames and payload["evaluated"] == frames
    rows = {row["method"]: row for row in payload["methods"]}
    assert set(rows) == {"model", "classical"}
    for row in rows.values():
        for key in ("rmse", "mae", "irmse", "imae"):
            assert math.isfinite(row[key]) and row[key] > 0, (row, key)
        assert row["mae"] <= row["rmse"]
    table = (out / "metrics.md").read_text()
    assert rows["model"]["label"] in table and "classical IP-Basic" in table and "RMSE (mm)" in table
    return payload


@pytest.mark.real_libs
def test_demo_end_to_end(tmp_path, model_file, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--frames", str(FRAMES), "--camera-scale", SCALE, "--model", str(model_file),
            "--no-progress"]
    assert lumde(args) == 0
    printed = capsys.readouterr().out
    for k in range(1, 6):
        assert f"[{k}/5]" in printed
    assert "| classical IP-Basic |" in printed
    payload = _check_outputs(out, FRAMES)
    assert payload["mode"] == "lumde bag process"
    rows = {row["method"]: row for row in payload["methods"]}
    # IP-Basic on a street scene is metres-accurate; an untrained network is not
    assert rows["classical"]["rmse"] < 10_000 and rows["classical"]["mae"] < rows["model"]["mae"]

    # the output bag holds the node's depth topics for every frame
    from lumde_depth.ros.bag_io import open_bag

    with open_bag(out / "output_bag") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert all(counts.get(t) == FRAMES for t in ("/depth/image", "/depth/points", "/depth/camera_info"))

    # the metrics equal the KITTI metrics of the recorded depth against the written ground truth
    from lumde_depth.data.depth_io import read_depth_png
    from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics

    recorded = demo.read_outputs(out / "output_bag")
    acc = MetricAccumulator(kitti_metrics)
    gt_dir = next((out / "synth" / "train").glob("*/proj_depth/groundtruth/image_02"))
    for index, stamp in enumerate(sorted(recorded)):
        acc.update(recorded[stamp]["depth/image"], read_depth_png(gt_dir / f"{index:010d}.png"))
    assert acc.result()["rmse"] == pytest.approx(rows["model"]["rmse"], rel=1e-9)
    assert not list(out.glob(".classical.*"))       # the classical run's scratch bag is gone



def test_missing_default_student_is_named_with_the_fix(tmp_path, monkeypatch, capsys):
    import lumde_depth.inference as inference

    missing = tmp_path / "weights" / "student.pt"
    monkeypatch.setattr(inference, "DEFAULT_MODEL", missing)
    assert lumde(["demo", "--out", str(tmp_path / "demo")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "--model" in err and "lumde distill" in err and "--backend classical" in err
    assert not (tmp_path / "demo").exists()      # failed before doing any work
    assert lumde(["demo", "--out", str(tmp_path / "demo"), "--model", str(tmp_path / "nope.pt")]) == 1
    assert "nope.pt" in capsys.readouterr().err


def test_a_previous_demo_folder_is_replaced(tmp_path):
    out = tmp_path / "demo"
    demo.prepare_out(out)
    (out / "frame_0007.png").write_bytes(b"old")
    (out / "output_bag").mkdir()
    demo.prepare_out(out)
    assert sorted(p.name for p in out.iterdir()) == [demo.MARKER]


def test_refuses_a_foreign_non_empty_folder(tmp_path, model_file, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert lumde(["demo", "--out", str(tmp_path), "--model", str(model_file)]) == 1
    assert "not empty" in capsys.readouterr().err and (tmp_path / "precious.txt").read_text() == "keep me"
    assert lumde(["demo", "--out", str(tmp_path / "x"), "--frames", "0"]) == 2     # strict config: frames >= 1


def test_frame_picture_layout():
    rng = np.random.default_rng(0)
    h, w = 60, 200
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    gt = rng.uniform(2, 60, (h, w)).astype(np.float32)
    sparse = np.where(rng.random((h, w)) < 0.05, gt, 0).astype(np.float32)
    depths = {"model": gt + 5.0, "classical": gt}
    labels = {"model": "net", "classical": "classical IP-Basic"}
    metrics = {m: {"rmse": 1.0} for m in demo.METHODS}
    picture = demo.frame_picture(rgb, sparse, depths, gt, labels, metrics, 1.0, 1.0, 80.0)
    assert picture.shape[1] == 2 * w + 2 and picture.shape[0] == 3 * h + 2 * 2 + 2 * (28 + 2)
    right_error = picture[2 * (h + 2) + h // 2 + 10:3 * h + 4, w + 2 + w // 2]   # exact depth: smallest error bin
    assert (right_error == demo.viz.ERROR_COLOURS[0]).all()
    left_error = picture[2 * (h + 2) + h // 2 + 10:3 * h + 4, w // 2]             # 5 m off: 5/3 -> bin 5
    assert (left_error == demo.viz.ERROR_COLOURS[5]).all()


@pytest.mark.ros
def test_demo_live_node_over_dds(tmp_path, model_file):
    pytest.importorskip("rclpy")
    from conftest import next_domain_id

    from lumde_depth.data.depth_io import read_depth_png
    from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics
    from lumde_depth.geometry import read_kitti_raw_calib
    from lumde_depth.inference import DepthCompleter
    from lumde_depth.ros.pipeline import DepthPipeline

    out = tmp_path / "live"
    args = ["demo", "--out", str(out), "--frames", str(FRAMES), "--camera-scale", SCALE, "--model", str(model_file),
            "--live", "--rate", "0.5", "--domain-id", str(next_domain_id()), "--no-progress"]
    assert lumde(args) == 0
    payload = _check_outputs(out, FRAMES)
    assert payload["mode"] == "live node over DDS"
    assert (out / "live_logs" / "node_model.log").is_file() and not (out / "output_bag").exists()

    # the live classical node's depth is the pipeline's, run here directly on the drive's files
    drive = next((out / "synth" / "raw").glob("*/*_sync"))
    calib = read_kitti_raw_calib(drive.parent, 2)
    pipeline = DepthPipeline(DepthCompleter.load(backend="classical"), publish_unsupported=True)   # as the demo's
    acc = MetricAccumulator(kitti_metrics)
    for k in range(FRAMES):
        rgb = np.asarray(Image.open(drive / "image_02" / "data" / f"{k:010d}.png").convert("RGB"))
        scan = read_velodyne_bin(drive / "velodyne_points" / "data" / f"{k:010d}.bin")
        depth = pipeline.process(rgb, calib.P, scan[:, :3], calib.T_cam_lidar).depth
        gt = read_depth_png(next((out / "synth" / "train").glob("*/proj_depth/groundtruth/image_02")) / f"{k:010d}.png")
        acc.update(depth, gt)
    rows = {row["method"]: row for row in payload["methods"]}
    for key in ("rmse", "mae", "irmse", "imae"):
        assert rows["classical"][key] == pytest.approx(acc.result()[key], rel=1e-6)


@pytest.mark.real_libs
def test_offline_demo_imports_no_rclpy():
    code = ("import sys, lumde_depth.ros.demo, lumde_depth.ros.bag_process, lumde_depth.ros.kitti2bag; "
            "from lumde_depth.cli.main import build_parser; build_parser(); print('rclpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.real_libs
def test_offline_tools_run_without_rclpy(tmp_path, model_file):
    """demo (kitti2bag + bag process + metrics), train and eval in one process: with the real
    message_filters on the path (scripts/test.sh's real-library runs) they work and never import rclpy."""
    import os
    from pathlib import Path

    here = Path(__file__).resolve().parent
    code = f"""
import sys
import engine_toy  # noqa: F401  (the toy data set and model of the engine tests)
from test_engine_train import write_config
from lumde_depth.cli.main import main
from pathlib import Path
tmp = Path({str(tmp_path)!r})
assert main(["demo", "--out", str(tmp / "demo"), "--frames", "2", "--camera-scale", {SCALE!r},
             "--model", {str(model_file)!r}, "--no-progress"]) == 0
config = write_config(tmp, stages=[{{"steps": 2, "lr": 0.01}}], data__val_split="val", data__max_val_samples=2)
assert main(["train", "--config", str(config), "--out", str(tmp / "run")]) == 0
assert main(["eval", "--config", str(config), "--out", str(tmp / "run")]) == 0
print("RCLPY", "rclpy" in sys.modules, "message_filters" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "LUMDE_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RCLPY False False" in result.stdout, result.stdout[-2000:]
