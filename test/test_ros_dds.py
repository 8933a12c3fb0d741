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
    assert env.get("FASTRTPS_DEFAULT_PROFILES_FILE", "").endswith(".xml") and "FASTDDS_DEFAULT_PROFILES_FILE" not in env


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


def test_the_shipped_profile_comes_with_its_endpoint_settings():
    """rmw_fastrtps applies a profile's endpoint settings (history memory policy DYNAMIC: sample payloads freed
    after use) only with RMW_FASTRTPS_USE_QOS_FROM_XML=1: set with the shipped profile, the user's value kept."""
    env = {}
    assert "sample payloads freed after use" in dds.apply_default_profile(env)
    assert env[dds.QOS_FROM_XML] == "1"
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": str(dds.shipped_profile())}   # the user exported the shipped one
    dds.apply_default_profile(env)
    assert env[dds.QOS_FROM_XML] == "1"
    env = {dds.QOS_FROM_XML: "0"}
    assert f"{dds.QOS_FROM_XML}=0 as you set it" in dds.apply_default_profile(env)
    assert env[dds.QOS_FROM_XML] == "0"


def test_the_shipped_profile_frees_payloads_and_keeps_rmw_fastrtps_other_endpoint_defaults():
    """Its default data readers and writers allocate each payload for its sample (DYNAMIC: rmw_fastrtps's
    PREALLOCATED_WITH_REALLOC keeps a payload at the largest sample it held, 86 MB after one 4096x3000 frame);
    what RMW_FASTRTPS_USE_QOS_FROM_XML=1 stops rmw_fastrtps from setting is set here as rmw_fastrtps does."""
    import xml.etree.ElementTree as ET
    ns = {"p": "http://www.eprosima.com"}
    root = ET.parse(dds.shipped_profile()).getroot()
    for kind in ("data_writer", "data_reader"):
        default = root.find(f"p:{kind}[@is_default_profile='true']", ns)
        assert default.findtext("p:historyMemoryPolicy", namespaces=ns) == "DYNAMIC", kind
        assert default.findtext("p:qos/p:data_sharing/p:kind", namespaces=ns) == "OFF", kind
    writer = root.find("p:data_writer[@is_default_profile='true']", ns)
    assert writer.findtext("p:qos/p:publishMode/p:kind", namespaces=ns) == "SYNCHRONOUS"
    builtin = root.find("p:participant[@is_default_profile='true']/p:rtps/p:builtin", ns)
    assert {builtin.findtext(f"p:{e}HistoryMemoryPolicy", namespaces=ns) for e in ("reader", "writer")} \
        == {"PREALLOCATED_WITH_REALLOC"}
