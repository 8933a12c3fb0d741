"""Node parameters (descriptors, ranges, shipped yaml files), extrinsic sources and diagnostics figures."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import yaml

from lumde_depth.config import ConfigError, from_dict
from lumde_depth.ros.diagnostics import NodeStats, RateMeter
from lumde_depth.ros.extrinsics import FixedExtrinsic, matrix_from_calib_file, matrix_from_param
from lumde_depth.ros.params import LIVE, NodeParams, change, validate

CONFIG = Path(__file__).resolve().parents[1] / "config"


@pytest.mark.parametrize("name", ["default.yaml", "kitti.yaml"])
def test_shipped_params_files_are_valid(name):
    data = yaml.safe_load((CONFIG / name).read_text())
    params = from_dict(NodeParams, data["/**"]["ros__parameters"])
    validate(params)
    floats = [f.name for f in dataclasses.fields(NodeParams) if f.type in ("float", float)]
    for key, value in data["/**"]["ros__parameters"].items():
        if key in floats:   # ROS refuses an integer for a double parameter
            assert isinstance(value, float), f"{name}: write {key}: {value}.0"


def test_ddad_rig_params_file_is_valid_and_holds_the_scene_calibration(shared_data):
    """config/ddad.yaml: six cameras, each with its <camera>.T_cam_lidar; the matrices are the DDAD test scene's."""
    import json

    import numpy as np

    from lumde_depth.data.ddad import ddad_scenes, pose_matrix
    from lumde_depth.ros.extrinsics import matrix_from_param
    data = yaml.safe_load((CONFIG / "ddad.yaml").read_text())["/**"]["ros__parameters"]
    per_camera = {name: data.pop(name) for name in data["cameras"]}
    params = from_dict(NodeParams, data)
    validate(params)
    assert len(params.cameras) == 6 and params.lidar_frame == "LIDAR"
    root = shared_data / "ddad_testscene"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    scene = next(s for s in ddad_scenes(root) if len(s.cameras) == 6)
    assert scene.cameras == params.cameras
    calib = json.loads((scene.path.parent / "calibration" / f"{scene.calibration_key}.json").read_text())
    ext = {n: pose_matrix(e) for n, e in zip(calib["names"], calib["extrinsics"])}
    for name, section in per_camera.items():
        assert all(isinstance(v, float) for v in section["T_cam_lidar"]), name   # a ROS double array
        np.testing.assert_allclose(matrix_from_param(section["T_cam_lidar"]),
                                   np.linalg.inv(ext[name]) @ ext["LIDAR"], atol=1e-5)


def test_several_cameras_are_checked():
    validate(NodeParams(cameras=["front", "left"]))
    with pytest.raises(ConfigError, match="distinct names"):
        validate(NodeParams(cameras=["front", "front"]))
    with pytest.raises(ConfigError, match="not valid: \\['front/left'\\]"):
        validate(NodeParams(cameras=["front/left", "right"]))
    with pytest.raises(ConfigError, match="mode completion only"):
        validate(NodeParams(cameras=["front", "left"], mode="auto"))


def test_params_file_typos_are_named():
    with pytest.raises(ConfigError, match="did you mean 'decimation'"):
        from_dict(NodeParams, {"decimaton": 2})
    with pytest.raises(ConfigError, match="below max_depth"):
        validate(NodeParams(min_depth=50.0, max_depth=10.0))
    with pytest.raises(ConfigError, match="16"):
        validate(NodeParams(T_cam_lidar=[1.0, 2.0]))


def test_declared_parameters_have_descriptions_and_ranges(ros_context):
    import rclpy
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import Parameter

    from lumde_depth.ros.params import declare
    T = np.arange(16, dtype=float)
    node = rclpy.create_node("params_probe", context=ros_context,
                             parameter_overrides=[Parameter("T_cam_lidar", value=T.tolist()),
                                                  Parameter("decimation", value=4)])
    try:
        params = declare(node)
        assert params.T_cam_lidar == T.tolist() and params.decimation == 4 and params.backend == "auto"
        for f in dataclasses.fields(NodeParams):
            descriptor = node.describe_parameter(f.name)
            assert descriptor.description, f.name
            assert not descriptor.read_only   # a change is refused by the node, with the reason
            assert descriptor.description.endswith("[changes while the node runs]" if f.name in LIVE else
                                                   " (a change is refused with that reason)]"), f.name
            if f.metadata.get("low") is not None and f.metadata.get("high") is not None:
                ranges = descriptor.floating_point_range or descriptor.integer_range
                assert ranges and ranges[0].from_value == f.metadata["low"], f.name
            if f.metadata.get("choices"):
                assert all(c in descriptor.additional_constraints for c in f.metadata["choices"])
        assert node.describe_parameter("T_cam_lidar").type == ParameterType.PARAMETER_DOUBLE_ARRAY
    finally:
        node.destroy_node()


def test_extrinsic_parameter_forms_agree():
    from transforms3d.quaternions import mat2quat
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, [0.1, -0.2, 0.3]
    w, x, y, z = mat2quat(R)
    np.testing.assert_allclose(matrix_from_param(T.ravel()), T)
    np.testing.assert_allclose(matrix_from_param([0.1, -0.2, 0.3, x, y, z, w]), T, atol=1e-12)
    with pytest.raises(ValueError, match="16 values"):
        matrix_from_param([1.0] * 5)
    with pytest.raises(ValueError, match="last row"):
        matrix_from_param(np.ones(16))
    with pytest.raises(ValueError, match="unit length"):
        matrix_from_param([0, 0, 0, 1.0, 1.0, 0, 0])


def test_fixed_extrinsic_maps_from_one_cloud_frame():
    """A fixed T_cam_lidar serves clouds of lidar_frame only; empty lidar_frame takes the first cloud's frame
    (said once), but never a cloud already in the camera frame."""
    from lumde_depth.ros.pipeline import FrameError
    T = matrix_from_param([0.1, -0.2, 0.3, 0, 0, 0, 1.0])
    named = FixedExtrinsic(T, "velo_link")
    np.testing.assert_array_equal(named.for_cloud("/velo_link", "camera"), T)
    with pytest.raises(FrameError, match="'base_link' is not 'velo_link'") as err:
        named.for_cloud("base_link", "camera")
    assert err.value.kind == "wrong_cloud_frame" and "lidar_frame:=base_link" in str(err.value)
    with pytest.raises(FrameError, match="set --lidar-frame base_link"):
        FixedExtrinsic(T, "velo_link", setting="--lidar-frame ").for_cloud("base_link", "camera")
    notes: list[str] = []
    learned = FixedExtrinsic(T, "", notes.append)
    with pytest.raises(FrameError, match="camera's own frame 'camera'"):
        learned.for_cloud("camera", "camera")
    assert learned.lidar_frame == "" and notes == []
    learned.for_cloud("lidar", "camera")
    learned.for_cloud("lidar", "camera")
    assert len(notes) == 1 and "'lidar'" in notes[0] and learned.describe() == "parameter/calib file from 'lidar'"
    with pytest.raises(FrameError, match="'base_link' is not 'lidar'"):
        learned.for_cloud("base_link", "camera")
    np.testing.assert_array_equal(FixedExtrinsic(np.eye(4)).for_cloud("camera", "camera"), np.eye(4))


def test_rectify_changes_at_run_time_lidar_frame_does_not():
    assert change(NodeParams(), {"rectify": True}).rectify is True
    with pytest.raises(ConfigError, match="lidar_frame cannot change while the node runs .*extrinsic source"):
        change(NodeParams(), {"lidar_frame": "base_link"})


def test_calib_file_forms(shared_data):
    from lumde_depth.geometry import read_kitti_object_calib, read_kitti_raw_calib
    obj = shared_data / "kitti_object" / "training" / "calib" / "000000.txt"
    np.testing.assert_array_equal(matrix_from_calib_file(obj), read_kitti_object_calib(obj).T_cam_lidar)
    raw = shared_data / "kitti_raw_calib" / "2011_09_26"
    expected = read_kitti_raw_calib(raw).T_cam_lidar
    np.testing.assert_array_equal(matrix_from_calib_file(raw), expected)
    np.testing.assert_array_equal(matrix_from_calib_file(raw / "calib_velo_to_cam.txt"), expected)
    with pytest.raises(FileNotFoundError, match="calib_file not found"):
        matrix_from_calib_file(raw / "nope.txt")


def test_stats_count_drops_errors_and_latency():
    stats = NodeStats()
    for replaced in (False, True, True):
        stats.set_received(replaced)
    stats.error("empty_cloud")
    stats.lost("points", 3)
    for ms in range(1, 101):
        stats.published(float(ms), {"complete": 10.0})
    values = stats.values()
    assert values["synchronized sets"] == "3" and values["dropped (replaced before processing)"] == "2"
    assert values["bad frames"] == "1" and values["bad frames: empty_cloud"] == "1"
    assert values["lost by DDS: points"] == "3" and values["processed"] == "100"
    assert float(values["latency p50 (ms)"]) == pytest.approx(50.5)
    assert float(values["latency p99 (ms)"]) == pytest.approx(99.0, abs=0.05)
    assert values["complete mean (ms)"] == "10.0"


def test_rate_meter():
    meter = RateMeter()
    for i in range(11):
        meter.tick(100.0 + 0.1 * i)
    assert meter.rate(now=101.0) == pytest.approx(10.0)
    assert meter.rate(now=103.0) == pytest.approx(10 / 3.0)   # silent: the rate falls within the window
    assert meter.rate(now=200.0) == 0.0


def test_rates_are_over_the_last_seconds_not_the_last_events():
    """3 Hz for a minute, a pause, then 10 Hz: within the 5 s window the rate shows 10 Hz (the last-200-events
    average showed ~3 Hz)."""
    meter = RateMeter(window=5.0)
    for i in range(180):
        meter.tick(i / 3.0)
    for i in range(60):
        meter.tick(80.0 + 0.1 * i)
    assert meter.rate(now=85.95) == pytest.approx(10.0, rel=0.02)


def test_silent_inputs_are_judged_by_their_own_rate():
    """A slow topic of large messages (one every 2.5 s) is not missing 2.2 s after its last one; an input
    never heard is, once 2 s passed while others arrive."""
    stats = NodeStats()
    with patch("time.monotonic", side_effect=lambda: clock[0]):
        clock = [0.0]
        for k in range(5):
            clock[0] = 2.5 * k
            stats.input("points")
            for j in range(25):
                clock[0] = 2.5 * k + 0.1 * j
                stats.input("image")
        clock[0] = 10.0 + 2.2 + 0.05
        assert stats.silent(("image", "camera_info", "points"), 2.0) == ["camera_info"]
        clock[0] = 10.0 + 8.0
        stats.input("image")
        assert stats.silent(("image", "camera_info", "points"), 2.0) == ["camera_info", "points"]
        assert not stats.quiet(2.0) and NodeStats().quiet(2.0)


def test_refusals_name_their_dominant_kind_and_odd_stamps_stay_out_of_latency():
    from diagnostic_msgs.msg import DiagnosticStatus

    from lumde_depth.ros.diagnostics import status_message
    stats = NodeStats()
    for _ in range(9):
        stats.set_received(False)
        stats.error("no_extrinsic", "no transform 'velo' -> 'cam': set T_cam_lidar or calib_file")
    stats.error("bad_cloud", "cannot read the cloud")
    status = status_message(stats, "n", "n", {})
    assert status.level == DiagnosticStatus.WARN
    assert status.message == ("no depth published: every set refused in the last 5 s, mostly no_extrinsic (9 of 10): "
                              "no transform 'velo' -> 'cam': set T_cam_lidar or calib_file")
    stats.published(20.0, {})
    stats.stamp_anomaly("zero")
    stats.published(None, {})   # a zero stamp: published, no latency sample
    values = stats.values()
    assert values["stamp not used for latency: zero"] == "1" and values["latency p99 (ms)"] == "20.0"


def test_run_time_changes_are_checked_as_at_start_up():
    current = NodeParams()
    assert change(current, {"decimation": 4, "slop": 0.1}) == NodeParams(decimation=4, slop=0.1)
    assert current.decimation == 1
    for updates, reason in (({"backend": "classical"}, r"backend cannot change while the node runs \(the networks"),
                            ({"qos_depth": 1}, "the topics are subscribed and advertised at start-up"),
                            ({"decimation": 0}, "decimation"), ({"color_near": 90.0}, "must be below color_far"),
                            ({"slop": 0.2, "exact_sync": True}, "exact_sync cannot change")):
        with pytest.raises(ConfigError, match=reason):
            change(current, updates)
    with pytest.raises(ConfigError, match="slop has no effect with exact_sync:=true"):
        change(NodeParams(exact_sync=True), {"slop": 0.2})
    assert LIVE <= {f.name for f in dataclasses.fields(NodeParams)}
