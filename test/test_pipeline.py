"""DepthPipeline: projection + completion + organized cloud, the code shared by the node and bag process."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lumde_depth.geometry import backproject, project_points, read_kitti_object_calib, unpack_rgb
from lumde_depth.inference import DepthCompleter
from lumde_depth.ros.pipeline import DepthPipeline, FrameError
from lumde_depth.ros import convert
from lumde_depth.data.depth_io import read_velodyne_bin

P = np.array([[120.0, 0.0, 79.5, 0.0], [0.0, 120.0, 47.5, 0.0], [0.0, 0.0, 1.0, 0.0]])
# LiDAR (x forward, y left, z up) -> camera optical (x right, y down, z forward), LiDAR 0.3 m above.
T = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.3], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _scene(seed: int = 0):
    """A wall 20 m ahead and a box 6 m ahead, sampled like a LiDAR (LiDAR frame)."""
    rng = np.random.default_rng(seed)
    az, el = np.meshgrid(np.linspace(-0.6, 0.6, 300), np.linspace(-0.35, 0.1, 40))
    dirs = np.stack([np.ones_like(az), np.tan(az), np.tan(el)], -1).reshape(-1, 3)
    dist = np.where((np.abs(dirs[:, 1]) < 0.1) & (dirs[:, 2] > -0.2), 6.0, 20.0)
    points = (dirs * dist[:, None]).astype(np.float32)
    rgb = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    return rgb, points


@pytest.fixture(scope="module")
def classical():
    return DepthCompleter.load(None, backend="classical")


def test_pipeline_outputs_are_projection_completion_and_backprojection(classical):
    rgb, points = _scene()
    result = DepthPipeline(classical, max_depth=80.0).process(rgb, P, points, T)
    np.testing.assert_array_equal(result.sparse, project_points(points, T, P, 160, 96, 0.1, 80.0))
    assert 0.02 < (result.sparse > 0).mean() < 0.6
    np.testing.assert_array_equal(result.dense, classical.complete(rgb, result.sparse, P[:, :3]))
    # published depth = the dense depth where the LiDAR supports it, 0 (NaN on the wire) elsewhere
    np.testing.assert_array_equal(result.depth, np.where(result.support, result.dense, 0.0))
    assert 0.3 < (~result.support).mean() < 0.7   # the rows above the top scan line
    assert result.cloud.shape == (96, 160)
    xyz = np.stack([result.cloud[k] for k in "xyz"], -1)
    np.testing.assert_array_equal(xyz, backproject(result.depth, P))
    np.testing.assert_array_equal(unpack_rgb(result.cloud["rgb"]), rgb)
    # the box 6 m ahead stays at 6 m in the dense depth where the LiDAR saw it
    box = (result.sparse > 5.5) & (result.sparse < 6.5)
    assert box.sum() > 20 and (np.abs(result.depth[box] - 6.0) < 0.5).mean() > 0.9
    assert result.colored.shape == (96, 160, 3) and result.colored.dtype == np.uint8
    assert {"project", "complete", "support", "cloud", "colorize", "total"} <= set(result.timings)


def test_publish_unsupported_keeps_every_pixel(classical):
    rgb, points = _scene()
    masked = DepthPipeline(classical, max_depth=80.0).process(rgb, P, points, T)
    everything = DepthPipeline(classical, max_depth=80.0, publish_unsupported=True).process(rgb, P, points, T)
    assert everything.support is None
    np.testing.assert_array_equal(everything.depth, masked.dense)
    assert (everything.depth > 0).mean() > 0.99 and (masked.depth > 0).mean() < 0.7
    assert np.isnan(masked.cloud["z"][~masked.support]).all() and not np.isnan(everything.cloud["z"]).any()


def test_only_the_wanted_outputs_are_made(classical):
    """The node asks only for the topics somebody subscribes to: no cloud, no colour map otherwise."""
    rgb, points = _scene()
    pipeline = DepthPipeline(classical, max_depth=80.0)
    full = pipeline.process(rgb, P, points, T)
    bare = pipeline.process(rgb, P, points, T, outputs=set())
    assert bare.cloud is None and bare.colored is None
    np.testing.assert_array_equal(bare.depth, full.depth)
    only_cloud = pipeline.process(rgb, P, points, T, outputs={"depth/points"})
    assert only_cloud.colored is None and only_cloud.cloud.shape == full.cloud.shape


def test_the_depth_image_message_is_built_before_the_cloud(classical):
    """The node publishes each output message as soon as it is built: the depth image goes out before the
    cloud (the costliest output) is even computed, so depth/image subscribers do not wait for it."""
    rgb, points = _scene()
    result = DepthPipeline(classical, max_depth=80.0).process(rgb, P, points, T)
    header = convert.make_header(7, "cam")
    info = convert.make_camera_info(header, rgb.shape[1], rgb.shape[0], K=P[:, :3])
    messages = convert.iter_frame_messages(result, header, info, topics={"depth/image", "depth/points"})
    assert next(messages)[0] == "depth/image" and "cloud" not in result.timings
    assert [topic for topic, _msg in messages] == ["depth/points"] and "cloud" in result.timings


def test_confidence_output_and_min_confidence_blank_depth_and_cloud(classical):
    rgb, points = _scene()
    full = DepthPipeline(classical, max_depth=80.0).process(rgb, P, points, T)
    assert full.confidence.shape == full.depth.shape and full.confidence.dtype == np.float32
    _, expected = classical.complete_with_confidence(rgb, full.sparse, P[:, :3])
    np.testing.assert_array_equal(full.confidence, np.where(full.depth > 0, expected, 0.0))
    assert DepthPipeline(classical, max_depth=80.0).process(rgb, P, points, T, outputs=set()).confidence is None
    blanked = DepthPipeline(classical, max_depth=80.0, min_confidence=0.5).process(rgb, P, points, T, outputs=set())
    low = full.confidence < 0.5
    assert 0.01 < low.mean() < 0.5          # the box's outline (a 6 m / 20 m edge) is blanked, the rest kept
    assert np.all(blanked.depth[low] == 0) and np.array_equal(blanked.depth[~low], full.depth[~low])
    assert np.all(blanked.confidence[low] == 0)
    cloud = DepthPipeline(classical, max_depth=80.0, min_confidence=0.5).process(rgb, P, points, T).cloud
    assert np.isnan(cloud["z"][low]).all() and np.isfinite(cloud["z"][~low]).all()
    with pytest.raises(ValueError, match="min_confidence"):
        DepthPipeline(classical, min_confidence=1.5)


def test_far_points_survive_the_default_depth_range(classical):
    """No 100 m clip: a LiDAR return at 250 m reaches the depth image (default max_depth 300 m)."""
    rgb, points = _scene()
    far = points * np.float32(12.5)            # the wall at 250 m, the box at 75 m
    result = DepthPipeline(classical).process(rgb, P, far, T)
    assert result.sparse.max() > 240 and result.depth.max() > 240


def test_decimation_samples_the_same_points(classical):
    rgb, points = _scene()
    full = DepthPipeline(classical).process(rgb, P, points, T)
    dec = DepthPipeline(classical, decimation=3).process(rgb, P, points, T)
    assert dec.cloud.shape == (32, 54)
    for key in "xyz":
        np.testing.assert_array_equal(dec.cloud[key], full.cloud[key][::3, ::3])


@pytest.mark.parametrize("case, kind", [
    ("empty", "empty_cloud"), ("behind", "no_points_in_view"), ("no_T", "no_extrinsic"),
    ("bad_image", "bad_image"), ("bad_P", "bad_camera_info"), ("bad_cloud", "bad_cloud"),
])
def test_bad_frames_raise_frame_errors_with_a_kind(classical, case, kind):
    rgb, points = _scene()
    args = {"rgb": rgb, "P": P, "points": points, "T_cam_lidar": T}
    if case == "empty":
        args["points"] = np.zeros((0, 3), np.float32)
    elif case == "behind":
        args["points"] = points * np.array([-1.0, 1.0, 1.0], np.float32)
    elif case == "no_T":
        args["T_cam_lidar"] = None
    elif case == "bad_image":
        args["rgb"] = rgb[..., 0]
    elif case == "bad_P":
        args["P"] = np.zeros((3, 4))
    elif case == "bad_cloud":
        args["points"] = points[:, :2]
    with pytest.raises(FrameError) as info:
        DepthPipeline(classical).process(**args)
    assert info.value.kind == kind and str(info.value)


def test_camera_only_needs_a_monocular_model(classical):
    rgb, _ = _scene()
    with pytest.raises(FrameError, match="sparse depth is required") as info:
        DepthPipeline(classical).process(rgb, P, None, None)
    assert info.value.kind == "bad_input"


def test_real_kitti_frame(shared_data, classical):
    root = shared_data / "kitti_object" / "training"
    rgb = np.asarray(Image.open(root / "image_2" / "000000.png").convert("RGB"))
    calib = read_kitti_object_calib(root / "calib" / "000000.txt")
    scan = read_velodyne_bin(root / "velodyne" / "000000.bin")
    result = DepthPipeline(classical, decimation=2).process(rgb, calib.P, scan[:, :3], calib.T_cam_lidar)
    density = (result.sparse > 0).mean()
    assert 0.02 < density < 0.08
    lower = result.depth[rgb.shape[0] // 2:]
    assert (lower > 0).mean() > 0.95 and np.median(lower[lower > 0]) < 40   # a few columns end above the bottom
    # nothing above the LiDAR's top scan line: no depth above the highest projected point of the columns
    # within 8 px (a column whose top return is missing takes its neighbours' top)
    hit = result.sparse > 0
    top = np.where(hit.any(0), hit.argmax(0), rgb.shape[0])
    top = np.lib.stride_tricks.sliding_window_view(np.pad(top, 8, constant_values=rgb.shape[0]), 17).min(1)
    above = np.arange(rgb.shape[0])[:, None] < top[None, :]
    assert above.mean() > 0.25 and not result.depth[above].any()
    assert result.cloud.shape == ((rgb.shape[0] + 1) // 2, (rgb.shape[1] + 1) // 2)


def test_frame_inputs_from_messages():
    """Message sets (raw or compressed image) become (rgb, camera, xyz); malformed ones raise the node's kinds."""
    import io

    from lumde_depth.ros import convert
    from lumde_depth.ros.pipeline import frame_inputs
    sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")
    rgb, points = _scene()
    header = convert.make_header(5, "cam")
    image = convert.numpy_to_image(rgb[..., ::-1].copy(), "bgr8", header)
    info = convert.make_camera_info(header, 160, 96, P=P)
    cloud = convert.xyzi_to_cloud(np.hstack([points, np.ones((len(points), 1), np.float32)]), header)
    got_rgb, camera, xyz = frame_inputs(image, info, cloud)
    np.testing.assert_array_equal(got_rgb, rgb)
    np.testing.assert_array_equal(camera.K, P[:, :3])
    assert not camera.distorted and (camera.width, camera.height) == (160, 96)
    np.testing.assert_array_equal(xyz, points)
    # a raw camera: K and D as published, P kept for rectification; an unknown model is a bad camera_info
    K_raw = P[:, :3] * [[1.02], [1.02], [1]]
    raw = convert.make_camera_info(header, 160, 96, K=K_raw, P=P, D=np.array([-0.1, 0.05, 0.001, 0.0, 0.0]))
    camera = frame_inputs(image, raw, None)[1]
    assert camera.distorted and camera.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(camera.K, K_raw)
    np.testing.assert_array_equal(camera.P, P)
    raw.distortion_model = "fisheye"
    with pytest.raises(FrameError, match="equidistant") as model:
        frame_inputs(image, raw, None)
    assert model.value.kind == "bad_camera_info"

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    compressed = sensor_msgs.CompressedImage(header=header, format="rgb8; png compressed", data=buf.getvalue())
    np.testing.assert_array_equal(frame_inputs(compressed, info, None)[0], rgb)

    with pytest.raises(FrameError, match="160x96") as small:
        frame_inputs(convert.numpy_to_image(rgb[:, :80].copy(), "rgb8", header), info, cloud)
    assert small.value.kind == "size_mismatch"
    with pytest.raises(FrameError) as depth:
        frame_inputs(convert.numpy_to_image(np.zeros((96, 160), np.float32), "32FC1", header), info, cloud)
    assert depth.value.kind == "bad_image"


@pytest.mark.parametrize("entry, value, says", [
    ((0, 2), np.nan, "principal point"), ((1, 2), np.inf, "principal point"), ((0, 0), np.nan, "focal length"),
    ((1, 1), np.inf, "focal length"), ((0, 0), 1e308, "focal lengths"), ((0, 0), 1e-300, "focal lengths"),
    ((0, 0), -5.0, "focal lengths"), ((0, 3), np.nan, "non-finite entries"),
])
def test_bad_camera_info_names_the_wrong_entry_and_no_numpy_warning(entry, value, says):
    """A NaN cx is a bad principal point (not a bad focal length); absurd values are refused before any
    float32 geometry could overflow; every text says how to fix it; numpy stays silent."""
    import warnings

    from lumde_depth.ros import convert
    from lumde_depth.ros.pipeline import frame_inputs
    pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")
    rgb, points = _scene()
    header = convert.make_header(5, "cam")
    bad = P.copy()
    bad[entry] = value
    msgs = (convert.numpy_to_image(rgb, "rgb8", header), convert.make_camera_info(header, 160, 96, P=bad),
            convert.xyzi_to_cloud(np.hstack([points, np.ones((len(points), 1), np.float32)]), header))
    with warnings.catch_warnings(), pytest.raises(FrameError) as info:
        warnings.simplefilter("error")
        DepthPipeline(DepthCompleter.load(None, backend="classical")).process(*frame_inputs(*msgs), T)
    assert info.value.kind == "bad_camera_info" and says in str(info.value)
    assert "camera_calibration" in str(info.value)


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "mono16", "16UC3", "32FC1", "8UC3", "yuv422"])
def test_refused_encodings_propose_only_accepted_ones(encoding):
    from types import SimpleNamespace

    from lumde_depth.ros.pipeline import frame_inputs
    image = SimpleNamespace(encoding=encoding, height=96, width=160, step=160 * 8, is_bigendian=0,
                            data=bytes(160 * 8 * 96), header=None)
    with pytest.raises(FrameError) as info:
        frame_inputs(image, None, None)
    text = str(info.value)
    assert info.value.kind == "bad_image" and "rgb8, bgr8, rgba8, bgra8 or mono8" in text
    assert "16" not in text.replace(encoding, "") and "compat" not in text   # nothing the node would refuse


def test_far_float64_points_are_dropped_without_numpy_warnings():
    import warnings

    from lumde_depth.ros import convert
    pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")
    points = np.zeros(100, dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8")])
    points["x"], points["y"], points["z"] = np.r_[1e300, np.linspace(1, 50, 99)], 1.0, -1e300
    cloud = convert.structured_to_cloud(points, convert.make_header(0, "lidar"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xyz = convert.cloud_to_xyz(cloud)
    assert len(xyz) == 0   # z = -1e300 is beyond float32 for every point
    points["z"] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(convert.cloud_to_xyz(convert.structured_to_cloud(points, convert.make_header(0, "lidar")))) == 99


def test_raw_pjlab_frame_through_the_distortion_and_without(shared_data):
    """The shipped student on a real raw PJLab frame: with the camera's D, the depth at the LiDAR's pixels
    (projected by the test's own formula) is within 2 % (median) where the lens moves them > 8 px and the
    cloud meets the LiDAR points; processed as if rectified (D ignored, what the node did before) both are off
    (the depth by several times as much, the cloud by decimetres)."""
    import node_harness as harness

    from lumde_depth.geometry import CameraModel
    frame = harness.pjlab_frame(shared_data, "lidar2camera/manual_calib/data")
    rows, cols, cam, moved = harness.lidar_pixels(frame)
    edge = moved > 8
    pipeline = DepthPipeline(DepthCompleter.load(device="cpu"))
    errors = {}
    for name, camera in (("raw", CameraModel(K=frame["K"], width=1920, height=1200, D=frame["D"],
                                             distortion_model="plumb_bob")),
                         ("as if rectified", CameraModel.pinhole(frame["K"], 1920, 1200))):
        result = pipeline.process(frame["rgb"], camera, frame["points"][:, :3], frame["T"])
        d = result.depth[rows, cols][edge]
        ok = d > 0
        xyz = np.stack([result.cloud[c] for c in "xyz"], -1)[rows, cols][edge][ok]
        errors[name] = (np.median(np.abs(d[ok] - cam[edge][ok, 2]) / cam[edge][ok, 2]),
                        np.median(np.linalg.norm(xyz - cam[edge][ok], axis=1)))
    assert edge.sum() > 1000
    assert errors["raw"][0] <= 0.02, errors
    assert errors["raw"][0] < 0.5 * errors["as if rectified"][0], errors
    assert errors["raw"][1] < 0.6 * errors["as if rectified"][1], errors


def test_a_rig_converts_the_cloud_once_and_runs_the_network_once(tmp_path, monkeypatch):
    """Three cameras around one LiDAR (front, left, and one facing away that sees no point): rig_inputs converts
    the sweep once, process_rig runs the network once for the cameras that see points, each camera's result is
    what process gives it alone, and the camera without points gets its own FrameError."""
    import torch

    import engine_toy  # noqa: F401  (registers the toy_completion network)
    from lumde_depth.models import build
    from lumde_depth.models.io import save_model
    from lumde_depth.ros import convert
    from lumde_depth.ros.pipeline import rig_inputs
    sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")
    del sensor_msgs
    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = save_model(tmp_path / "toy.pt", build("toy_completion", width=4),
                       {"input_size": [48, 80], "depth_range": [0.5, 80.0], "kind": "completion"})
    completer = DepthCompleter.load(model, backend="torch", device="cpu")
    rgb, points = _scene()
    yaw = {"front": 0.0, "left": np.pi / 2, "back": np.pi}   # camera looking along the LiDAR's +x turned by yaw
    az = np.linspace(-np.pi, np.pi, 3000, endpoint=False)
    around = np.concatenate([points, np.stack([15 * np.cos(az), 15 * np.sin(az), np.full_like(az, -1.0)], 1)
                             .astype(np.float32)])
    around = around[np.cos(np.arctan2(around[:, 1], around[:, 0])) > -0.5]   # nothing behind: "back" sees no point

    def turned(angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        return T @ np.array([[c, s, 0, 0], [-s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])

    header = convert.make_header(7, "lidar")
    cloud = convert.xyzi_to_cloud(np.hstack([around, np.ones((len(around), 1), np.float32)]), header)
    images = [(convert.numpy_to_image(np.roll(rgb, 17 * i, axis=1), "rgb8", convert.make_header(7, name)),
               convert.make_camera_info(convert.make_header(7, name), 160, 96, P=P)) for i, name in enumerate(yaw)]
    conversions, runs = [], []
    to_xyz = convert.cloud_to_xyz
    monkeypatch.setattr(convert, "cloud_to_xyz", lambda msg: conversions.append(msg) or to_xyz(msg))
    run_batch = completer.backend.run_batch
    monkeypatch.setattr(completer.backend, "run_batch", lambda n: runs.append(n) or run_batch(n))

    views, xyz = rig_inputs(images, cloud)
    assert len(conversions) == 1 and xyz.shape == (len(around), 3)
    pipeline = DepthPipeline(completer, max_depth=80.0)
    results = pipeline.process_rig([(view_rgb, view_P, turned(yaw[name])) for (view_rgb, view_P), name
                                    in zip(views, yaw)], xyz)
    assert runs == [2] and completer.last_batch == 2 and len(conversions) == 1
    assert isinstance(results[2], FrameError) and results[2].kind == "no_points_in_view"
    for (view_rgb, view_P), name, result in zip(views[:2], yaw, results[:2]):
        alone = pipeline.process(view_rgb, view_P, xyz, turned(yaw[name]))
        np.testing.assert_array_equal(result.sparse, alone.sparse)
        np.testing.assert_allclose(result.depth, alone.depth, rtol=1e-4, atol=1e-4)
        lidar = result.sparse > 0
        assert lidar.sum() > 100
        assert np.median(np.abs(result.depth[lidar] - result.sparse[lidar]) / result.sparse[lidar]) < 0.02
        assert {"project", "complete", "support", "total"} <= set(result.timings)
        assert result.cloud is not None and "cloud" in result.timings   # built on first use
    # an error of the caller's done (e.g. publishing) is its own, not the cameras' bad input
    def broken(index, result):
        raise ValueError("publisher broke")

    with pytest.raises(ValueError, match="publisher broke"):
        pipeline.process_rig([(view_rgb, view_P, turned(yaw[name])) for (view_rgb, view_P), name in zip(views, yaw)],
                             xyz, done=broken)


def test_a_rig_on_a_frame_pool_gives_the_bits_it_gives_in_turn(shared_data):
    """The DDAD test scene's six cameras (an eighth of their size) around its LiDAR: process_rig with a FramePool
    projects, refines and finishes the cameras side by side, hands each one on (done) from its pool thread as soon
    as it is finished, and gives every output bit for bit as process_rig without one (depth, dense, support,
    confidence, cloud, colour map), and the depth each camera gets alone."""
    import threading

    import torch

    from lumde_depth.data.ddad import ddad_scenes
    from lumde_depth.geometry.intrinsics import resize_image
    from lumde_depth.inference import FramePool
    root = shared_data / "ddad_testscene"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    scene = next(s for s in ddad_scenes(root) if len(s.cameras) == 6)
    points = scene.scan(0)[:, :3]
    views = []
    for camera in scene.cameras:
        frame = scene.frame(0, camera)
        rgb, K = resize_image(frame.rgb, frame.K, (frame.rgb.shape[0] // 8, frame.rgb.shape[1] // 8))
        views.append((rgb, K, frame.T_cam_lidar))
    completer = DepthCompleter.load(None, backend="torch", device="cpu")
    previous = torch.get_num_threads()
    torch.set_num_threads(2)   # in turn: torch's 2 threads; pooled: 2 workers with 1 each
    try:
        in_turn = DepthPipeline(completer).process_rig(views, points)
        handed = {}
        with FramePool(2) as pool:
            assert pool.threads == 1
            pooled = DepthPipeline(completer, pool=pool).process_rig(
                views, points, done=lambda index, result: handed.setdefault(index, (result,
                                                                                     threading.current_thread().name)))
        torch.set_num_threads(1)   # the cameras alone (six network runs: quicker on a busy machine)
        alone = DepthPipeline(completer)
        alone = [alone.process(rgb, K, points, T_cam).depth for rgb, K, T_cam in views]
    finally:
        torch.set_num_threads(previous)
    # each camera handed on as soon as it was finished, on a pool thread (the node publishes it there)
    assert sorted(handed) == list(range(6))
    assert all(handed[i][0] is result and handed[i][1].startswith("lumde_frame") for i, result in enumerate(pooled))
    for a, b, depth in zip(pooled, in_turn, alone):
        for name in ("sparse", "depth", "dense", "support", "confidence", "colored"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.cloud.tobytes() == b.cloud.tobytes()   # NaN where invalid: compare the bytes
        assert (a.depth > 0).mean() > 0.2
        np.testing.assert_allclose(a.depth, depth, rtol=1e-4, atol=1e-4)
