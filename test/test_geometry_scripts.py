"""The projection benchmark and the KITTI projection picture run end to end (few runs, tmp output)."""
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from lumde_depth.geometry import project_points

ROOT = Path(__file__).resolve().parents[1]


def _load(relative):
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_")[:-3], ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_projection_loop_matches_numpy(capsys, monkeypatch, tmp_path):
    bench = _load("bench/projection.py")
    assert bench.main(["--runs", "3", "--loop-runs", "1", "--no-write"]) == 0  # returns 1 on a mismatch
    out = capsys.readouterr().out
    assert "| `project_points` (numpy, vectorized) | 3 |" in out and "1242x375" in out
    # without the shared data it falls back to a generated 64-beam scan, which also projects sanely
    monkeypatch.setenv("LUMDE_SHARED_DATA", str(tmp_path))
    points, T, P, source = bench.load_cloud()
    assert source.startswith("generated") and points.shape == (bench.N_POINTS, 4)
    depth = project_points(points, T, P, 1242, 375)
    assert 0.02 < (depth > 0).mean() < 0.1 and np.nonzero(depth)[0].min() > 100  # ground and walls, no sky


def test_figure_projection_writes_small_png(shared_data, tmp_path):
    figure = _load("scripts/figure_projection.py")
    out = tmp_path / "kitti_projection.png"
    assert figure.main(["--data", str(shared_data), "--out", str(out), "--frame", "000003"]) == 0
    with Image.open(out) as im:
        assert im.size == (1242, 375 + figure.BAR_HEIGHT)
        pixels = np.asarray(im.convert("RGB"))
    assert out.stat().st_size < 1_000_000
    # the lower half is covered by coloured LiDAR dots, the sky (top rows) is not
    saturated = (pixels.max(axis=2).astype(int) - pixels.min(axis=2)) > 100
    assert saturated[200:375].mean() > 0.3 and saturated[:30].mean() < 0.05
