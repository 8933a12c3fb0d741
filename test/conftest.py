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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (set LUMDE_SHARED_DATA to its folder)")
    return path
