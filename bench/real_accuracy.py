"""Real-world accuracy: every real set of ../shared/data with LiDAR or depth, the shipped student against
nearest fill and IP-Basic, and the student after ``lumde adapt`` (leave-one-scene-out).

Run: ``.venv/bin/python bench/real_accuracy.py [--model FILE] [--adapt ddad] [--adapted MODEL]``.
Writes its tables into ``docs/benchmarks.md`` and ``docs/model_card.md`` (section ``real_accuracy``).

Sets (each frame through ``DepthCompleter`` at the camera's full resolution, as the node runs it):

- LiDAR-only sets (KITTI object, KITTI raw, DDAD per camera, PJLab on the raw distorted image with the
  LiDAR projected through the distortion): sparse-to-sparse, 20 % of the projected LiDAR pixels held out
  as ground truth, the rest is the input, ``--draws`` seeded draws per frame.
- Argoverse: its ground truth is accumulated LiDAR (semi-dense, no raw sweep in the sample): the same
  hold-out protocol on it (sparse LiDAR input against LiDAR ground truth).
- Indoor RGB-D (Redwood, NYU v2 / SUN RGB-D / TUM): the NYUv2 protocol's 500 samples of the dense
  sensor depth as input, the dense depth as ground truth.

Rows: nearest fill (each pixel takes the nearest LiDAR pixel's depth), IP-Basic, the student as the node
runs it (``lidar_align`` on) and its network alone, and the student after ``lumde adapt``: with
``--adapt RIG`` (default ``ddad``) one adaptation per held-out scene of that rig, trained on the rig's
other scenes (all cameras) and scored on the held-out one, never on frames it adapted on; with
``--adapted MODEL`` a given adapted model on every set. Columns: KITTI metrics (RMSE, MAE in mm, iRMSE in
1/km; per frame, then averaged), per-frame time (ms, the completion call alone; the per-frame times
are only indicative on a loaded machine), and the ratios of RMSE and MAE to the better of nearest fill
and IP-Basic (issue 13's targets: outdoors RMSE <= 0.85 and MAE <= 0.90, indoors RMSE <= 0.80).

A second table: the student's error by confidence decile (``DepthCompleter.complete_with_confidence``)
on the held-out points / ground truth of the same frames.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import machine, write_section  # noqa: E402
from lumde_depth.data import real_sets  # noqa: E402
from lumde_depth.data.rig_frame import RigFrame  # noqa: E402
from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics  # noqa: E402
from lumde_depth.inference import DepthCompleter  # noqa: E402

MODEL_CARD = ROOT / "docs" / "model_card.md"
SECTION = "real_accuracy"
BASELINES = ("nearest fill", "IP-Basic")
STUDENT, NETWORK, ADAPTED = "student (node)", "student, network only", "student after lumde adapt"
TARGETS = {True: (0.85, 0.90), False: (0.80, None)}   # outdoor: RMSE, MAE ratio; indoor: RMSE only
DECILES = 10


@dataclass
class EvalSet:
    """One row group: ``frames(data)`` yields its RigFrames; ``protocol`` ``holdout`` (sparse-to-sparse) or
    ``sampled`` (500 points of a dense depth); ``rig`` groups sets whose scenes share a rig (for adapt)."""

    title: str
    frames: Callable[[Path], Iterator[RigFrame]]
    protocol: str
    outdoor: bool
    rig: str
    group: str   # column of the confidence table


def eval_sets(data: Path) -> list[EvalSet]:
    """The sets present under ``data`` (a missing folder is left out)."""
    sets = [EvalSet("KITTI object", real_sets.kitti_object_frames, "holdout", True, "kitti_object", "KITTI"),
            EvalSet("KITTI raw 2011_09_26_0023", real_sets.kitti_raw_frames, "holdout", True, "kitti_raw", "KITTI")]
    if (data / "ddad_testscene").is_dir():
        from lumde_depth.data.ddad import ddad_scenes

        cameras = sorted({c for scene in ddad_scenes(data / "ddad_testscene") for c in scene.cameras})
        sets += [EvalSet(f"DDAD {camera}", lambda d, c=camera: real_sets.ddad_frames(d, c), "holdout", True, "ddad",
                         "DDAD") for camera in cameras]
    sets += [EvalSet("PJLab (raw distorted image)", real_sets.pjlab_frames, "holdout", True, "pjlab",
                     "PJLab + Argoverse"),
             EvalSet("Argoverse stereo (LiDAR ground truth)", real_sets.argoverse_frames, "holdout", True,
                     "argoverse", "PJLab + Argoverse"),
             EvalSet("Redwood living room (indoor)", real_sets.redwood_frames, "sampled", False, "redwood",
                     "indoor"),
             EvalSet("NYU v2 + SUN RGB-D + TUM (indoor)", real_sets.rgbd_sensor_frames, "sampled", False,
                     "rgbd_samples", "indoor")]
    folders = {"kitti_object": "kitti_object", "kitti_raw": "kitti_raw_tiny", "ddad": "ddad_testscene",
               "pjlab": "pjlab_lidar2camera", "argoverse": "argoverse_stereo", "redwood": "redwood_livingroom",
               "rgbd_samples": "rgbd_samples"}
    return [s for s in sets if (data / folders[s.rig]).is_dir()]


def trials(frame: RigFrame, protocol: str, draws: int, rng: np.random.Generator
           ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(input, ground truth)`` pairs of a frame under its protocol."""
    if protocol == "holdout":
        for _ in range(draws):
            yield real_sets.holdout(frame.depth, rng)
    else:
        yield real_sets.sample_points(frame.depth, rng), frame.depth


# ---------------------------------------------------------------------- adaptation (leave one scene out)
def adapt_per_scene(rig: str, sets: list[EvalSet], data: Path, model: str | None, steps: int, out: Path,
                    backend: str) -> dict[str, DepthCompleter]:
    """One ``lumde adapt`` run per scene of ``rig``, each on the rig's other scenes (every frame of its sets,
    scored nowhere: the bench scores it); held-out scene -> the adapted model's completer."""
    from lumde_depth.data.recording import Recording
    from lumde_depth.engine.adapt import adapt

    loaders: dict[str, list[Callable[[], RigFrame]]] = {}
    for s in sets:
        if s.rig != rig:
            continue
        for index, frame in enumerate(s.frames(data)):
            loaders.setdefault(frame.scene, []).append(
                lambda s=s, index=index: next(f for i, f in enumerate(s.frames(data)) if i == index))
    if len(loaders) < 2:
        print(f"real_accuracy: rig {rig} has {len(loaders)} scene(s): leave-one-scene-out needs two", file=sys.stderr)
        return {}
    adapted = {}
    for held_out in sorted(loaders):
        train = [load for scene, scene_loaders in sorted(loaders.items()) if scene != held_out
                 for load in scene_loaders]
        run = out / f"{rig}_{held_out}"
        if (run / "model.pt").is_file():   # a finished run of an earlier bench (--adapt-out): reused
            print(f"real_accuracy: reusing {run / 'model.pt'}", file=sys.stderr, flush=True)
            adapted[held_out] = DepthCompleter.load(run / "model.pt", backend=backend)
            continue
        print(f"real_accuracy: lumde adapt on {rig} without {held_out} ({len(train)} frames, {steps} steps)",
              file=sys.stderr, flush=True)
        result = adapt(Recording(f"{rig} without {held_out}", train), run, model=model,
                       config={"steps": steps, "score": False, "progress": False, "checkpoint_every": steps,
                               "threads": 1})
        adapted[held_out] = DepthCompleter.load(result.model_path, backend=backend)
    return adapted


# ---------------------------------------------------------------------- evaluation
@dataclass
class SetResult:
    title: str
    outdoor: bool
    frames: int
    trials: int
    metrics: dict[str, dict[str, float]]
    times: dict[str, float]                  # mean ms per completion
    confidence: tuple[np.ndarray, np.ndarray]   # student's (confidence, abs error m) at ground-truth pixels


def evaluate(s: EvalSet, data: Path, methods: dict[str, DepthCompleter],
             adapted: Callable[[str], DepthCompleter | None], draws: int, seed: int) -> SetResult:
    """All methods on every trial of the set; ``adapted(scene)`` is the adapted student for a frame of
    ``scene`` (None: no adapted row for it)."""
    accs = {name: MetricAccumulator(kitti_metrics) for name in [*methods, ADAPTED]}
    spent: dict[str, list[float]] = {name: [] for name in accs}
    conf, err = [], []
    rng = np.random.default_rng(seed)
    n_frames = n_trials = 0
    for frame in s.frames(data):
        n_frames += 1
        completers = {**methods, **({ADAPTED: adapted(frame.scene)} if adapted(frame.scene) else {})}
        for sparse, gt in trials(frame, s.protocol, draws, rng):
            n_trials += 1
            for name, completer in completers.items():
                t0 = time.perf_counter()
                if name == STUDENT:
                    pred, confidence = completer.complete_with_confidence(frame.rgb, sparse, frame.K)
                    spent[name].append(1e3 * (time.perf_counter() - t0) - completer.last_timings["confidence"])
                    valid = gt > 0
                    conf.append(confidence[valid])
                    err.append(np.abs(pred[valid] - gt[valid]))
                else:
                    pred = completer.complete(frame.rgb, sparse, frame.K)
                    spent[name].append(1e3 * (time.perf_counter() - t0))
                accs[name].update(pred, gt)
    return SetResult(s.title, s.outdoor, n_frames, n_trials,
                     {name: acc.result() for name, acc in accs.items() if acc.count},
                     {name: float(np.mean(t)) for name, t in spent.items() if t},
                     (np.concatenate(conf), np.concatenate(err)))


# ---------------------------------------------------------------------- tables
def accuracy_rows(r: SetResult) -> list[str]:
    best_rmse = min(r.metrics[b]["rmse"] for b in BASELINES)
    best_mae = min(r.metrics[b]["mae"] for b in BASELINES)
    rmse_target, mae_target = TARGETS[r.outdoor]
    title = f"{r.title} ({r.frames} frames, {r.trials} trials)"
    rows = []
    for name in [*BASELINES, STUDENT, NETWORK, ADAPTED]:
        m = r.metrics.get(name)
        if m is None:
            rows.append(f"| {title} | {name} | — | — | — | — | — | — |")
            continue
        rmse_ratio, mae_ratio = m["rmse"] / best_rmse, m["mae"] / best_mae
        met = ""
        if name in (STUDENT, ADAPTED):
            ok = rmse_ratio <= rmse_target and (mae_target is None or mae_ratio <= mae_target)
            met = " ✓" if ok else " ✗"
        rows.append(f"| {title} | {name} | {m['rmse']:.1f} | {m['mae']:.1f} | {m['irmse']:.2f} | "
                    f"{r.times[name]:.0f} | {rmse_ratio:.3f}{met} | {mae_ratio:.3f} |")
    return rows


def decile_table(results: list[SetResult], groups: dict[str, list[str]]) -> list[str]:
    """Mean absolute error (mm) and mean confidence per confidence decile, pooled per group of sets."""
    columns = []
    for group, titles in groups.items():
        conf = np.concatenate([r.confidence[0] for r in results if r.title in titles])
        err = np.concatenate([r.confidence[1] for r in results if r.title in titles])
        order = np.argsort(conf, kind="stable")
        columns.append([(float(c.mean()), 1e3 * float(e.mean()))
                        for c, e in zip(np.array_split(conf[order], DECILES), np.array_split(err[order], DECILES))])
    header = "| confidence decile | " + " | ".join(f"{g}: mean confidence | {g}: MAE (mm)" for g in groups) + " |"
    rows = [header, "|---|" + "---:|---:|" * len(groups)]
    for d in range(DECILES):
        label = f"{d + 1} (lowest)" if d == 0 else f"{d + 1} (highest)" if d == DECILES - 1 else str(d + 1)
        rows.append(f"| {label} | " + " | ".join(f"{col[d][0]:.3f} | {col[d][1]:.0f}" for col in columns) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="student model file (default: the shipped student)")
    parser.add_argument("--backend", default="auto", help="backend of the student (default auto, as the node)")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("LUMDE_SHARED_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--draws", type=int, default=3, help="hold-out draws per LiDAR frame")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--adapt", default="ddad",
                        help="comma-separated rigs to adapt on leave-one-scene-out (ddad, kitti_object, pjlab); "
                             "'' = none")
    parser.add_argument("--adapt-steps", type=int, default=300, help="lumde adapt steps per held-out scene")
    parser.add_argument("--adapt-out", type=Path, default=None,
                        help="folder for the adaptation runs (default: a temporary folder); finished runs "
                             "found there (model.pt) are reused")
    parser.add_argument("--adapted", default=None,
                        help="an adapted model file to score on every set instead of adapting here")
    parser.add_argument("--only", default="", help="comma-separated words: keep only the sets whose title has one")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"real_accuracy: no shared data at {args.data} (set --data or LUMDE_SHARED_DATA)", file=sys.stderr)
        return 1
    sets = eval_sets(args.data)
    if args.only:
        words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        sets = [s for s in sets if any(w in s.title.lower() for w in words)]
    methods = {"nearest fill": DepthCompleter.load(backend="nearest"),
               "IP-Basic": DepthCompleter.load(backend="classical"),
               STUDENT: DepthCompleter.load(args.model, backend=args.backend),
               NETWORK: DepthCompleter.load(args.model, backend=args.backend, lidar_align=False)}

    adapted: dict[str, Callable[[str], DepthCompleter | None]] = {}   # set title -> scene -> completer
    adapt_note = "not run"
    if args.adapted:
        completer = DepthCompleter.load(args.adapted, backend=args.backend)
        adapted = {s.title: lambda _scene: completer for s in sets}
        adapt_note = f"the given model `{args.adapted}` on every set"
    elif args.adapt:
        out = args.adapt_out or Path(tempfile.mkdtemp(prefix="real_accuracy_adapt_"))
        rigs = [r.strip() for r in args.adapt.split(",") if r.strip()]
        for rig in rigs:
            per_scene = adapt_per_scene(rig, sets, args.data, args.model, args.adapt_steps, out, args.backend)
            adapted.update({s.title: per_scene.get for s in sets if s.rig == rig})
        adapt_note = (f"leave-one-scene-out on {', '.join(rigs)} (`lumde adapt`, {args.adapt_steps} steps per "
                      "held-out scene, trained on the rig's other scenes, all cameras); other sets: not run (—)")

    results = []
    for s in sets:
        print(f"real_accuracy: {s.title}", file=sys.stderr, flush=True)
        results.append(evaluate(s, args.data, methods, adapted.get(s.title, lambda _scene: None), args.draws,
                                args.seed))
        for row in accuracy_rows(results[-1]):
            print(row, flush=True)

    groups: dict[str, list[str]] = {}
    for s in sets:
        groups.setdefault(s.group, []).append(s.title)
    student = methods[STUDENT]
    table = "\n".join([
        "## Real-world accuracy: the student against nearest fill and IP-Basic (measured)",
        "",
        f"Command: `.venv/bin/python bench/real_accuracy.py --draws {args.draws} --adapt '{args.adapt}' "
        f"--adapt-steps {args.adapt_steps}`. Machine: {machine()}. Student: `{args.model or 'shipped'}`, backend "
        f"{student.backend_name} on {student.device}, network input {student.input_size[1]}x{student.input_size[0]} "
        f"(fit {student.fit}: images of another aspect ratio run at as many pixels in their own). "
        "LiDAR sets: 20 % of the projected LiDAR pixels held out as ground truth per draw (Argoverse: of its "
        "accumulated-LiDAR ground truth); indoor sets: 500 samples of the dense sensor depth as input, the "
        "dense depth as ground truth. RMSE / MAE in mm, iRMSE in 1/km (per frame, then averaged); time: mean "
        "ms per frame of the completion alone (measured on a shared, loaded machine: indicative only). "
        "Ratios: to the better of nearest fill and IP-Basic (RMSE to the better RMSE, MAE to the better MAE); "
        "✓ / ✗: issue 13's targets (outdoors RMSE ≤ 0.85 and MAE ≤ 0.90, indoors RMSE ≤ 0.80). "
        f"Student after `lumde adapt`: {adapt_note}.",
        "",
        "| data | method | RMSE | MAE | iRMSE | ms / frame | RMSE ratio | MAE ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *[row for r in results for row in accuracy_rows(r)],
        "",
        "### Confidence: the student's error by confidence decile",
        "",
        "`DepthCompleter.complete_with_confidence` on the same frames and draws: the ground-truth pixels of "
        "each group of sets sorted by the student's confidence and cut into ten equal parts; mean confidence "
        "and mean absolute error (mm) of each. The error should fall as the confidence rises.",
        "",
        *decile_table(results, groups)])
    print(table)
    if not args.no_write:
        write_section(SECTION, table)
        write_section(SECTION, table, doc=MODEL_CARD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
