"""Readers of the real rigs that are not KITTI's: DDAD (DGP scenes) and Argoverse stereo."""
import json
import shutil

import numpy as np
import pytest

from lumde_depth.data.argoverse import argoverse_stereo_frames, disparity_to_depth
from lumde_depth.data.ddad import DDADScene, ddad_frames, ddad_scenes, pose_matrix
from lumde_depth.data.depth_io import DataError


@pytest.fixture(scope="module")
def ddad_root(shared_data):
    root = shared_data / "ddad_testscene"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    return root


def test_ddad_scenes_cameras_and_projected_lidar(ddad_root):
    scenes = ddad_scenes(ddad_root)
    assert [s.name for s in scenes] == ["scene_01", "scene_02"]
    assert [len(s) for s in scenes] == [3, 3]
    assert scenes[0].cameras == ["CAMERA_01", "CAMERA_05", "CAMERA_06"]
    assert len(scenes[1].cameras) == 6
    f = scenes[0].frame(0, "CAMERA_01")
    assert f.rgb.shape == (1216, 1936, 3) and f.rgb.dtype == np.uint8
    assert f.depth.shape == (1216, 1936) and f.depth.dtype == np.float32
    assert f.K[0, 0] == pytest.approx(2167.69, abs=0.01) and f.K[1, 2] == pytest.approx(604.99, abs=0.01)
    assert (f.scene, f.camera, f.name) == ("scene_01", "CAMERA_01", "scene_01/CAMERA_01/15569195938415230")
    valid = f.depth > 0
    # the provenance's figures: 0.2-0.55 % of the pixels, depth 2.4-231 m, far points beyond 200 m
    assert 0.002 < valid.mean() < 0.0055
    assert 4.0 < f.depth[valid].min() and f.depth[valid].max() > 200.0
    assert f.points.shape[1] == 4 and f.stamp_ns == 15569195938415230 * 1000
    # the world-pose projection agrees with the calibration's vehicle extrinsics (<= 0.05 m)
    calib_path = scenes[0].path.parent / "calibration" / f"{scenes[0].calibration_key}.json"
    calib = json.loads(calib_path.read_text())
    ext = {n: pose_matrix(e) for n, e in zip(calib["names"], calib["extrinsics"])}
    T_calib = np.linalg.inv(ext["CAMERA_01"]) @ ext["LIDAR"]
    assert np.abs(f.T_cam_lidar[:3, 3] - T_calib[:3, 3]).max() < 0.05
    assert np.abs(f.T_cam_lidar[:3, :3] - T_calib[:3, :3]).max() < 0.01


def test_ddad_frames_count_and_camera_filter(ddad_root):
    names = [f.name for f in ddad_frames(ddad_root, cameras=["CAMERA_01"])]
    assert len(names) == 6 and all("/CAMERA_01/" in n for n in names)


def test_ddad_bad_inputs_name_the_problem(ddad_root, tmp_path):
    with pytest.raises(DataError, match="no DGP scene json"):
        ddad_scenes(tmp_path)
    bad = tmp_path / "scene_x" / "scene_abc.json"
    bad.parent.mkdir()
    bad.write_text('{"data": []}')
    with pytest.raises(DataError, match="not a DGP scene json"):
        DDADScene(bad)
    scene = ddad_scenes(ddad_root)[0]
    with pytest.raises(DataError, match="no camera 'CAMERA_09'"):
        scene.frame(0, "CAMERA_09")
    with pytest.raises(DataError, match="malformed DGP pose"):
        pose_matrix({"rotation": {"qw": 1}})


def test_argoverse_ground_truth_depth(shared_data):
    root = shared_data / "argoverse_stereo"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    (f,) = list(argoverse_stereo_frames(root))
    assert f.rgb.shape == (2056, 2464, 3) and f.depth.shape == (2056, 2464)
    assert f.K[0, 0] == pytest.approx(3894.034, abs=1e-3)
    valid = f.depth > 0
    # provenance: 0.73 % valid, depth 6.6-191 m, median 21.9 m
    assert valid.mean() == pytest.approx(0.0073, abs=0.0005)
    assert f.depth[valid].min() == pytest.approx(6.62, abs=0.05)
    assert f.depth[valid].max() == pytest.approx(190.8, abs=0.5)
    assert np.median(f.depth[valid]) == pytest.approx(21.9, abs=0.1)


def test_argoverse_missing_calibration_is_named(shared_data, tmp_path):
    root = shared_data / "argoverse_stereo"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    copy = tmp_path / "argo"
    shutil.copytree(root / "tests" / "test_data" / "stereo", copy)
    next(copy.rglob("vehicle_calibration_stereo_info.json")).unlink()
    with pytest.raises(DataError, match="vehicle_calibration_stereo_info.json: file not found"):
        list(argoverse_stereo_frames(copy))
    with pytest.raises(DataError, match="no disparity_maps"):
        list(argoverse_stereo_frames(tmp_path / "argo" / "prediction"))


def test_disparity_to_depth():
    disp = np.array([[0.0, 10.0], [3894.034 * 0.2986, 20.0]], np.float32)
    depth = disparity_to_depth(disp, fx=3894.034)
    np.testing.assert_allclose(depth, [[0.0, 116.276], [1.0, 58.138]], rtol=1e-4)


def test_real_sets_and_protocols(shared_data):
    from lumde_depth.data import real_sets

    rng = np.random.default_rng(0)
    frames = list(real_sets.kitti_object_frames(shared_data))
    assert len(frames) == 6 and all(0.03 < (f.depth > 0).mean() < 0.06 for f in frames)
    sparse, held = real_sets.holdout(frames[0].depth, rng)
    valid = frames[0].depth > 0
    assert not np.any((sparse > 0) & (held > 0)) and np.array_equal((sparse > 0) | (held > 0), valid)
    assert (held > 0).sum() / valid.sum() == pytest.approx(real_sets.HOLDOUT, abs=0.01)
    assert [f.name for f in real_sets.pjlab_frames(shared_data)] == [
        "lidar2camera/auto_calib_v2.0/data/ours/3", "lidar2camera/manual_calib/data"]   # calibrated extrinsics only
    indoor = list(real_sets.rgbd_sensor_frames(shared_data))
    assert [f.name for f in indoor] == ["NYU v2", "SUN RGB-D", "TUM"]
    picked = real_sets.sample_points(indoor[0].depth, rng)
    assert (picked > 0).sum() == 500 and np.array_equal(picked[picked > 0], indoor[0].depth[picked > 0])
