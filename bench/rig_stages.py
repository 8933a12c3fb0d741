"""Where one node's time goes for a rig: the per-stage profile of a sweep of N cameras, without DDS.

The node's rig path on the DDAD test scene's cameras (1936x1216, sample 0) and their shared LiDAR sweep, in
this process: messages in (``rig_inputs``: the cloud converted once, each camera's image), ``process_rig``
(projection, one network run with each camera's input preparation and full-resolution refinement around it,
support mask, cloud, colour map) and each camera's output messages (``frame_messages``) built as soon as that
camera is finished, as the node's worker runs it (the node publishes them there too).
Two configurations, their runs interleaved so that other load on the machine hits both alike:

* **in turn**: the cameras one after the other in the calling thread, torch with its default threads (what
  the node did before its FramePool);
* **pool**: each camera's own work on ``FramePool.for_frames(N)`` (what the node does: one thread per camera
  up to one per core, torch's threads shared out).

Wall times of the sweep's phases (ms, median over the runs; ``first camera ready`` / ``last camera ready``:
from the network batch's start until the first / last camera's depth was refined, i.e. about when the node
publishes it; ``complete.postprocess``: from the network run's end until every camera was finished, its
messages built) and, per camera, the mean of the stages each camera ran (in whichever thread). Also checks that
both give the same depth, bit for bit.

    .venv/bin/python bench/rig_stages.py                  # 6 cameras, 5 runs each, depth/image only
    .venv/bin/python bench/rig_stages.py --outputs all    # also cloud, confidence, colour map
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test"), str(ROOT / "bench")]

from _report import machine, write_section  # noqa: E402
from node_latency import rig_frames  # noqa: E402

from lumde_depth.inference import DepthCompleter, FramePool  # noqa: E402
from lumde_depth.ros import convert  # noqa: E402
from lumde_depth.ros.pipeline import DepthPipeline, rig_inputs  # noqa: E402

PHASES = ("convert_in", "complete.preprocess", "complete.inference", "first camera ready", "last camera ready",
          "complete.postprocess", "process_rig", "sweep")
CAMERA_STAGES = ("project", "support", "cloud", "colorize", "messages")


def sweep(pipeline: DepthPipeline, pool: FramePool, messages: list[tuple], cloud: object, extrinsics: list,
          outputs: set[str] | None) -> tuple[dict[str, float], dict[str, float], list[np.ndarray]]:
    """One sweep as the node's worker runs it: (phase wall ms, per-camera stage mean ms, depths)."""
    built: dict[int, float] = {}

    def build(index: int, result: object) -> None:   # where the node publishes
        t = time.perf_counter()
        image, info = messages[index]
        convert.frame_messages(result, image.header, info, topics=outputs)
        built[index] = 1e3 * (time.perf_counter() - t)

    t0 = time.perf_counter()
    views, xyz = rig_inputs(messages, cloud, pool)
    t1 = time.perf_counter()
    results = pipeline.process_rig([(rgb, camera, T) for (rgb, camera), T in zip(views, extrinsics)], xyz, outputs,
                                   done=build)
    t2 = time.perf_counter()
    ready = [r.timings["complete"] for r in results]
    phases = {"convert_in": 1e3 * (t1 - t0), "process_rig": 1e3 * (t2 - t1), "sweep": 1e3 * (t2 - t0),
              "first camera ready": min(ready), "last camera ready": max(ready),
              **{f"complete.{k}": v for k, v in pipeline.completer.last_timings.items()}}
    for index, result in enumerate(results):
        result.timings["messages"] = built[index]
    stages = {k: float(np.mean([r.timings.get(k, 0.0) for r in results])) for k in CAMERA_STAGES}
    return phases, stages, [r.depth for r in results]


def rig_messages(cameras: dict[str, dict[str, np.ndarray]], points: np.ndarray) -> tuple[list[tuple], list, object]:
    """``(per camera (Image, CameraInfo), per camera T_cam_lidar, PointCloud2)`` of a rig (``rig_frames``)."""
    messages, extrinsics = [], []
    for name, cam in cameras.items():
        header = convert.make_header(1, name)
        h, w = cam["rgb"].shape[:2]
        messages.append((convert.numpy_to_image(cam["rgb"], "rgb8", header),
                         convert.make_camera_info(header, w, h, P=cam["P"])))
        extrinsics.append(cam["T"])
    return messages, extrinsics, convert.xyzi_to_cloud(points, convert.make_header(1, "LIDAR"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5, help="timed sweeps per configuration (after one warm-up)")
    parser.add_argument("--backend", default="onnxruntime", help="as bench/node_latency.py --cameras (its default)")
    parser.add_argument("--outputs", choices=("image", "all"), default="image",
                        help="image: depth/image and depth/camera_info subscribed (node_latency's listener); "
                             "all: every output (cloud, confidence, colour map too)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    from conftest import shared_data_dir
    shared = shared_data_dir()
    cameras, points, source = rig_frames(shared if shared.is_dir() else None, args.cameras)
    messages, extrinsics, cloud = rig_messages(cameras, points)
    completer = DepthCompleter.load(None, backend=args.backend, device="cpu")   # the shipped student
    outputs = {"depth/image", "depth/camera_info"} if args.outputs == "image" else None
    pools = {"in turn": FramePool(1), "pool": FramePool.for_frames(len(cameras))}
    pipelines = {label: DepthPipeline(completer, pool=pool) for label, pool in pools.items()}
    phases: dict[str, list[dict[str, float]]] = {label: [] for label in pools}
    stages: dict[str, list[dict[str, float]]] = {label: [] for label in pools}
    depths = {}
    load_before = os.getloadavg()[0]
    for run in range(args.runs + 1):
        for label, pool in pools.items():
            p, s, depths[label] = sweep(pipelines[label], pool, messages, cloud, extrinsics, outputs)
            if run:
                phases[label].append(p)
                stages[label].append(s)
    load_after = os.getloadavg()[0]
    same = all(np.array_equal(a, b) for a, b in zip(depths["in turn"], depths["pool"]))
    n, (h, w) = len(cameras), next(iter(cameras.values()))["rgb"].shape[:2]
    pool = pools["pool"]
    lines = [f"Machine: {machine()}; 1-minute load average {load_before:.1f} before and {load_after:.1f} after the "
             "run (other work on the machine slows every figure below when it is above ~1).",
             f"Input: {source}: {n} cameras {w}x{h} and one {len(points)}-point sweep, as rclpy messages, through "
             f"the node's rig path in one process (no DDS). Model: the shipped student, backend {completer.backend_name}, network input {completer.backend.input_size} (the cameras' aspect ratio); outputs "
             f"{'depth/image + depth/camera_info' if outputs else 'all'}. In turn: torch {torch.get_num_threads()} "
             f"threads, cameras one after the other; pool: {pool.describe()}. Median of {args.runs} sweeps each, "
             f"interleaved. Depth of the two bit for bit equal: {'yes' if same else 'NO'}.", "",
             "| phase of a sweep (wall ms) | " + " | ".join(pools) + " |", "|---|" + "---|" * len(pools)]
    for phase in PHASES:
        lines.append(f"| {phase} | " + " | ".join(f"{np.median([p[phase] for p in phases[label]]):.0f}"
                                                 for label in pools) + " |")
    lines += ["", "| stage, per camera (mean ms, in its thread) | " + " | ".join(pools) + " |",
              "|---|" + "---|" * len(pools)]
    for stage in CAMERA_STAGES:
        lines.append(f"| {stage} | " + " | ".join(f"{np.median([s[stage] for s in stages[label]]):.1f}"
                                                 for label in pools) + " |")
    lines += ["", f"Run: `.venv/bin/python bench/rig_stages.py{' --outputs all' if not outputs else ''}`."]
    for p in pools.values():
        p.close()
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(f"rig_stages{'_all' if not outputs else ''}",
                      f"## Where one node's time goes for {n} cameras (`bench/rig_stages.py"
                      f"{' --outputs all' if not outputs else ''}`)\n\n" + text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
