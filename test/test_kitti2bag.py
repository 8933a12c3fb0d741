"""``lumde kitti2bag``: a KITTI raw drive becomes a ROS 2 bag whose every message matches the files."""
import numpy as np
import pytest
from PIL import Image as PILImage

from lumde_depth.cli.main import main as lumde
from lumde_depth.geometry import read_kitti_raw_calib
from lumde_depth.ros import convert
from lumde_depth.ros.compat import tf_transformations
from lumde_depth.ros.bag_io import BagError
from lumde_depth.data.oxts import oxts_poses
from lumde_depth.ros.kitti2bag import Kitti2BagError, kitti2bag, read_timestamps_ns

pytest.importorskip("rosbags")
from bag_helpers import H, N, W, make_drive, read_bag  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_message_matches_the_drive(tmp_path, storage):
    drive, truth = make_drive(tmp_path / "raw")
    out = tmp_path / "bag"
    assert lumde(["kitti2bag", str(drive), str(out), "--storage", storage, "--no-progress"]) == 0
    msgs, conns = read_bag(out)
    assert sorted(msgs) == sorted(["/tf_static", "/tf", "/kitti/camera_color_left/image_raw",
                                   "/kitti/camera_color_left/camera_info", "/kitti/velo/pointcloud",
                                   "/kitti/oxts/imu", "/kitti/oxts/gps/fix"])
    assert next(out.glob(f"*.{'mcap' if storage == 'mcap' else 'db3'}"))

    images = msgs["/kitti/camera_color_left/image_raw"]
    assert len(images) == N
    calib = read_kitti_raw_calib(drive, 2)
    for k, (t, msg) in enumerate(images):
        assert t == convert.stamp_to_ns(msg.header.stamp) == truth["stamps"]["image_02"][k]
        assert msg.encoding == "rgb8" and msg.header.frame_id == "camera_color_left"
        np.testing.assert_array_equal(convert.image_to_numpy(msg), truth["images"][k])
    for k, (t, info) in enumerate(msgs["/kitti/camera_color_left/camera_info"]):
        assert t == truth["stamps"]["image_02"][k] and (info.width, info.height) == (W, H)
        np.testing.assert_allclose(convert.camera_info_to_P(info), calib.P)

    clouds = msgs["/kitti/velo/pointcloud"]
    assert len(clouds) == N
    for k, (t, cloud) in enumerate(clouds):
        assert t == truth["stamps"]["velodyne_points"][k] and cloud.header.frame_id == "velo_link"
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity"]
        assert all(f.datatype == 7 for f in cloud.fields)
        np.testing.assert_array_equal(convert.cloud_to_points(cloud, ("x", "y", "z", "intensity")), truth["scans"][k])

    # time order across topics
    all_times = [t for topic in msgs for t, _ in msgs[topic]]
    with AnyReader([out]) as reader:
        assert [t for _, t, _ in reader.messages()] == sorted(all_times)

    (_, static), = msgs["/tf_static"]
    qos = conns["/tf_static"].ext.offered_qos_profiles[0]
    assert qos.durability.name == "TRANSIENT_LOCAL" and qos.depth == 1
    tfs = {(tr.header.frame_id, tr.child_frame_id): tr.transform for tr in static.transforms}
    assert set(tfs) == {("velo_link", "camera_color_left"), ("base_link", "imu_link"), ("imu_link", "velo_link")}

    def matrix(tr):
        m = tf_transformations.quaternion_matrix([tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w])
        m[:3, 3] = [tr.translation.x, tr.translation.y, tr.translation.z]
        return m

    # velo_link -> camera maps camera points into the LiDAR frame: inverse of T_cam_lidar
    np.testing.assert_allclose(matrix(tfs[("velo_link", "camera_color_left")]) @ calib.T_cam_lidar, np.eye(4),
                               atol=1e-9)
    np.testing.assert_allclose(matrix(tfs[("imu_link", "velo_link")])[:3, 3], [0.8, -0.3, 0.8], atol=1e-12)

    poses = msgs["/tf"]
    assert [t for t, _ in poses] == truth["stamps"]["oxts"]
    first = poses[0][1].transforms[0]
    assert (first.header.frame_id, first.child_frame_id) == ("world", "base_link")
    np.testing.assert_allclose([first.transform.translation.x, first.transform.translation.y], [0, 0], atol=1e-9)
    second = matrix(poses[1][1].transforms[0].transform)
    assert 1.0 < np.linalg.norm(second[:2, 3]) < 3.0  # ~1.1 m north, ~1.5 m east
    imu = msgs["/kitti/oxts/imu"][2][1]
    assert imu.linear_acceleration.z == pytest.approx(9.8)
    assert tf_transformations.euler_from_quaternion([imu.orientation.x, imu.orientation.y, imu.orientation.z,
                                                     imu.orientation.w])[2] == pytest.approx(0.32)
    assert msgs["/kitti/oxts/gps/fix"][1][1].latitude == pytest.approx(49.00001)


def test_oxts_poses_match_euler_and_mercator():
    packets = np.zeros((2, 30))
    packets[:, :6] = [[48.0, 8.0, 100.0, 0.1, -0.2, 0.3], [48.0, 8.001, 101.0, 0.0, 0.0, 1.0]]
    T = oxts_poses(packets)
    np.testing.assert_allclose(T[0][:3, :3], tf_transformations.euler_matrix(0.1, -0.2, 0.3, "sxyz")[:3, :3],
                               atol=1e-12)
    np.testing.assert_allclose(T[0][:3, 3], 0)
    east = np.cos(np.radians(48.0)) * 6378137.0 * np.radians(0.001)
    np.testing.assert_allclose(T[1][:3, 3], [east, 0, 1.0], atol=1e-6)


def test_timestamps_keep_nanoseconds(tmp_path):
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:02:25.964389445\n\n2011-09-26 13:02:26.000000001\n")
    stamps = read_timestamps_ns(path)
    assert stamps[0] == 1317042145964389445 and stamps[1] == -1 and stamps[2] == 1317042146000000001
    path.write_text("yesterday\n")
    with pytest.raises(Kitti2BagError, match="malformed timestamp"):
        read_timestamps_ns(path)


@pytest.mark.parametrize("damage", ["truncated_scan", "corrupt_png", "missing_stamp"])
def test_bad_input_names_file_and_frame_and_leaves_nothing(tmp_path, damage, capsys):
    drive, _ = make_drive(tmp_path / "raw", oxts=False)
    if damage == "truncated_scan":
        bad = drive / "velodyne_points" / "data" / "0000000001.bin"
        bad.write_bytes(bad.read_bytes()[:-6])
        expected = "frame 1 .* truncated"
    elif damage == "corrupt_png":
        bad = drive / "image_02" / "data" / "0000000002.png"
        bad.write_bytes(bad.read_bytes()[:40])
        expected = "frame 2"
    else:
        bad = drive / "image_02" / "data" / "0000000003.png"
        PILImage.fromarray(np.zeros((H, W, 3), np.uint8)).save(bad)
        expected = "frame 3 has no timestamp"
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "bag"
    with pytest.raises(Kitti2BagError, match=expected) as info:
        kitti2bag(drive, out, progress=False)
    assert bad.name in str(info.value)
    assert not out.exists() and list((tmp_path / "out").iterdir()) == []
    assert lumde(["kitti2bag", str(drive), str(out), "--no-progress"]) == 1
    assert bad.name in capsys.readouterr().err


def test_refuses_to_overwrite_and_bad_storage(tmp_path):
    drive, _ = make_drive(tmp_path / "raw", frames=1, oxts=False)
    (tmp_path / "bag").mkdir()
    with pytest.raises(BagError, match="exists already"):
        kitti2bag(drive, tmp_path / "bag", progress=False)
    with pytest.raises(BagError, match="storage 'zip' unknown"):
        kitti2bag(drive, tmp_path / "bag2", storage="zip", progress=False)


def test_real_kitti_raw_tiny(shared_data, tmp_path):
    drive = shared_data / "kitti_raw_tiny" / "2011_09_26" / "2011_09_26_drive_0023_sync"
    out = tmp_path / "bag"
    summary = kitti2bag(drive, out, cameras=("image_02",), progress=False)
    assert summary.counts["/kitti/camera_color_left/image_raw"] == 7 and "/kitti/velo/pointcloud" not in summary.counts
    msgs, _ = read_bag(out)
    stamps = read_timestamps_ns(drive / "image_02" / "timestamps.txt")[:7]
    assert [t for t, _ in msgs["/kitti/camera_color_left/image_raw"]] == stamps.tolist()
    t0, img = msgs["/kitti/camera_color_left/image_raw"][0]
    assert (img.width, img.height, img.encoding) == (1242, 375, "rgb8")
    np.testing.assert_array_equal(convert.image_to_numpy(img),
                                  np.asarray(PILImage.open(drive / "image_02" / "data" / "0000000000.png").convert("RGB")))
    assert len(msgs["/tf"]) == 7
