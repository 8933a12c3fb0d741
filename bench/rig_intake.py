"""What taking in a rig's messages costs one node's worker: a sweep's time with and without the intake.

A rig node takes in every camera's image of every sweep (six DDAD cameras at 10 Hz: 60 images of 7 MB a
second) in its executor thread, while its worker and its camera threads (``FramePool``) process one sweep in
several; six separate nodes take in the same images, each its own camera's. This bench runs the node's rig
path on the DDAD scene's cameras in this process (as ``bench/rig_stages.py``, pool configuration) under four
conditions, their rounds interleaved so that other load on the machine hits them alike:

* **alone**: nothing else runs;
* **publisher**: the test publisher (``test/node_harness.py``) sends the rig at ``--rate`` to a sink in another
  process (the machine's share of the traffic: the publisher, DDS, the sink);
* **intake**: the same, and this process takes the messages in as the node does (its rclpy executor in a thread
  of its own, messages deserialized);
* **intake raw**: the same with ``raw=True`` subscriptions (the serialized bytes only, as a node that deserialized
  an image only when its set is processed would take them).

For each: the sweep's wall time (median ms), and with intake the executor thread's CPU per sweep taken in (ms,
``time.thread_time`` in that thread) and the sweeps it took in. intake - publisher is what the intake costs the
worker in the same process (CPU and the GIL); raw against deserialized shows whether deferring deserialization
would save anything.

    .venv/bin/python bench/rig_intake.py                 # 10 Hz, 3 rounds of 4 sweeps per condition
    .venv/bin/python bench/rig_intake.py --rate 2
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test"), str(ROOT / "bench")]

import node_harness as harness  # noqa: E402
from _report import machine, write_section  # noqa: E402
from node_latency import rig_frames  # noqa: E402
from rig_stages import rig_messages, sweep  # noqa: E402

from lumde_depth.inference import DepthCompleter, FramePool  # noqa: E402
from lumde_depth.ros.pipeline import DepthPipeline  # noqa: E402

CONDITIONS = ("alone", "publisher", "intake", "intake raw")
SINK = """
import sys, rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
rclpy.init()
node = rclpy.create_node("lumde_bench_sink")
qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
for camera in sys.argv[1].split(","):
    node.create_subscription(Image, camera + "/image", lambda m: None, qos, raw=True)
    node.create_subscription(CameraInfo, camera + "/camera_info", lambda m: None, qos, raw=True)
node.create_subscription(PointCloud2, "points", lambda m: None, qos, raw=True)
rclpy.spin(node)
"""


class Intake:
    """The rig's subscriptions in this process, spun by an executor in a thread of its own (as the node's)."""

    def __init__(self, cameras: list[str], raw: bool) -> None:
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        self.node = rclpy.create_node("lumde_bench_intake")
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.sweeps, self.cpu = 0, 0.0
        for camera in cameras:
            self.node.create_subscription(Image, f"{camera}/image", lambda m: None, qos, raw=raw)
            self.node.create_subscription(CameraInfo, f"{camera}/camera_info", lambda m: None, qos, raw=raw)
        self.node.create_subscription(PointCloud2, "points", self._cloud, qos, raw=raw)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="lumde_bench_intake")
        self._thread.start()

    def _cloud(self, _msg: object) -> None:
        self.sweeps += 1

    def _spin(self) -> None:
        from rclpy.executors import SingleThreadedExecutor
        executor = SingleThreadedExecutor()
        executor.add_node(self.node)
        while not self._stop.is_set():
            executor.spin_once(timeout_sec=0.1)
            self.cpu = time.thread_time()
        executor.shutdown()

    def mark(self) -> tuple[int, float]:
        return self.sweeps, self.cpu

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.node.destroy_node()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10.0, help="sweeps per second published")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every condition, interleaved")
    parser.add_argument("--sweeps", type=int, default=4, help="timed sweeps per condition and round")
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    import rclpy

    from conftest import shared_data_dir
    os.environ.update(harness.ros_env(int(os.environ.get("ROS_DOMAIN_ID", "0")) or 77))
    harness.use_large_messages_profile()
    shared = shared_data_dir()
    cameras, points, source = rig_frames(shared if shared.is_dir() else None, args.cameras)
    workdir = Path(tempfile.mkdtemp(prefix="lumde_rig_intake_"))
    rig_file = harness.save_rig(workdir / "rig.npz", cameras, points)
    messages, extrinsics, cloud = rig_messages(cameras, points)
    completer = DepthCompleter.load(None, backend="onnxruntime", device="cpu")   # the shipped student
    pool = FramePool.for_frames(len(cameras))
    pipeline = DepthPipeline(completer, pool=pool)
    outputs = {"depth/image", "depth/camera_info"}
    sweep(pipeline, pool, messages, cloud, extrinsics, outputs)   # warm-up
    rclpy.init()
    names = list(cameras)
    times: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    intake: dict[str, list[tuple[int, float]]] = {c: [] for c in CONDITIONS[2:]}
    load_before = os.getloadavg()[0]
    for _round in range(args.rounds):
        for condition in CONDITIONS:
            sink = taker = publisher = None
            if condition == "publisher":
                sink = subprocess.Popen([sys.executable, "-c", SINK, ",".join(names)], env=os.environ)
            elif condition != "alone":
                taker = Intake(names, raw=condition == "intake raw")
            if condition != "alone":
                publisher = harness.start_publisher(rig_file, rate=args.rate, count=0, seconds=1e6,
                                                    cameras=tuple(names), env=dict(os.environ))
                publisher.stdout.readline()   # it publishes once every subscription is there
                time.sleep(1.0 + 2.0 / args.rate)
            start = taker.mark() if taker else None
            times[condition] += [sweep(pipeline, pool, messages, cloud, extrinsics, outputs)[0]["sweep"]
                                 for _ in range(args.sweeps)]
            if taker:
                end = taker.mark()
                intake[condition].append((end[0] - start[0], end[1] - start[1]))
            for proc in (publisher, sink):
                if proc is not None:
                    proc.kill()
                    proc.wait()
            if taker:
                taker.close()
    load_after = os.getloadavg()[0]
    workers = pool.describe()
    pool.close()
    rclpy.try_shutdown()
    n, (h, w) = len(cameras), next(iter(cameras.values()))["rgb"].shape[:2]
    median = {c: float(np.median(t)) for c, t in times.items()}
    lines = [f"Machine: {machine()}; 1-minute load average {load_before:.1f} before and {load_after:.1f} after the "
             "run (other work on the machine slows every figure below when it is above ~1).",
             f"Input: {source}: {n} cameras {w}x{h} and one {len(points)}-point sweep through the node's rig path "
             f"in this process ({workers}, shipped student, onnxruntime, outputs depth/image + depth/camera_info), "
             f"{args.sweeps} sweeps per condition in each of {args.rounds} interleaved rounds; the test publisher "
             f"sends the rig at {args.rate:g} Hz over loopback DDS (config/fastdds_large_messages.xml: shared "
             "memory).", "",
             "| condition | sweep (median ms) | vs alone | executor CPU per sweep taken in (ms) "
             "| sweeps taken in (Hz) |",
             "|---|---|---|---|---|"]
    for condition in CONDITIONS:
        taken = intake.get(condition)
        cpu = sweeps_hz = "-"
        if taken:
            total, seconds = sum(t[0] for t in taken), sum(t[1] for t in taken)
            cpu = f"{1e3 * seconds / max(total, 1):.1f}"
            sweeps_hz = f"{total / (sum(times[condition]) / 1e3):.1f}"
        lines.append(f"| {condition} | {median[condition]:.0f} | {median[condition] / median['alone']:.2f}x | {cpu} | "
                     f"{sweeps_hz} |")
    flag = f" --rate {args.rate:g}" if args.rate != 10 else ""
    lines += ["", f"Run: `.venv/bin/python bench/rig_intake.py{flag}`."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        suffix = "" if args.rate == 10 else f"_{args.rate:g}hz".replace(".", "_")
        write_section(f"rig_intake{suffix}", f"## What taking in the rig's messages costs one node ({args.rate:g} Hz, "
                                             f"`bench/rig_intake.py{flag}`)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
