"""Soak through the live node (bench/soak.py): every message and set accounted for, flat memory and latency."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import soak  # noqa: E402

pytestmark = pytest.mark.ros


def test_short_soak_accounts_for_every_message(tmp_path):
    """70 sets at 10 Hz: per input sent = received (nothing lost) = matched + evicted + pending; sets =
    processed + dropped; every depth image arrived."""
    result = soak.soak(frames=60, rate=10.0, warmup=10, window=30, workdir=tmp_path)
    c = result.counters
    assert result.sent == dict.fromkeys(("image", "camera_info", "points"), 70)
    assert result.delivery_gaps() == dict.fromkeys(result.sent, 0) and result.unaccounted == []
    assert c["received: image"] == 70 and c.get("lost by DDS: image", 0) == 0
    assert c["processed"] + c["dropped (replaced before processing)"] + c["bad frames"] == c["synchronized sets"]
    assert c["bad frames"] == 0 and c["processed"] >= 1 and result.depth_received == c["processed"]


@pytest.mark.slow
def test_soak_3000_sets(tmp_path):
    result = soak.soak(frames=3000, rate=10.0, workdir=tmp_path)
    assert result.problems() == []
