"""bench/mono_gain.py's bookkeeping: every student row gets the same budget and seed, the teacher its own."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import mono_gain  # noqa: E402


def test_rows_share_the_student_budget_and_seed_and_the_teacher_has_its_own():
    budget = mono_gain.BUDGETS["cpu"]
    for row in mono_gain.ROWS:
        cfg = mono_gain.row_config(row, Path("train"), Path("held_out"), Path("teacher.pt"), budget, seed=3)
        teacher_row = row == mono_gain.ROWS[0]
        assert cfg.seed == 3 and cfg.data.batch_size == budget.batch
        assert cfg.total_steps == (budget.teacher_steps if teacher_row else budget.steps)
        assert cfg.stages[0].lr == (budget.teacher_lr if teacher_row else budget.lr)
        assert cfg.data.train_kwargs["size"] == list(budget.crop) == cfg.data.val_kwargs["size"]
        assert (cfg.teacher.source == "teacher.pt") == row.distill


def test_a_distilled_row_alone_needs_the_teacher_of_an_earlier_run(tmp_path):
    row = next(r for r in mono_gain.ROWS if r.distill)
    with pytest.raises(SystemExit, match="run the whole bench once"):
        mono_gain.train_rows([row], tmp_path, tmp_path, tmp_path / "missing.pt", mono_gain.BUDGETS["quick"], 1,
                             tmp_path / "runs")
