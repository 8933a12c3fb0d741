"""docs/training.md's tour, run as written: synth -> teacher -> distil (+ --extend) -> TensorBoard ->
eval -> export -> the node's pipeline over a bag, at toy size, from the repository's root."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lumde_depth.models.io import load_model

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "training.md"


def tour_commands() -> str:
    """The bash block between the tour markers of docs/training.md."""
    text = DOC.read_text()
    block = re.search(r"<!-- tour:start -->\s*```bash\n(.*?)```\s*<!-- tour:end -->", text, re.S)
    assert block, "docs/training.md lost its tour block (<!-- tour:start --> ```bash ... ``` <!-- tour:end -->)"
    return block.group(1)


@pytest.mark.timeout(1800)   # about 65 s of CPU time (one thread); a shared, loaded machine takes longer
def test_the_training_tour_runs_as_documented(tmp_path):
    (tmp_path / "config").symlink_to(ROOT / "config")   # the tour's paths are relative to the repository root
    python = sys.executable
    script = ("set -euo pipefail\n"
              f"lumde() {{ '{python}' -m lumde_depth.cli.main \"$@\"; }}\n"
              f"tensorboard() {{ '{python}' -m tensorboard.main \"$@\"; }}\n"
              + tour_commands())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "LUMDE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1750)
    out = proc.stdout
    assert proc.returncode == 0, f"{out[-4000:]}\n{proc.stderr[-4000:]}"
    tour = tmp_path / "runs" / "tour"
    # 0. the benchmark crop at a quarter-size camera, said
    assert ("val_selection_cropped: 6 frame(s) of the val drives cropped to 304x88, KITTI's 1216x352 scaled by "
            "camera_scale 0.25") in out
    # 1.-2. run folders hold what the doc's table says; summaries, progress lines, validations with units
    for run in ("teacher", "student"):
        names = {p.name for p in (tour / run).iterdir()}
        assert {"config.yaml", "log.jsonl", "train.csv", "val.csv", "tensorboard", "checkpoints", "best.pt",
                "model.pt"} == names
    assert "synthetic_teacher: new run; run folder runs/tour/teacher" in out
    assert "world size 1 process(es), batch 2 per process = global batch 2" in out
    assert "step 3/12 (25%) epoch" in out and re.search(r"step 6 validation \(4 images\): RMSE [\d.]+ mm", out)
    assert "model lspkd_student {'width': 0.125}: 496 k parameters; teacher runs/tour/teacher/best.pt" in out
    assert "synthetic_lspkd: resumed from step 12" in out and "extending the run: 12 -> 18 steps" in out
    assert load_model(tour / "student" / "model.pt")[1]["steps"] == 18
    assert load_model(tour / "student" / "model.pt")[1]["teacher"] == "runs/tour/teacher/best.pt"
    # 3. TensorBoard has the losses, metrics and pictures
    for tag in ("train/total", "train/lspkd_sim", "train/lr", "val/rmse", "val/frame_0"):
        assert f"   {tag}\n" in out
    # 4. one table, four models, the same frames
    for row in ("| best.pt (synthetic_teacher) |", "| best.pt (synthetic_lspkd) |",
                "| step_00000012.pt (synthetic_lspkd, step 12) |",
                "| shipped (shipped_student) |"):
        assert row in out
    report = json.loads((tour / "eval.json").read_text())
    assert len(report["models"]) == 4 and {m["metrics"]["samples"] for m in report["models"]} == {6}
    # 5. exports named from the run; the checkpoint became a model file
    assert {p.name for p in (tour / "exported").iterdir()} == {
        "synthetic_lspkd_best.onnx", "synthetic_lspkd_best.torchscript.pt", "synthetic_lspkd_best_int8.onnx",
        "synthetic_lspkd_step12.pt"}
    assert load_model(tour / "exported" / "synthetic_lspkd_step12.pt")[1]["steps"] == 12
    # 6. the node's pipeline wrote the depth topics
    assert (tour / "depth_bag").is_dir()
    from rosbags.highlevel import AnyReader
    with AnyReader([tour / "depth_bag"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts.get("/depth/image", 0) == 6 and counts.get("/depth/points", 0) == 6
