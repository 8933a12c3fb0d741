"""bench/distill_gain.py's bookkeeping: the shared budget per row and the weighted loss terms it reports."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import distill_gain  # noqa: E402

BUDGET = distill_gain.BUDGETS["cpu"]


def config(name: str, teacher: str = "teacher.pt", steps: int = 150, seed: int = 0):
    row = next(r for r in distill_gain.ROWS if r.config == name)
    return distill_gain.row_config(row, Path("data"), Path(teacher), steps, BUDGET, seed)


def test_every_student_row_gets_the_same_budget_and_the_teacher():
    for row in distill_gain.ROWS:
        cfg = config(row.config, steps=150, seed=2)
        assert cfg.total_steps == 150 and cfg.seed == 2 and cfg.data.batch_size == BUDGET.batch
        assert cfg.data.train_kwargs["crop"] == list(BUDGET.crop) and cfg.data.val_kwargs["size"] == list(BUDGET.size)
        assert (cfg.teacher.source == "teacher.pt") == row.distill
    stages = [s.steps for s in config("synthetic_cdspn_x32").stages]
    assert stages == [75, 30, 45]  # CDSPN's three stages keep the config's 1000 : 400 : 600


def test_term_weights_are_the_papers():
    assert distill_gain.term_weights(config("synthetic_lspkd_prob_att")) == {
        "gt": 1.0, "teacher_depth": 1.0, "lspkd_feat": 1.0, "lspkd_sim": 1.0, "prob": 10000.0, "att": 1000.0}
    assert distill_gain.term_weights(config("synthetic_blackbox")) == pytest.approx(
        {"gt": 0.8, "teacher_depth": 0.1, "teacher_grad": 0.1})
    assert distill_gain.term_weights(config("synthetic_student")) == {"gt": 1.0, "teacher_depth": 0.0}


def test_weighted_terms_at_the_start_and_the_end(tmp_path):
    rows = [{"kind": "train", "step": s, "gt": 10.0 - s, "prob": 1e-3, "time_s": float(s)} for s in range(1, 21)]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + [{"kind": "val", "step": 20}]))
    log = distill_gain.train_log(tmp_path)
    terms = distill_gain.weighted_terms(log, {"gt": 1.0, "prob": 1e4, "teacher_depth": 0.0})
    assert terms["start"] == pytest.approx({"gt": 9.0, "prob": 10.0})
    assert terms["end"] == pytest.approx({"gt": 10.0 - 15.5, "prob": 10.0})
