"""Soak through the live node (bench/soak.py): every set published or counted as dropped, flat memory and latency."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import soak  # noqa: E402

pytestmark = pytest.mark.ros


def test_short_soak_accounts_for_every_set(tmp_path):
    """70 sets at 10 Hz: sent = received = synchronized = processed + dropped, and every depth image arrived."""
    result = soak.soak(frames=60, rate=10.0, warmup=10, window=30, workdir=tmp_path)
    c = result.counters
    assert result.sent == 70 == c["received: image"] == c["synchronized sets"]
    assert c["processed"] + c["dropped (replaced before processing)"] + c["bad frames"] == c["synchronized sets"]
    assert c["bad frames"] == 0 and c["processed"] >= 1 and result.depth_received == c["processed"]


@pytest.mark.slow
def test_soak_3000_sets(tmp_path):
    result = soak.soak(frames=3000, rate=10.0, workdir=tmp_path)
    assert result.problems() == []
