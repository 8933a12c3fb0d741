"""ROS library fallbacks: written against the public APIs, so they hold for the real libraries too."""
import importlib
import math
import sys
import time
import types

import numpy as np
import pytest

from lumde_depth.ros import compat

pytestmark = pytest.mark.real_libs

REAL_NAMES = {"message_filters": "message_filters", "cv_bridge": "cv_bridge",
              "point_cloud2": "sensor_msgs_py.point_cloud2", "tf_transformations": "tf_transformations"}


@pytest.fixture
def fresh_compat(monkeypatch):
    """compat reloaded (nothing resolved yet) under a patched sys.modules / sys.path, and again afterwards."""
    def reload():
        for name in compat._RESOLVERS:
            compat.__dict__.pop(name, None)
        module = importlib.reload(compat)
        module.FALLBACKS.clear()
        return module
    yield reload
    monkeypatch.undo()
    reload()


@pytest.mark.parametrize("attr", sorted(REAL_NAMES))
def test_fallback_when_the_real_library_is_absent(monkeypatch, fresh_compat, attr):
    module = REAL_NAMES[attr]
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    reloaded = fresh_compat()
    assert getattr(reloaded, attr).__name__.startswith("lumde_depth.ros.compat.")
    assert "not installed" in reloaded.FALLBACKS[module]


def _fake_module(monkeypatch, name: str, **attrs) -> types.ModuleType:
    fake = types.ModuleType(name)
    fake.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, name, fake)
    return fake


def test_a_real_library_that_does_the_job_is_used(monkeypatch, fresh_compat):
    pytest.importorskip("std_msgs.msg")
    mf = _fake_module(monkeypatch, "message_filters", SimpleFilter=compat.SimpleFilter, Subscriber=compat.Subscriber,
                      TimeSynchronizer=compat.TimeSynchronizer,
                      ApproximateTimeSynchronizer=compat.ApproximateTimeSynchronizer)
    bridge = _fake_module(monkeypatch, "cv_bridge", CvBridge=compat.CvBridge, CvBridgeError=compat.CvBridgeError)
    reloaded = fresh_compat()
    assert reloaded.message_filters is mf and reloaded.cv_bridge is bridge
    assert "message_filters" not in reloaded.FALLBACKS and "cv_bridge" not in reloaded.FALLBACKS


def test_a_cv_bridge_that_imports_but_cannot_convert_is_not_used(monkeypatch, fresh_compat, tmp_path):
    """As a cv_bridge without OpenCV: the module imports, CvBridge() needs cv2."""
    (tmp_path / "cv_bridge").mkdir()
    (tmp_path / "cv_bridge" / "__init__.py").write_text(
        "class CvBridgeError(TypeError):\n    pass\n\n"
        "class CvBridge:\n    def __init__(self):\n        import cv2  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cv_bridge", raising=False)
    monkeypatch.setitem(sys.modules, "cv2", None)
    reloaded = fresh_compat()
    assert reloaded.cv_bridge.__name__ == "lumde_depth.ros.compat.cv_bridge"
    assert "cv2" in reloaded.FALLBACKS["cv_bridge"]
    rgb = np.zeros((2, 2, 3), np.uint8)
    pytest.importorskip("sensor_msgs.msg")
    bridge = reloaded.cv_bridge.CvBridge()
    assert bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(rgb, "rgb8"), "bgr8").shape == (2, 2, 3)


def test_a_typed_subscriber_without_kwargs_is_replaced_and_the_real_synchronizers_kept(monkeypatch, fresh_compat):
    """message_filters as released in January 2026: Subscriber(node, msg_type, topic, qos_profile) only."""
    pytest.importorskip("std_msgs.msg")

    class TypedSubscriber(compat.SimpleFilter):
        def __init__(self, node, msg_type, topic, qos_profile=10) -> None:
            super().__init__()

    class NoQueues(compat.SimpleFilter):     # a synchronizer without the per-input queues sync.py counts
        def __init__(self, fs, queue_size, slop=None) -> None:
            super().__init__()

    real_exact = compat.TimeSynchronizer
    _fake_module(monkeypatch, "message_filters", SimpleFilter=compat.SimpleFilter, Subscriber=TypedSubscriber,
                 TimeSynchronizer=real_exact, ApproximateTimeSynchronizer=NoQueues)
    reloaded = fresh_compat()
    mf = reloaded.message_filters
    assert mf.Subscriber is reloaded.Subscriber and mf.TimeSynchronizer is real_exact
    assert mf.ApproximateTimeSynchronizer is reloaded.ApproximateTimeSynchronizer
    assert "keyword" in reloaded.FALLBACKS["message_filters.Subscriber"]
    assert "queues" in reloaded.FALLBACKS["message_filters.ApproximateTimeSynchronizer"]
    assert set(reloaded.FALLBACKS) == {"message_filters.Subscriber", "message_filters.ApproximateTimeSynchronizer"}


def test_importing_compat_imports_neither_rclpy_nor_message_filters():
    import subprocess
    code = ("import sys; from lumde_depth.ros import compat, sync; compat.tf_transformations; compat.point_cloud2; "
            "print(sorted(m for m in ('rclpy', 'message_filters', 'cv_bridge') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_real_libraries_under_test_are_the_ones_used():
    """In scripts/test.sh's real-library runs (LUMDE_ROS_REAL_UNDER_TEST = the folder in front of the
    venv): every library of the folder is imported from there, and used wherever it does the job."""
    import os
    from pathlib import Path
    folder = os.environ.get("LUMDE_ROS_REAL_UNDER_TEST")
    if not folder:
        pytest.skip("runs in the real-library runs of scripts/test.sh (LUMDE_ROS_REAL_UNDER_TEST unset)")
    folder = Path(folder).resolve()
    present = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    assert present, f"no packages in {folder}"
    modules = {"message_filters": "message_filters", "sensor_msgs_py": "sensor_msgs_py.point_cloud2",
               "tf_transformations": "tf_transformations"}
    for package in present:
        real = importlib.import_module(modules[package])
        assert Path(real.__file__).resolve().is_relative_to(folder), (package, real.__file__)
    if "message_filters" in present:
        mf = compat.message_filters
        for name in ("TimeSynchronizer", "ApproximateTimeSynchronizer"):
            assert getattr(mf, name).__module__.startswith("message_filters"), name
        assert (mf.Subscriber.__module__ == "message_filters") != ("message_filters.Subscriber" in compat.FALLBACKS)
    if "sensor_msgs_py" in present:
        assert compat.point_cloud2.__name__ == "sensor_msgs_py.point_cloud2"
    if "tf_transformations" in present:
        assert compat.tf_transformations.__name__ == "tf_transformations"


# ---------------------------------------------------------------------------------------------- point_cloud2

def _header():
    from lumde_depth.ros import convert
    pytest.importorskip("std_msgs.msg")
    return convert.make_header(1_000, "velo")


def test_point_cloud2_xyz_roundtrip_skip_nans_uvs():
    pc2 = compat.point_cloud2
    pts = np.arange(30, dtype=np.float32).reshape(10, 3)
    pts[4, 1] = np.nan
    cloud = pc2.create_cloud_xyz32(_header(), pts)
    assert (cloud.height, cloud.width, cloud.point_step) == (1, 10, 12)
    structured = pc2.read_points(cloud)
    assert structured.dtype.names == ("x", "y", "z")
    np.testing.assert_array_equal(structured["z"], pts[:, 2])
    np.testing.assert_array_equal(pc2.read_points_numpy(cloud, skip_nans=True), np.delete(pts, 4, axis=0))
    np.testing.assert_array_equal(pc2.read_points_numpy(cloud, field_names=["x", "z"], uvs=[0, 9]), pts[[0, 9]][:, [0, 2]])
    listed = pc2.read_points_list(cloud, field_names=["x"])
    assert listed[3].x == 9.0


def test_point_cloud2_mixed_types_and_count():
    from sensor_msgs.msg import PointField
    pc2 = compat.point_cloud2
    fields = [PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
              PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
              PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
              PointField(name="ring", offset=12, datatype=PointField.UINT16, count=1),
              PointField(name="v", offset=16, datatype=PointField.FLOAT64, count=2)]
    dtype = pc2.dtype_from_fields(fields, point_step=40)
    assert dtype.names == ("x", "y", "z", "ring", "v_0", "v_1") and dtype.itemsize == 40
    assert dtype.fields["v_1"][1] == 24
    pts = np.zeros(5, dtype)
    pts["x"], pts["ring"], pts["v_1"] = np.arange(5), np.arange(5) * 3, np.arange(5) / 2
    cloud = pc2.create_cloud(_header(), fields, pts, point_step=40)
    assert cloud.point_step == 40 and cloud.row_step == 200
    back = pc2.read_points(cloud)
    np.testing.assert_array_equal(back["ring"], pts["ring"])
    np.testing.assert_array_equal(back["v_1"], pts["v_1"])
    with pytest.raises(AssertionError):
        pc2.read_points_numpy(cloud)  # mixed datatypes


# ---------------------------------------------------------------------------------------------- cv_bridge

def test_cv_bridge_passthrough_and_conversions():
    pytest.importorskip("sensor_msgs.msg")
    bridge = compat.cv_bridge.CvBridge()
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    msg = bridge.cv2_to_imgmsg(rgb, encoding="rgb8")
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("rgb8", 15, 4, 5)
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg), rgb)
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, "bgr8"), rgb[..., ::-1])
    bgra = bridge.imgmsg_to_cv2(msg, "bgra8")
    assert bgra.shape == (4, 5, 4) and (bgra[..., 3] == 255).all()
    grey = bridge.imgmsg_to_cv2(msg, "mono8")
    expected = np.rint(rgb.astype(np.float64) @ [0.299, 0.587, 0.114])
    assert grey.shape == (4, 5) and np.abs(grey.astype(int) - expected).max() <= 1

    depth = np.linspace(1, 80, 20, dtype=np.float32).reshape(4, 5)
    dmsg = bridge.cv2_to_imgmsg(depth)  # passthrough names the OpenCV type
    assert dmsg.encoding == "32FC1" and dmsg.step == 20
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(dmsg), depth)
    assert bridge.cv2_to_imgmsg(rgb).encoding == "8UC3"
    with pytest.raises(compat.cv_bridge.CvBridgeError):
        bridge.cv2_to_imgmsg(depth, encoding="rgb8")


def test_cv_bridge_header():
    from std_msgs.msg import Header
    bridge = compat.cv_bridge.CvBridge()
    header = Header(frame_id="cam")
    header.stamp.sec = 7
    msg = bridge.cv2_to_imgmsg(np.zeros((2, 3), np.uint16), "16UC1", header=header)
    assert msg.header.frame_id == "cam" and msg.header.stamp.sec == 7 and msg.encoding == "16UC1"


# ---------------------------------------------------------------------------------------------- tf_transformations

def test_tf_transformations_xyzw_order():
    tf = compat.tf_transformations
    q = [0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]  # 90 degrees about z, x y z w
    m = tf.quaternion_matrix(q)
    assert m.shape == (4, 4)
    np.testing.assert_allclose(m[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    back = tf.quaternion_from_matrix(m)
    np.testing.assert_allclose(np.abs(np.dot(back, q)), 1.0, atol=1e-12)
    np.testing.assert_allclose(tf.euler_from_quaternion(q), [0, 0, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(tf.quaternion_from_euler(0, 0, math.pi / 2), q, atol=1e-12)
    t = tf.translation_matrix([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tf.translation_from_matrix(tf.concatenate_matrices(t, m)), [1, 2, 3])
    np.testing.assert_allclose(tf.concatenate_matrices(m, tf.inverse_matrix(m)), np.eye(4), atol=1e-12)
    qq = tf.quaternion_multiply(q, q)  # 180 degrees about z
    np.testing.assert_allclose(np.abs(qq), [0, 0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(tf.quaternion_multiply(q, tf.quaternion_inverse(q)), [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(tf.euler_matrix(0.1, -0.2, 0.3)[:3, :3],
                               tf.quaternion_matrix(tf.quaternion_from_euler(0.1, -0.2, 0.3))[:3, :3], atol=1e-12)


# ---------------------------------------------------------------------------------------------- message_filters

def _stamped(ns: int, frame: str = ""):
    from sensor_msgs.msg import Image
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
    msg.header.frame_id = frame
    return msg


def _ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_approximate_policy_pairs_closest_within_slop():
    pytest.importorskip("rclpy")
    mf = compat.message_filters
    a, b = mf.SimpleFilter(), mf.SimpleFilter()
    sync = mf.ApproximateTimeSynchronizer([a, b], queue_size=5, slop=0.05)
    pairs = []
    sync.registerCallback(lambda x, y: pairs.append((_ns(x), _ns(y))))
    ms = 1_000_000
    a.signalMessage(_stamped(1000 * ms))
    b.signalMessage(_stamped(1200 * ms))          # 200 ms away: no pair
    assert pairs == []
    b.signalMessage(_stamped(1030 * ms))          # within 50 ms of a's 1000
    assert pairs == [(1000 * ms, 1030 * ms)]
    a.signalMessage(_stamped(1190 * ms))          # pairs with b's 1200 left in the queue
    assert pairs[-1] == (1190 * ms, 1200 * ms)
    a.signalMessage(_stamped(1300 * ms))
    b.signalMessage(_stamped(1351 * ms))          # 51 ms: over the slop
    assert len(pairs) == 2


def test_exact_time_synchronizer_and_queue_size():
    pytest.importorskip("rclpy")
    mf = compat.message_filters
    a, b = mf.SimpleFilter(), mf.SimpleFilter()
    sync = mf.TimeSynchronizer([a, b], queue_size=2)
    got = []
    sync.registerCallback(lambda x, y: got.append((_ns(x), _ns(y), y.header.frame_id)))
    for ns in (1, 2, 3):
        a.signalMessage(_stamped(ns))
    b.signalMessage(_stamped(1, "b"))  # stamp 1 fell out of a's queue (size 2)
    b.signalMessage(_stamped(3, "b"))
    assert got == [(3, 3, "b")]


@pytest.mark.ros
def test_message_filters_over_dds(ros_context):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image

    mf = compat.message_filters
    node = rclpy.create_node("sync_test", context=ros_context)
    pub_img = node.create_publisher(Image, "image", 10)
    pub_info = node.create_publisher(CameraInfo, "camera_info", 10)
    subs = [mf.Subscriber(node, Image, "image"), mf.Subscriber(node, CameraInfo, "camera_info", qos_profile=10)]
    assert subs[0].getTopic() == "image"
    sync = mf.ApproximateTimeSynchronizer(subs, queue_size=10, slop=0.02)
    pairs = []
    sync.registerCallback(lambda img, info: pairs.append((_ns(img), _ns(info))))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 10
        while (pub_img.get_subscription_count() < 1 or pub_info.get_subscription_count() < 1) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        ms = 1_000_000
        expected = []
        for k in range(5):
            t = 10_000 * ms + k * 100 * ms
            info = CameraInfo()
            info.header = _stamped(t + 7 * ms).header   # 7 ms camera_info jitter
            pub_img.publish(_stamped(t))
            pub_info.publish(info)
            expected.append((t, t + 7 * ms))
        lonely = _stamped(20_000 * ms)  # no partner: never emitted
        pub_img.publish(lonely)
        deadline = time.monotonic() + 10
        while len(pairs) < 5 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(5):
            executor.spin_once(timeout_sec=0.02)
        assert sorted(pairs) == expected
    finally:
        executor.shutdown()
        node.destroy_node()
