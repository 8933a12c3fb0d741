"""``lumde bag play``: a bag replayed over loopback DDS arrives complete, exact, on time, with /clock."""
import threading
import time

import numpy as np
import pytest

from lumde_depth.cli.main import main as lumde
from lumde_depth.ros import convert
from lumde_depth.ros.kitti2bag import kitti2bag

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("rosbags")
from bag_helpers import N, make_drive, read_bag  # noqa: E402
from lumde_depth.ros.bag_io import BagError  # noqa: E402
from lumde_depth.ros.bag_play import play, qos_from_bag  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def kitti_bag(tmp_path):
    drive, truth = make_drive(tmp_path / "raw")
    kitti2bag(drive, tmp_path / "bag", progress=False)
    return tmp_path / "bag", truth


def test_play_delivers_every_message_with_its_stamp(ros_context, kitti_bag):
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, Imu, NavSatFix, PointCloud2

    bag, truth = kitti_bag
    recorded, _ = read_bag(bag)
    node = rclpy.create_node("listener", context=ros_context)
    got: dict[str, list] = {}
    types = {"/kitti/camera_color_left/image_raw": Image, "/kitti/camera_color_left/camera_info": CameraInfo,
             "/kitti/velo/pointcloud": PointCloud2, "/kitti/oxts/imu": Imu, "/kitti/oxts/gps/fix": NavSatFix,
             "/clock": Clock}
    for topic, msg_type in types.items():
        node.create_subscription(msg_type, topic, lambda m, t=topic: got.setdefault(t, []).append(m), 50)
    result = {}

    def player():
        start = time.monotonic()
        result["summary"] = play(bag, context=ros_context, rate=1.0, clock_hz=50, wait_for_subscribers=10)
        result["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=player)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        thread.start()
        deadline = time.monotonic() + 20
        while (thread.is_alive() or sum(len(v) for k, v in got.items() if k != "/clock") < 5 * N) \
                and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(10):
            executor.spin_once(timeout_sec=0.02)
    finally:
        thread.join(timeout=20)
        executor.shutdown()
        node.destroy_node()

    summary = result["summary"]
    try:
        import tf2_msgs.msg  # noqa: F401
    except ImportError:
        assert set(summary.skipped) == {"/tf", "/tf_static"}
    for topic in types:
        if topic == "/clock":
            continue
        assert summary.published[topic] == N
        assert [convert.stamp_to_ns(m.header.stamp) for m in got[topic]] == [t for t, _ in recorded[topic]], topic
    for k, msg in enumerate(got["/kitti/camera_color_left/image_raw"]):
        np.testing.assert_array_equal(convert.image_to_numpy(msg), truth["images"][k])
    for k, msg in enumerate(got["/kitti/velo/pointcloud"]):
        np.testing.assert_array_equal(convert.cloud_to_points(msg, ("x", "y", "z", "intensity")), truth["scans"][k])

    all_stamps = sorted(t for topic in recorded for t, _ in recorded[topic])
    span = (all_stamps[-1] - all_stamps[0]) / 1e9
    assert span * 0.9 <= result["seconds"] < span + 5.0  # recorded rate, not as fast as possible
    clock = [convert.stamp_to_ns(m.clock) for m in got["/clock"]]
    assert len(clock) >= 5 and clock == sorted(clock)
    assert all_stamps[0] <= clock[0] and clock[-1] <= all_stamps[-1]


def test_qos_follows_the_recorded_profiles():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    def profile(reliability, durability, depth):
        zero = QosTime(0, 0)
        return Qos(QosHistory.KEEP_LAST, depth, reliability, durability, zero, zero, QosLiveliness.AUTOMATIC, zero,
                   False)

    latched = qos_from_bag([profile(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, 1)], "/tf_static")
    assert latched.durability == DurabilityPolicy.TRANSIENT_LOCAL and latched.depth == 1
    mixed = qos_from_bag([profile(QosReliability.RELIABLE, QosDurability.VOLATILE, 5),
                          profile(QosReliability.BEST_EFFORT, QosDurability.TRANSIENT_LOCAL, 20)], "/points")
    assert mixed.reliability == ReliabilityPolicy.BEST_EFFORT and mixed.durability == DurabilityPolicy.VOLATILE
    assert mixed.depth == 20
    assert qos_from_bag([], "/tf_static").durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos_from_bag([], "/image").reliability == ReliabilityPolicy.RELIABLE


def test_play_errors(ros_context, tmp_path, kitti_bag, capsys):
    with pytest.raises(BagError, match="no such bag"):
        play(tmp_path / "missing", context=ros_context)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a readable ROS 2 bag"):
        play(tmp_path / "empty", context=ros_context)
    with pytest.raises(BagError, match="nothing to play"):
        play(kitti_bag[0], context=ros_context, topics=["/nope"])
    assert lumde(["bag", "play", str(tmp_path / "missing")]) == 1
    assert "no such bag" in capsys.readouterr().err
