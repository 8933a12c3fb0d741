"""bench/distill_memory.py runs end to end at a tiny size and shows SPKD needing more memory."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_distill_memory_bench_runs_and_spkd_needs_more():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "distill_memory.py"), "--height", "128", "--width",
                           "256", "--layer-sets", "paper-spkd", "--no-write"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = dict(re.findall(r"\| paper-spkd \(.*?\) \| (\w+) \| ([\d.]+) \|", proc.stdout))
    assert set(rows) == {"lspkd", "spkd"}
    assert float(rows["spkd"]) > float(rows["lspkd"])
