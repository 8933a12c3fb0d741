"""``lumde adapt``: self-supervised fine-tuning on an unlabelled recording (real KITTI raw, a bag, a folder)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lumde_depth.cli.main import main as lumde
from lumde_depth.data.depth_io import DataError
from lumde_depth.data.recording import Recording, folder_recording, open_recording
from lumde_depth.data.synth import Generator, SynthConfig
from lumde_depth.engine.adapt import AdaptConfig, _split, adapt, completer_for, holdout_split
from lumde_depth.inference import DepthCompleter
from lumde_depth.inference.completer import DEFAULT_MONO_MODEL
from lumde_depth.models.io import load_model

# a few CPU seconds: small frames, small crops, a handful of steps
FAST = {"steps": 6, "batch_size": 2, "crop": [64, 128], "input_size": [94, 310], "synthetic_frames": 2,
        "log_every": 2, "checkpoint_every": 2, "progress": False, "threads": 1}


def write_folder(root: Path, frames: int = 5, seed: int = 3) -> Path:
    """A recording folder (images/, scans/, calib.yaml) of a synthetic drive at quarter KITTI size."""
    gen = Generator(SynthConfig(frames=frames, sequences=1, seed=seed, camera_scale=0.25), Path("unused"))
    (root / "images").mkdir(parents=True)
    (root / "scans").mkdir()
    for sequence, index in gen.tasks():
        frame = gen.render(sequence, index)
        Image.fromarray(frame.rgb).save(root / "images" / f"{index:06d}.png")
        frame.points.astype(np.float32).tofile(root / "scans" / f"{index:06d}.bin")
    calib = gen.calib
    (root / "calib.yaml").write_text(yaml.safe_dump({
        "K": calib.P[:, :3].reshape(-1).tolist(), "T_cam_lidar": calib.T_cam_lidar.reshape(-1).tolist(),
        "width": calib.width, "height": calib.height}))
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("recording") / "rec")


def test_adapt_on_real_frames_lowers_the_held_out_lidar_error(tmp_path, shared_data):
    """KITTI raw drive 0023 (7 real frames): adapt on the first 5, score on the last 2 (never trained on)."""
    drive = shared_data / "kitti_raw_tiny" / "2011_09_26" / "2011_09_26_drive_0023_sync"
    result = adapt(open_recording(drive), tmp_path / "run", config={
        "steps": 60, "batch_size": 2, "holdout": 0.3, "synthetic_frames": 4, "progress": False, "threads": 1,
        "log_every": 20})
    report = result.report
    assert (report["train_frames"], report["eval_frames"]) == (5, 2)
    before, after = report["before"], report["after"]
    assert after["after"]["rmse"] < before["before"]["rmse"]                              # as the node runs it
    assert after["after, network only"]["rmse"] < before["before, network only"]["rmse"]  # the network itself
    assert report["rmse_reduction"] == pytest.approx(1 - after["after"]["rmse"] / before["before"]["rmse"])
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["after"] == after and "| after |" in (tmp_path / "run" / "report.md").read_text()
    # the model file is what the node loads with model:=, and it says how it was made
    completer = DepthCompleter.load(result.model_path, backend="torch")
    meta = completer.meta["adapted"]
    assert meta["recording"] == str(drive) and meta["steps"] == 60 and meta["after"]["after"] == after["after"]
    assert completer.input_size == (188, 621)    # the same aspect ratio as the shipped student's: its own size
    frame = open_recording(drive).load(6)
    assert completer.complete(frame.rgb, frame.depth, frame.K).shape == frame.depth.shape


def test_held_out_frames_are_a_block_at_the_end_and_never_trained_on():
    loaded = []
    recording = Recording("r", [lambda i=i: loaded.append(i) for i in range(10)])
    train, evaluation = _split(recording, None, 0.2)
    list(train.frames()), list(evaluation.frames())
    assert loaded == list(range(8)) + [8, 9] and (len(train), len(evaluation)) == (8, 2)
    other = Recording.of("other", [None])
    assert _split(recording, other, 0.2) == (recording, other)      # a second recording: train on all of the first
    with pytest.raises(ValueError, match="cannot be split"):
        _split(Recording("one", [lambda: None]), None, 0.2)


def test_holdout_split_partitions_the_points():
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random((90, 300)) < 0.3, rng.uniform(1, 80, (90, 300)), 0).astype(np.float32)
    K = np.array([[180.0, 0, 150], [0, 180.0, 45], [0, 0, 1]])
    shares = []
    for seed in range(20):
        inp, target = holdout_split(sparse, K, np.random.default_rng(seed))
        assert not ((inp > 0) & (target > 0)).any()
        np.testing.assert_array_equal(inp + target, sparse)
        shares.append((target > 0).sum() / (sparse > 0).sum())
    assert 0.05 < min(shares) and max(shares) < 0.95 and np.std(shares) > 0.05   # structured gaps vary the share
    a, b = holdout_split(sparse, K, np.random.default_rng(7)), holdout_split(sparse, K, np.random.default_rng(7))
    np.testing.assert_array_equal(a[1], b[1])


def test_adapted_models_run_at_the_size_the_node_gives_the_camera():
    """adapt's default input size is the node's for that camera (fit="aspect"): KITTI keeps the student's own,
    DDAD gets its aspect ratio at the same pixel count."""
    from lumde_depth.inference import DEFAULT_MODEL
    from lumde_depth.models.io import load_model
    net, meta = load_model(DEFAULT_MODEL)
    completer = completer_for(net, meta)
    assert completer.network_size(375, 1242) == (188, 621)
    h, w = completer.network_size(1216, 1936)
    assert abs(w / h - 1936 / 1216) < 0.02 and abs(h * w / (188 * 621) - 1) < 0.02


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, folder):
    recording = folder_recording(folder)
    fast = {**FAST, "score": False}     # train on every frame, no before / after figures
    whole = adapt(recording, tmp_path / "whole", config=fast)
    assert whole.report["train_frames"] == 5 and whole.report["rmse_reduction"] is None
    assert "not scored" in (tmp_path / "whole" / "report.md").read_text()

    def crash(text: str) -> None:
        if "step 4/6" in text:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        adapt(recording, tmp_path / "cut", config=fast, log=crash)
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()) == ["step_00000002.pt"]
    with pytest.raises(Exception, match="--resume"):
        adapt(recording, tmp_path / "cut", config=fast)
    with pytest.raises(Exception, match="differs"):
        adapt(recording, tmp_path / "cut", config={**fast, "lr": 1e-3}, resume=True)
    resumed = adapt(recording, tmp_path / "cut", config={**fast, "progress": True}, resume=True)
    a, _ = load_model(whole.model_path)
    b, _ = load_model(resumed.model_path)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    rows = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]


def test_adapt_from_a_bag(tmp_path, capsys):
    pytest.importorskip("rosbags")
    from lumde_depth.data.synth import generate
    from lumde_depth.ros.kitti2bag import kitti2bag

    generate(SynthConfig(frames=5, sequences=1, seed=5, layout="kitti_raw", camera_scale=0.25, workers=1),
             tmp_path / "raw", progress=False)
    drive = next((tmp_path / "raw").glob("*/*_sync"))
    kitti2bag(drive, tmp_path / "bag", progress=False)
    args = ["adapt", str(tmp_path / "bag"), "--out", str(tmp_path / "run"), "--no-progress",
            *[f"--set={k}={v}" for k, v in FAST.items() if k != "progress"]]
    assert lumde(args) == 0
    out = capsys.readouterr()
    assert "held-out RMSE" in out.out and "lumde adapt: step 6/6" in out.err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert (report["train_frames"], report["eval_frames"], report["steps"]) == (4, 1, 6)
    _, meta = load_model(tmp_path / "run" / "model.pt")
    assert meta["input_size"] == [94, 310] and meta["adapted"]["recording"] == str(tmp_path / "bag")
    # the same recording as a ROS 1 bag (rosbags' converter) reads into the same frames
    from rosbags.convert import convert
    from rosbags.typesys import Stores, get_typestore
    from lumde_depth.ros.bag_frames import bag_recording
    convert([tmp_path / "bag"], tmp_path / "ros1.bag", "sqlite3", 8, None, "file",
            get_typestore(Stores.ROS1_NOETIC), None, [], [], [], [])
    ros2, ros1 = bag_recording(tmp_path / "bag"), bag_recording(tmp_path / "ros1.bag")
    assert len(ros1) == len(ros2) == 5
    for a, b in zip(ros2.frames(), ros1.frames()):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_allclose(a.K, b.K)
    # wrong topic: the error lists the bag's topics
    assert lumde(["adapt", str(tmp_path / "bag"), "--out", str(tmp_path / "run2"), "--points", "/nope"]) == 1
    assert "/kitti/velo/pointcloud" in capsys.readouterr().err


def test_bad_inputs_give_clear_errors(tmp_path, folder, capsys):
    def run(*args: str) -> str:
        code = lumde(["adapt", *args, "--no-progress"])
        err = capsys.readouterr().err
        assert code in (1, 2), err
        return err

    assert "no such recording" in run(str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert "did you mean 'steps'" in run(str(folder), "--out", str(tmp_path / "o"), "--set", "step=3")
    (tmp_path / "nocalib" / "images").mkdir(parents=True)
    assert "calib.yaml" in run(str(tmp_path / "nocalib"), "--out", str(tmp_path / "o"))

    broken = tmp_path / "broken"
    write_folder(broken, frames=2)
    calib = yaml.safe_load((broken / "calib.yaml").read_text())
    (broken / "calib.yaml").write_text(yaml.safe_dump({**calib, "D": [0.1, 0, 0, 0, 0], "distortion_model": "fisheye"}))
    assert "'equidistant'" in run(str(broken), "--out", str(tmp_path / "o"))
    (broken / "calib.yaml").write_text(yaml.safe_dump({**calib, "Tcam_lidar": 1}))
    assert "unknown key(s) Tcam_lidar" in run(str(broken), "--out", str(tmp_path / "o"))
    (broken / "calib.yaml").write_text(yaml.safe_dump(calib))
    next((broken / "scans").iterdir()).unlink()
    assert "no scan" in run(str(broken), "--out", str(tmp_path / "o"))

    assert "monocular model" in run(str(folder), "--out", str(tmp_path / "o"), "--model", str(DEFAULT_MONO_MODEL))
    with pytest.raises(DataError, match="no such recording"):
        open_recording(tmp_path / "nothing")


def test_folder_recording_reads_pcd_scans_through_the_lens_distortion(tmp_path):
    root = write_folder(tmp_path / "rec", frames=1)
    scan = next((root / "scans").iterdir())
    points = np.fromfile(scan, np.float32).reshape(-1, 4)
    scan.unlink()
    header = (f"VERSION .7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {len(points)}\n"
              f"HEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(points)}\nDATA ascii\n")
    scan.with_suffix(".pcd").write_text(header + "\n".join(" ".join(f"{v:.6f}" for v in p) for p in points))
    calib = yaml.safe_load((root / "calib.yaml").read_text())
    D = [-0.2, 0.05, 0.001, -0.001, 0.0]
    (root / "calib.yaml").write_text(yaml.safe_dump({**calib, "D": D}))
    frame = folder_recording(root).load(0)
    from lumde_depth.geometry import project_points
    K, T = np.reshape(calib["K"], (3, 3)), np.reshape(calib["T_cam_lidar"], (4, 4))
    want = project_points(points.round(6), T, K, calib["width"], calib["height"], D=np.array(D))
    np.testing.assert_allclose(frame.depth, want, atol=1e-4)
    assert frame.D is not None and frame.distortion_model == "plumb_bob"
    assert (want != project_points(points, T, K, calib["width"], calib["height"])).any()   # the lens matters
