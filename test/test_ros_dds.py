"""The shipped large-message Fast DDS profile, applied unless the user chose one (no DDS needed here)."""
from __future__ import annotations

import pytest

from lumde_depth.ros import dds


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path))


def test_applied_when_nothing_is_set_with_the_variable_of_the_distro():
    env = {"ROS_DISTRO": "kilted"}
    assert "the shipped large-message profile" in dds.apply_default_profile(env)
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("fastdds_large_messages.xml")
    assert "FASTRTPS_DEFAULT_PROFILES_FILE" not in env   # Kilted's rmw warns that this name is deprecated
    env = {"ROS_DISTRO": "humble", "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    dds.apply_default_profile(env)
    assert list(env)[-1] == "FASTRTPS_DEFAULT_PROFILES_FILE" and "FASTDDS_DEFAULT_PROFILES_FILE" not in env


def test_localhost_discovery_gets_a_loopback_copy(tmp_path):
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    note = dds.apply_default_profile(env)
    path = env["FASTDDS_DEFAULT_PROFILES_FILE"]
    assert path == str(tmp_path / "dds" / "fastdds_large_messages_loopback.xml") and "127.0.0.1" in note
    text = open(path).read()
    assert "<interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>" in text
    assert "<segment_size>16777216</segment_size>" in text


@pytest.mark.parametrize("env, says", [
    ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, "Fast DDS profile /etc/mine.xml (from FASTRTPS_"),
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, "Fast DDS profile /etc/mine.xml (from FASTDDS_"),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "RMW rmw_cyclonedds_cpp: the shipped Fast DDS"),
])
def test_the_users_choice_is_kept(env, says):
    before = dict(env)
    assert dds.apply_default_profile(env).startswith(says)
    assert env == before
