"""SweepGatherer: the per-camera sets of a rig gathered by the LiDAR sweep they share (no rclpy)."""
from __future__ import annotations

from types import SimpleNamespace

from lumde_depth.ros import convert
from lumde_depth.ros.rig import SweepGatherer


def _cloud(stamp_ns: int) -> SimpleNamespace:
    return SimpleNamespace(header=SimpleNamespace(stamp=convert.make_stamp(stamp_ns)))


def test_a_sweep_goes_on_once_every_camera_has_its_set():
    rig = SweepGatherer(["front", "left", "right"])
    cloud = _cloud(1_000)
    assert rig.add("front", "img_f", "info_f", cloud) == ([], 0)
    assert rig.add("left", "img_l", "info_l", cloud) == ([], 0)
    assert rig.waiting == 2
    ready, late = rig.add("right", "img_r", "info_r", cloud)
    assert late == 0 and len(ready) == 1 and rig.waiting == 0
    assert ready[0].cloud is cloud and ready[0].stamp_ns == 1_000
    assert ready[0].sets == {"front": ("img_f", "info_f"), "left": ("img_l", "info_l"), "right": ("img_r", "info_r")}


def test_a_newer_sweep_sends_an_incomplete_one_on_and_late_sets_are_dropped():
    rig = SweepGatherer(["front", "left"])
    rig.add("front", "f1", "i", _cloud(1_000))
    ready, late = rig.add("front", "f2", "i", _cloud(2_000))      # "left" never came for sweep 1
    assert late == 0 and [s.stamp_ns for s in ready] == [1_000] and set(ready[0].sets) == {"front"}
    assert rig.add("left", "l1", "i", _cloud(1_000)) == ([], 1)   # its sweep has gone on: late
    ready, late = rig.add("front", "f2b", "i", _cloud(2_000))      # a second set of one camera for one sweep
    assert late == 1 and ready == [] and rig.waiting == 1
    ready, _ = rig.add("left", "l2", "i", _cloud(2_000))
    assert ready[0].sets["front"][0] == "f2b" and set(ready[0].sets) == {"front", "left"}


def test_a_sweep_waits_only_while_the_worker_is_idle():
    rig = SweepGatherer(["front", "left"], wait=0.5)
    rig.add("front", "f", "i", _cloud(1_000))
    opened = next(iter(rig._open.values())).opened
    assert rig.expired(now=opened + 0.4) == []
    assert rig.expired(idle_since=opened + 0.3, now=opened + 0.6) == []   # the worker was busy until +0.3 s
    ready = rig.expired(idle_since=opened + 0.3, now=opened + 0.9)
    assert [set(s.sets) for s in ready] == [{"front"}] and rig.waiting == 0
    assert rig.add("left", "l", "i", _cloud(1_000)) == ([], 1)
