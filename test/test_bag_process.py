"""``lumde bag process``: the node's pipeline over a bag, offline; outputs equal the pipeline run directly."""
import types

import numpy as np
import pytest

from lumde_depth.cli.main import main as lumde
from lumde_depth.geometry import read_kitti_raw_calib
from lumde_depth.ros import convert
from lumde_depth.ros.kitti2bag import kitti2bag

pytest.importorskip("rosbags")
from bag_helpers import H, N, W, make_drive, read_bag  # noqa: E402
from lumde_depth.data.depth_io import write_depth_png  # noqa: E402
from lumde_depth.inference import DepthCompleter  # noqa: E402
from lumde_depth.ros.bag_io import BagError  # noqa: E402
from lumde_depth.ros.bag_process import StaticTransforms, choose_inputs, process_bag  # noqa: E402
from lumde_depth.ros.pipeline import DepthPipeline  # noqa: E402

pytestmark = pytest.mark.real_libs


@pytest.fixture(scope="module")
def pipeline():
    return DepthPipeline(DepthCompleter.load(backend="classical"), colored=True)


@pytest.fixture
def kitti_bag(tmp_path):
    drive, truth = make_drive(tmp_path / "raw")
    kitti2bag(drive, tmp_path / "bag", progress=False)
    return drive, tmp_path / "bag", truth


def test_outputs_equal_the_pipeline_run_directly(tmp_path, kitti_bag, pipeline):
    drive, bag, truth = kitti_bag
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    calib = read_kitti_raw_calib(drive, 2)
    expected = [pipeline.process(truth["images"][k], calib.P, truth["scans"][k][:, :3], calib.T_cam_lidar)
                for k in range(N)]
    write_depth_png(gt_dir / "0000000001.png", expected[1].depth)  # ground truth for frame 1 only

    summary = process_bag(bag, tmp_path / "out", pipeline, gt_dir=gt_dir, progress=False)
    assert (summary.sets, summary.written, summary.errors) == (N, N, {})
    assert summary.evaluated == 1 and summary.metrics["rmse"] < 2.0  # mm: png quantization only

    before, _ = read_bag(bag)
    after, _ = read_bag(tmp_path / "out")
    for topic, msgs in before.items():  # every input message copied unchanged
        assert [t for t, _ in after[topic]] == [t for t, _ in msgs]
    image_times = [t for t, _ in before["/kitti/camera_color_left/image_raw"]]
    for topic in ("/depth/image", "/depth/camera_info", "/depth/points", "/depth/colored", "/depth/confidence"):
        assert [t for t, _ in after[topic]] == image_times, topic
        for (_, msg), t in zip(after[topic], image_times):
            assert convert.stamp_to_ns(msg.header.stamp) == t and msg.header.frame_id == "camera_color_left"
    for k, (_, msg) in enumerate(after["/depth/image"]):
        assert msg.encoding == "32FC1" and (msg.width, msg.height) == (W, H)
        depth = convert.image_to_numpy(msg)
        want = expected[k].depth
        np.testing.assert_array_equal(np.isnan(depth), want == 0)
        np.testing.assert_array_equal(depth[want > 0], want[want > 0])
    cloud = after["/depth/points"][0][1]
    assert (cloud.height, cloud.width, cloud.is_dense) == (H, W, False)
    for name in expected[0].cloud.dtype.names:   # field by field: NaN (no depth) equals NaN
        np.testing.assert_array_equal(convert.cloud_to_structured(cloud)[name], expected[0].cloud[name])
    np.testing.assert_array_equal(convert.image_to_numpy(after["/depth/colored"][2][1]), expected[2].colored)
    np.testing.assert_array_equal(convert.image_to_numpy(after["/depth/confidence"][1][1]), expected[1].confidence)


def test_cli_with_explicit_extrinsic_and_errors(tmp_path, kitti_bag, capsys):
    drive, bag, _ = kitti_bag
    T = read_kitti_raw_calib(drive, 2).T_cam_lidar
    args = ["bag", "process", str(bag), str(tmp_path / "out"), "--backend", "classical", "--no-progress",
            "--namespace", "lumde", "--T-cam-lidar", *map(str, T.reshape(-1))]
    assert lumde(args) == 0
    after, _ = read_bag(tmp_path / "out")
    assert len(after["/lumde/depth/image"]) == N
    assert "wrote" in capsys.readouterr().out
    assert lumde([*args[:3], str(tmp_path / "blanked"), *args[4:], "--min-confidence", "0.5"]) == 0
    blanked, _ = read_bag(tmp_path / "blanked")
    confidence = convert.image_to_numpy(after["/lumde/depth/confidence"][0][1])
    depth = convert.image_to_numpy(blanked["/lumde/depth/image"][0][1])
    low = confidence < 0.5
    assert low.any() and np.isnan(depth[low]).all()
    np.testing.assert_array_equal(depth[~low], convert.image_to_numpy(after["/lumde/depth/image"][0][1])[~low])

    flipped = np.diag([1.0, 1.0, -1.0, 1.0]) @ T  # every point behind the camera
    args = ["bag", "process", str(bag), str(tmp_path / "out2"), "--backend", "classical", "--no-progress",
            "--T-cam-lidar", *map(str, flipped.reshape(-1))]
    assert lumde(args) == 1
    err = capsys.readouterr()
    assert "no_points_in_view" in err.err and "skipped frames" in err.out
    assert lumde(["bag", "process", str(bag), str(tmp_path / "out"), "--backend", "classical"]) == 1
    assert "exists already" in capsys.readouterr().err


def test_choose_inputs():
    conns = [types.SimpleNamespace(topic=t, msgtype=m) for t, m in (
        ("/cam/image_raw", "sensor_msgs/msg/Image"), ("/cam/camera_info", "sensor_msgs/msg/CameraInfo"),
        ("/lidar", "sensor_msgs/msg/PointCloud2"), ("/other/camera_info", "sensor_msgs/msg/CameraInfo"))]
    assert choose_inputs(conns, None, None, None) == ("/cam/image_raw", "/cam/camera_info", "/lidar")
    two = conns + [types.SimpleNamespace(topic="/cam2/image_raw", msgtype="sensor_msgs/msg/Image")]
    with pytest.raises(BagError, match="give it with --image"):
        choose_inputs(two, None, None, None)
    with pytest.raises(BagError, match="has type sensor_msgs/msg/PointCloud2"):
        choose_inputs(conns, "/lidar", None, None)


def test_static_transforms_compose_chains():
    def tf(parent, child, xyz):
        return types.SimpleNamespace(
            header=types.SimpleNamespace(frame_id=parent), child_frame_id=child,
            transform=types.SimpleNamespace(translation=types.SimpleNamespace(x=xyz[0], y=xyz[1], z=xyz[2]),
                                            rotation=types.SimpleNamespace(x=0.0, y=0.0, z=0.0, w=1.0)))
    tree = StaticTransforms()
    tree.add(types.SimpleNamespace(transforms=[tf("base", "velo", (1, 0, 0)), tf("base", "cam", (0, 2, 0)),
                                               tf("odom", "other", (0, 0, 0))]))
    T = tree.lookup("cam", "velo")  # T_cam_velo: velo origin seen from cam
    np.testing.assert_allclose(T[:3, 3], [1, -2, 0])
    assert tree.lookup("cam", "other") is None


def test_synthetic_drive_end_to_end(tmp_path, pipeline):
    """lumde synth (kitti_raw) -> lumde kitti2bag -> lumde bag process: dense depth agrees with the LiDAR."""
    from lumde_depth.geometry import project_points

    assert lumde(["synth", "--out", str(tmp_path / "synth"), "--frames", "2", "--sequences", "1", "--layout",
                  "kitti_raw", "--workers", "1", "--set", "camera_scale=0.2"]) == 0
    drive = next((tmp_path / "synth").glob("*/*_drive_*_sync"))
    assert lumde(["kitti2bag", str(drive), str(tmp_path / "bag"), "--no-progress"]) == 0
    summary = process_bag(tmp_path / "bag", tmp_path / "out", pipeline, progress=False)
    assert (summary.sets, summary.written, summary.errors) == (2, 2, {})
    after, _ = read_bag(tmp_path / "out")
    calib = read_kitti_raw_calib(drive, 2)
    scan = np.fromfile(sorted((drive / "velodyne_points" / "data").glob("*.bin"))[0], np.float32).reshape(-1, 4)
    depth = convert.image_to_numpy(after["/depth/image"][0][1])
    sparse = project_points(scan, calib.T_cam_lidar, calib.P, depth.shape[1], depth.shape[0])
    hit = sparse > 0
    assert np.isfinite(depth).mean() > 0.5
    assert np.nanmedian(np.abs(depth[hit] - sparse[hit]) / sparse[hit]) < 0.05


def _raw_camera_bag(path, frame, clouds_in=("lidar", "base_link", "lidar")):
    """A bag of a raw (distorted) camera: image_raw + CameraInfo (K, D, P) + clouds in the given frames."""
    from lumde_depth.ros.bag_io import new_bag, typestore

    ts = typestore()
    height, width = frame["rgb"].shape[:2]
    with new_bag(path) as writer:
        conns = {}
        for k, cloud_frame in enumerate(clouds_in):
            stamp = 1_000_000_000 + k * 100_000_000
            header = convert.make_header(stamp, "camera", ts)
            msgs = {"/cam/image_raw": convert.numpy_to_image(frame["rgb"], "rgb8", header, ts),
                    "/cam/camera_info": convert.make_camera_info(header, width, height, K=frame["K"], P=frame["P"],
                                                                 D=frame["D"], typestore=ts),
                    "/lidar/points": convert.xyzi_to_cloud(frame["points"], convert.make_header(stamp, cloud_frame, ts),
                                                           ts)}
            for topic, msg in msgs.items():
                if topic not in conns:
                    conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
                writer.write(conns[topic], stamp, ts.serialize_cdr(msg, msg.__msgtype__))
    return path


def test_raw_distorted_camera_and_cloud_frames(tmp_path, pipeline, capsys):
    """A raw camera (CameraInfo D != 0): the written depth is the pipeline's through the distortion (or on the
    grid of P with --rectify, its camera_info then D = 0); a cloud outside --lidar-frame is skipped and counted."""
    from node_harness import synthetic_frame

    from lumde_depth.geometry import CameraModel, project_points
    frame = synthetic_frame(96, 320, 20_000)
    frame["K"] = frame["P"][:, :3]
    frame["D"] = np.array([-0.25, 0.08, 0.001, -0.002, 0.0])
    bag = _raw_camera_bag(tmp_path / "raw", frame)
    T = frame["T"]
    args = ["bag", "process", str(bag), str(tmp_path / "out"), "--backend", "classical", "--no-progress",
            "--T-cam-lidar", *map(str, T.reshape(-1)), "--lidar-frame", "lidar"]
    assert lumde(args) == 0
    assert "wrong_cloud_frame" in capsys.readouterr().err
    after, _ = read_bag(tmp_path / "out")
    assert len(after["/depth/image"]) == 2   # the base_link cloud's set skipped
    camera = CameraModel(K=frame["K"], width=320, height=96, D=frame["D"], distortion_model="plumb_bob",
                         P=frame["P"])
    want = pipeline.process(frame["rgb"], camera, frame["points"][:, :3], T)
    depth = convert.image_to_numpy(after["/depth/image"][0][1])
    np.testing.assert_array_equal(np.nan_to_num(depth), want.depth)
    assert not np.array_equal(want.sparse, pipeline.process(frame["rgb"], frame["P"], frame["points"][:, :3], T).sparse)
    np.testing.assert_array_equal(after["/depth/camera_info"][0][1].d, frame["D"])

    summary = process_bag(bag, tmp_path / "rect", DepthPipeline(pipeline.completer, rectify=True), T_cam_lidar=T,
                          progress=False, log=lambda _text: None)
    assert summary.written == 2 and summary.errors == {"wrong_cloud_frame": 1}   # lidar_frame: the first cloud's
    rect, _ = read_bag(tmp_path / "rect")
    info = rect["/depth/camera_info"][0][1]
    assert not info.d.any() and np.allclose(info.k.reshape(3, 3), frame["P"][:, :3])
    want = DepthPipeline(pipeline.completer, rectify=True).process(frame["rgb"], camera, frame["points"][:, :3], T)
    assert want.rectified   # its LiDAR is projected with P alone, onto the rectified image
    np.testing.assert_array_equal(want.sparse, project_points(frame["points"], T, frame["P"], 320, 96))
    np.testing.assert_array_equal(np.nan_to_num(convert.image_to_numpy(rect["/depth/image"][0][1])), want.depth)
