"""TF missing, then appearing later: the node (in this process, real rclpy) counts the frames it cannot
place, then picks the transform up and processes the next frames.

``tf2_ros`` is not on PyPI, so a stand-in module with its API (Buffer.lookup_transform raising
LookupException until the transform is 'broadcast') is put in ``sys.modules`` for this test.
"""
from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from transforms3d.quaternions import mat2quat  # noqa: E402

import node_harness as harness  # noqa: E402
import test_reliability_node as live_mod  # noqa: E402
from lumde_depth.ros import extrinsics  # noqa: E402

pytestmark = pytest.mark.ros


def fake_tf2_ros(broadcast: dict) -> types.ModuleType:
    module = types.ModuleType("tf2_ros")

    class TransformException(Exception):
        pass

    class LookupException(TransformException):
        pass

    class Buffer:
        def __init__(self, node=None) -> None:
            pass

        def lookup_transform(self, target: str, source: str, when, timeout=None):
            if (target, source) not in broadcast:
                raise LookupException(f'"{target}" passed to lookupTransform argument target_frame does not exist')
            T = broadcast[(target, source)]
            w, x, y, z = mat2quat(T[:3, :3])
            return types.SimpleNamespace(transform=types.SimpleNamespace(
                translation=types.SimpleNamespace(x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                rotation=types.SimpleNamespace(x=x, y=y, z=z, w=w)))

    module.Buffer = Buffer
    module.TransformListener = lambda buffer, node, spin_thread=False: None
    module.TransformException = TransformException
    module.LookupException = LookupException
    module.ConnectivityException = module.ExtrapolationException = type("Other", (TransformException,), {})
    return module


@pytest.mark.real_libs
def test_tf_missing_then_appearing(ros_context, tmp_path, monkeypatch):
    from lumde_depth.ros.node import DepthNode

    broadcast: dict = {}
    monkeypatch.setitem(sys.modules, "tf2_ros", fake_tf2_ros(broadcast))
    monkeypatch.setattr(extrinsics, "TF_RETRY_PERIOD", 0.3)
    model = harness.save_student(tmp_path / "student.pt")
    overrides = [Parameter("model", value=str(model)), Parameter("backend", value="torch"),
                 Parameter("device", value="cpu"), Parameter("threads", value=1),
                 Parameter("publish_colored", value=False)]
    node = DepthNode(context=ros_context, parameter_overrides=overrides)
    pub = rclpy.create_node("lumde_test_tf_publisher", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(pub)
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [pub.create_publisher(t, n, qos) for t, n in ((Image, "image"), (CameraInfo, "camera_info"),
                                                          (PointCloud2, "points"))]
    stamp = [time.time_ns()]

    def send_until(condition, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            stamp[0] += 100_000_000
            for p, msg in zip(pubs, live_mod.good_set()):
                msg.header.stamp = live_mod.convert.make_stamp(stamp[0])
                p.publish(msg)
            end = time.monotonic() + 0.15
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.02)
            if condition():
                return True
        return False

    try:
        assert node.extrinsics.tf_available and node.extrinsics.source.startswith("TF")
        assert send_until(lambda: node.stats.errors["no_extrinsic"] >= 3, 60.0), node.stats.values()
        assert node.stats.processed == 0 and "no_extrinsic" in node._last_log
        broadcast[("camera", "lidar")] = live_mod.FRAME["T"]
        assert send_until(lambda: node.stats.processed >= 2, 60.0), node.stats.values()
        T, source = node.extrinsics.lookup("camera", "lidar")
        assert source == "tf"
        np.testing.assert_allclose(T, live_mod.FRAME["T"], atol=1e-9)
        stats = node.stats
        deadline = time.monotonic() + 10.0   # the worker may still be busy with the last set
        while stats.synchronized != stats.processed + stats.dropped + sum(stats.errors.values()):
            assert time.monotonic() < deadline, stats.values()
            executor.spin_once(timeout_sec=0.05)
        assert harness.unaccounted(stats.values()) == []
    finally:
        executor.shutdown()
        node.destroy_node()
        pub.destroy_node()


@pytest.mark.real_libs
def test_each_cloud_gets_the_transform_from_its_own_frame(monkeypatch):
    """TF is asked for each cloud's own frame (base_link and the LiDAR get their own transforms); where TF has
    none, the fixed matrix serves only clouds of lidar_frame, any other frame is refused as wrong_cloud_frame."""
    from lumde_depth.ros.pipeline import FrameError

    T_base = np.eye(4)
    T_base[:3, 3] = [0.0, 1.2, -0.3]
    T_velo, T_fixed = live_mod.FRAME["T"], np.eye(4)
    T_fixed[:3, 3] = [0.5, 0.0, 0.0]
    broadcast = {("camera", "base_link"): T_base, ("camera", "velo"): T_velo}
    monkeypatch.setitem(sys.modules, "tf2_ros", fake_tf2_ros(broadcast))
    ext = extrinsics.Extrinsics(None, extrinsics.FixedExtrinsic(T_fixed, "velo_fixed"), use_tf=True)
    for frame, T in (("base_link", T_base), ("velo", T_velo)):
        got, source = ext.lookup("camera", frame)
        assert source == "tf"
        np.testing.assert_allclose(got, T, atol=1e-9)
    got, source = ext.lookup("camera", "velo_fixed")   # not in TF: the parameter, for its own frame
    assert source == "fixed" and np.array_equal(got, T_fixed)
    with pytest.raises(FrameError, match="'radar' is not 'velo_fixed'") as err:
        ext.lookup("camera", "radar")
    assert err.value.kind == "wrong_cloud_frame"
