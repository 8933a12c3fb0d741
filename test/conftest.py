"""Shared fixtures: where the real sample data lives, and DDS kept on loopback."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")


def shared_data_dir() -> Path:
    """``../shared/data`` next to the clone, or ``$LUMDE_SHARED_DATA``."""
    return Path(os.environ.get("LUMDE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def ros_real_dir() -> Path:
    """``../shared/ros_real`` (the real ROS 2 Python libraries) next to the clone, or ``$LUMDE_ROS_REAL``."""
    return Path(os.environ.get("LUMDE_ROS_REAL", ROOT.parent / "shared" / "ros_real"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (set LUMDE_SHARED_DATA to its folder)")
    return path


_domain_counter = iter(range(1 << 30))


def next_domain_id() -> int:
    """A ROS domain id in 1..100 that differs between tests and between concurrent pytest processes.

    Ids above 101 collide with ephemeral ports on Linux; the pid spreads parallel runs apart.
    """
    return 1 + (os.getpid() * 7 + next(_domain_counter)) % 100


@pytest.fixture
def ros_context():
    """An initialized rclpy Context on its own loopback domain id; shut down after the test.

    Create nodes with ``rclpy.create_node(name, context=ros_context)`` and spin them with an
    executor built with ``context=ros_context``.
    """
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")
    from rclpy.context import Context

    domain_id = next_domain_id()
    previous = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        yield context
    finally:
        context.try_shutdown()
        if previous is None:
            os.environ.pop("ROS_DOMAIN_ID", None)
        else:
            os.environ["ROS_DOMAIN_ID"] = previous
