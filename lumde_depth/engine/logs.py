"""Training logs a person can plot: ``train.csv`` / ``val.csv`` plus everything in ``log.jsonl``.

Rows carry the global step. A resumed run first drops the rows written after the checkpoint it
resumes from (the interrupted run logged them, the resumed run logs them again), so the files
read as one uninterrupted run.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends rows of scalars; ``kind`` 'train' or 'val' picks the csv file."""

    def __init__(self, run_dir: str | Path, resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.run_dir / "log.jsonl"
        if resume_step is not None:
            self._truncate_after(resume_step)

    def write(self, kind: str, row: dict[str, Any]) -> None:
        row = {k: _plain(v) for k, v in row.items()}
        with open(self.jsonl, "a") as handle:
            handle.write(json.dumps({"kind": kind, **row}) + "\n")
        path = self.run_dir / f"{kind}.csv"
        columns = _header(path) or list(row)
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def event(self, kind: str, row: dict[str, Any]) -> None:
        """A row for ``log.jsonl`` only (e.g. the start-up summary, kind 'start')."""
        with open(self.jsonl, "a") as handle:
            handle.write(json.dumps({"kind": kind, **{k: _plain(v) for k, v in row.items()}}) + "\n")

    def _truncate_after(self, step: int) -> None:
        if self.jsonl.exists():
            kept = [line for line in self.jsonl.read_text().splitlines()
                    if line.strip() and (json.loads(line).get("step") or 0) <= step]
            self.jsonl.write_text("".join(line + "\n" for line in kept))
        for path in self.run_dir.glob("*.csv"):
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            columns = _header(path)
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(r for r in rows if int(r["step"]) <= step)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``log.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _header(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    with open(path, newline="") as handle:
        return next(csv.reader(handle), None)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return round(value, 8) if isinstance(value, float) else value
