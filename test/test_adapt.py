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
        np.testing.assert_allclose(a.T_world_cam, b.T_world_cam)
    # camera poses from /tf (world -> base_link, chained with /tf_static) are the drive's oxts poses
    bag_frames, drive_frames = list(ros2.frames()), list(open_recording(drive).frames())
    for i in range(4):
        np.testing.assert_allclose(np.linalg.inv(bag_frames[i + 1].T_world_cam) @ bag_frames[i].T_world_cam,
                                   np.linalg.inv(drive_frames[i + 1].T_world_cam) @ drive_frames[i].T_world_cam,
                                   atol=1e-4)
    photometric = adapt(ros2, tmp_path / "photometric", config={**FAST, "steps": 2, "score": False, "photometric": 10.0,
                                                                "synthetic_ratio": 0.0})
    rows = [json.loads(line) for line in (tmp_path / "photometric" / "log.jsonl").read_text().splitlines()]
    assert photometric.report["photometric_frames"] == 5 and rows[-1]["photometric"] > 0.01
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


# ---------------------------------------------------------------------- the photometric term (poses known)
KITTI_DRIVE = ("kitti_raw_tiny", "2011_09_26", "2011_09_26_drive_0023_sync")


def rendered_views(seed: int = 4):
    """A synthetic frame (no moving cars, no sensor noise) and two neighbours: the frame before it (10 Hz,
    driving ahead) and a camera 0.5 m to its right at the same instant. Images in [0, 1], the frame's exact
    depth (sky: 1 km), the poses taking its points into each neighbour, K."""
    from lumde_depth.data.synth.camera import CameraConfig, kitti_camera_offset

    def generator(offset) -> Generator:
        camera = CameraConfig(offset=list(offset), exposure=[1.0, 1.0], read_noise=0.0)
        return Generator(SynthConfig(frames=2, sequences=1, seed=seed, camera_scale=0.5, moving_cars=0,
                                     camera=camera), Path("unused"))
    left, right = generator(kitti_camera_offset()), generator(kitti_camera_offset() + [0.0, -0.5, 0.0])
    np.testing.assert_allclose(left.calib.K, right.calib.K)
    views = [(left, 1), (left, 0), (right, 1)]
    frames = [gen.render(0, i) for gen, i in views]
    T_world_cam = [f.T_world_vehicle @ np.linalg.inv(gen.calib.T_cam_lidar) for f, (gen, _) in zip(frames, views)]
    rgb = [f.rgb.transpose(2, 0, 1).astype(np.float32) / 255 for f in frames]
    depth = np.where(frames[0].depth > 0, frames[0].depth, np.float32(1000.0))
    poses = [np.linalg.inv(T) @ T_world_cam[0] for T in T_world_cam[1:]]
    return rgb, depth, poses, left.calib.K


def photometric_of(rgb, depth, poses, K, view=None) -> float:
    """adapt's photometric loss of ``depth`` for ``rgb[0]`` warped from ``rgb[1:]`` (two) through ``poses``,
    in ``view`` (a crop / mirror) if given."""
    from lumde_depth.engine.adapt import View, photometric_loss
    view = view or View(0, 0, depth.shape[0], depth.shape[1], False)
    image = lambda a: torch.from_numpy(np.ascontiguousarray(view.image(a)))  # noqa: E731
    batch = {"rgb": image(rgb[0])[None], "sources": torch.stack([image(a) for a in rgb[1:]])[None],
             "source_from_target": torch.from_numpy(np.stack([view.pose(T) for T in poses]))[None].float(),
             "has_source": torch.tensor([[True, True]]), "K": torch.from_numpy(view.K(K))[None].float()}
    zero, one = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    loss, _ = photometric_loss(image(depth)[None, None], batch, zero, one)
    return float(loss)


def test_photometric_warp_with_the_true_depth_and_pose_explains_the_neighbours():
    """Rendered views: the true depth and poses leave a small photometric error, wrong depths a clearly
    larger one; a crop and a mirrored view (intrinsics and pose mirrored) give the same as the full frame."""
    from lumde_depth.engine.adapt import View
    rgb, depth, poses, K = rendered_views()
    true = photometric_of(rgb, depth, poses, K)
    assert true < 0.02
    for wrong in (depth * 1.3, depth * 0.7, np.full_like(depth, 20.0)):
        assert photometric_of(rgb, wrong, poses, K) > 2.5 * true
    h, w = depth.shape
    crop, mirrored = View(20, 100, h - 40, w - 200, False), View(20, 100, h - 40, w - 200, True)
    assert photometric_of(rgb, depth, poses, K, crop) < 0.02
    assert photometric_of(rgb, depth, poses, K, mirrored) == pytest.approx(photometric_of(rgb, depth, poses, K, crop),
                                                                         rel=0.05)
    # the camera to the right alone: mirrored images need the mirrored pose (it is then a camera to the left)
    stereo = [rgb[0], rgb[2], rgb[2]], [poses[1]] * 2
    unmirrored = [mirrored.pose(T) for T in stereo[1]]      # cancels the mirroring photometric_of applies
    right = photometric_of(stereo[0], depth, stereo[1], K, mirrored)
    assert right < 0.03 and photometric_of(stereo[0], depth, unmirrored, K, mirrored) > 3 * right


def test_photometric_loss_masks_missing_neighbours_and_backpropagates():
    from lumde_depth.engine.adapt import photometric_loss
    rgb, depth, poses, K = rendered_views()
    d = torch.from_numpy(depth)[None, None].repeat(2, 1, 1, 1).requires_grad_()
    batch = {"rgb": torch.from_numpy(rgb[0])[None].repeat(2, 1, 1, 1),
             "sources": torch.from_numpy(np.stack([rgb[1], np.zeros_like(rgb[2])]))[None].repeat(2, 1, 1, 1, 1),
             "source_from_target": torch.from_numpy(np.stack([poses[0], np.eye(4)]))[None].repeat(2, 1, 1, 1).float(),
             "has_source": torch.tensor([[True, False], [False, False]]),
             "K": torch.from_numpy(K)[None].repeat(2, 1, 1).float()}
    loss, automasked = photometric_loss(d * 1.2, batch, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    assert 0 < float(loss[0].detach()) < 0.1 and float(loss[1].detach()) == 0.0     # the black "missing" image is never compared
    assert 0.0 <= float(automasked) < 0.5
    loss.sum().backward()
    assert torch.isfinite(d.grad).all() and d.grad[0].abs().sum() > 0 and d.grad[1].abs().sum() == 0


def test_kitti_raw_recordings_carry_camera_poses_from_oxts(tmp_path, shared_data):
    """Synthetic drive: the camera poses read back from oxts/ match the generator's own trajectory.
    Real drive 0023: consecutive frames are ~0.9 m apart straight ahead (8.8 m/s at 10 Hz)."""
    from lumde_depth.data.synth import generate
    generate(SynthConfig(frames=3, sequences=1, seed=5, layout="kitti_raw", camera_scale=0.25, workers=1),
             tmp_path / "raw", progress=False)
    frames = list(open_recording(next((tmp_path / "raw").glob("*/*_sync"))).frames())
    gen = Generator(SynthConfig(frames=3, sequences=1, seed=5, layout="kitti_raw", camera_scale=0.25), Path("unused"))
    truth = [gen.render(0, i).T_world_vehicle @ np.linalg.inv(gen.calib.T_cam_lidar) for i in range(3)]
    for i in range(2):
        got = np.linalg.inv(frames[i + 1].T_world_cam) @ frames[i].T_world_cam
        want = np.linalg.inv(truth[i + 1]) @ truth[i]
        np.testing.assert_allclose(got, want, atol=2e-3)
    assert frames[1].stamp_ns - frames[0].stamp_ns == pytest.approx(1e8, rel=0.1)

    real = list(open_recording(shared_data.joinpath(*KITTI_DRIVE)).frames())
    for a, b in zip(real, real[1:]):
        step = np.linalg.inv(b.T_world_cam) @ a.T_world_cam
        assert -1.05 < step[2, 3] < -0.85 and abs(step[0, 3]) < 0.05 and abs(step[1, 3]) < 0.05
        assert 95e6 < b.stamp_ns - a.stamp_ns < 115e6


def test_pose_neighbours_pair_frames_of_the_same_camera():
    from lumde_depth.engine.adapt import pose_neighbours
    pose = lambda x: np.array([[1, 0, 0, x], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)  # noqa: E731
    # two cameras interleaved (as DDAD samples), the fourth sample of camera B has no pose
    cameras = [("s", "A"), ("s", "B"), ("s", "A"), ("s", "B"), ("s", "A"), ("s", "B"), ("t", "A")]
    poses = [pose(0), pose(0), pose(1), pose(1), pose(2), None, pose(3)]
    out = pose_neighbours(cameras, poses)
    assert [[j for j, _ in n] for n in out] == [[2], [3], [0, 4], [1], [2], [], []]
    np.testing.assert_allclose(out[2][0][1], pose(1))     # frame 2's origin is 1 m along x in frame 0
    np.testing.assert_allclose(out[2][1][1], pose(-1))    # and -1 m in frame 4


def test_photometric_adapt_on_real_frames(tmp_path, shared_data):
    """KITTI raw drive 0023 with its oxts poses: the photometric term is active (non-zero, it changes the
    training), the batches are those of a run without it (same draws: resumes stay exact), and the
    held-out LiDAR error on the 2 frames never trained on falls."""
    from lumde_depth.engine.adapt import make_batch, _network_frames
    drive = shared_data.joinpath(*KITTI_DRIVE)
    config = {"steps": 30, "batch_size": 2, "holdout": 0.3, "synthetic_frames": 4, "progress": False, "threads": 1,
              "log_every": 10, "photometric": 1.0}
    lines = []
    result = adapt(open_recording(drive), tmp_path / "run", config=config, log=lines.append)
    report = result.report
    assert (report["train_frames"], report["eval_frames"], report["photometric_frames"]) == (5, 2, 5)
    assert any("photometric term (weight 1) on 5 of 5 frames" in line for line in lines)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    active = [r for r in rows if not np.isnan(r["photometric"])]     # nan: no real frame in that step's batch
    assert active and all(0.01 < r["photometric"] < 1.0 and 0.0 <= r["automasked"] < 0.6 for r in active)
    assert report["after"]["after"]["rmse"] < report["before"]["before"]["rmse"]
    assert "photometric weight 1 on 5 frames" in (tmp_path / "run" / "report.md").read_text()
    assert load_model(result.model_path)[1]["adapted"]["photometric"] == 1.0

    # the term changes what is learnt: two steps with and without it end with different weights
    short = {**config, "steps": 2, "score": False, "synthetic_ratio": 0.0}
    with_term = load_model(adapt(open_recording(drive), tmp_path / "a", config=short).model_path)[0]
    without = load_model(adapt(open_recording(drive), tmp_path / "b", config={**short, "photometric": 0.0}).model_path)[0]
    assert any(not torch.equal(x, y) for x, y in zip(with_term.state_dict().values(), without.state_dict().values()))

    # and draws the same samples as a run without it
    net, meta = load_model(result.model_path)
    real, _ = _network_frames(net, meta, (94, 310), open_recording(drive), False)
    cfg = AdaptConfig(photometric=1.0, crop=[64, 128])
    for step in range(3):
        a, b = make_batch(real, [], cfg, step), make_batch(real, [], AdaptConfig(crop=[64, 128]), step)
        for key in b:
            assert torch.equal(a[key], b[key]), key
        assert a["has_source"].any() and a["sources"].shape == (4, 2, 3, 64, 128)


def test_photometric_needs_poses(tmp_path, folder, capsys):
    """A recording without camera poses: photometric > 0 is refused up front, naming the problem and the fix;
    a misspelt key names the right one."""
    code = lumde(["adapt", str(folder), "--out", str(tmp_path / "o"), "--no-progress", "--photometric", "0.5"])
    err = capsys.readouterr().err
    assert code == 1 and "needs camera poses" in err and "photometric=0" in err and "oxts" in err
    assert not (tmp_path / "o" / "model.pt").exists()
    code = lumde(["adapt", str(folder), "--out", str(tmp_path / "o"), "--no-progress", "--set", "photometrc=0.5"])
    assert code in (1, 2) and "did you mean 'photometric'" in capsys.readouterr().err


def test_bag_camera_poses_interpolate_tf_at_the_image_stamp():
    """A moving /tf edge (world -> base, 10 m and a quarter turn in 10 s) under a static one (base -> cam)."""
    from types import SimpleNamespace as NS
    from lumde_depth.ros.bag_frames import MovingTransforms
    from lumde_depth.ros.bag_process import StaticTransforms

    def tf(parent, child, sec, x, yaw):
        q = [0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)]
        return NS(transforms=[NS(header=NS(frame_id=parent, stamp=NS(sec=sec, nanosec=0)), child_frame_id=child,
                                 transform=NS(translation=NS(x=x, y=0.0, z=0.0),
                                              rotation=NS(x=q[0], y=q[1], z=q[2], w=q[3])))])
    moving, static = MovingTransforms(), StaticTransforms()
    moving.add(tf("world", "base", 10, 10.0, np.pi / 2))
    moving.add(tf("world", "base", 0, 0.0, 0.0))
    static.add(tf("base", "cam", 0, 1.0, 0.0))
    T = moving.pose("cam", 5_000_000_000, static)
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    np.testing.assert_allclose(T[:3, :3], [[c, -s, 0], [s, c, 0], [0, 0, 1]], atol=1e-9)
    np.testing.assert_allclose(T[:3, 3], [5.0 + c, s, 0.0], atol=1e-9)       # the camera 1 m ahead of the base
    assert moving.pose("cam", -11_000_000_000, static) is None               # more than one interval outside
    assert moving.pose("base", 0, StaticTransforms()) is not None
    assert MovingTransforms().pose("cam", 0, static) is None                 # only static edges: no motion pose
