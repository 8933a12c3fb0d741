"""Soak: thousands of frames replayed through the live node; nothing unaccounted, no memory growth, no latency drift.

One node process (real rclpy, loopback DDS, its own domain) and this script publishing synchronized
image + camera_info + cloud sets at --rate (reliable) and listening to depth/image and /diagnostics.
After --warmup sets, every --window sets it samples the node's resident memory (/proc VmRSS) and the
end-to-end latency of the depth images that arrived in that window (arrival here minus image stamp).

Checks, from the node's /diagnostics: per input, messages sent here = received by the node + reported lost
by DDS, and received = matched into a set + evicted from the synchronizer's queue + pending there (the
sync slop 0.05 s must stay below half the frame period, or neighbouring sets can be mis-paired and
their leftovers evicted); sets synchronized = processed + dropped (newest-frame policy) + bad; depth
images here = processed; RSS after warm-up grows < 5 % and the latency p50 stays < 1.5x (+5 ms),
comparing the means of the first and last three windows. Writes the ``soak`` (``--size small``) or
``soak_kitti`` (``--size kitti``) section of docs/reliability.md.

    .venv/bin/python bench/soak.py                          # 3000 sets at 320x96 + 20k points, 10 Hz (KITTI's rate)
    .venv/bin/python bench/soak.py --size kitti --depth 50 --large-messages-profile   # 1242x375 + ~120k points
    .venv/bin/python bench/soak.py --frames 300 --no-doc    # quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test"), str(ROOT / "bench")]

import node_harness as harness  # noqa: E402
from _report import machine, write_section  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
SMALL = (96, 320, 20_000)   # height, width, cloud points: 3,000 sets fit a CI-sized run
DELIVERY_TIMEOUT_S = 30.0   # a lagging node still takes its backlog from DDS after the last set is sent


def soak_frame(size: str) -> tuple[dict[str, np.ndarray], str]:
    """The frame replayed at ``size`` (``small`` or ``kitti``) and a line saying what it is."""
    if size == "small":
        height, width, n_points = SMALL
        return harness.synthetic_frame(height, width, n_points), "generated frame"
    from conftest import shared_data_dir
    shared = shared_data_dir()
    real = (shared / "kitti_object" / "training").is_dir()
    frame = harness.kitti_frame(shared if real else None)
    return frame, (f"KITTI object frame {harness.KITTI_FRAME}" if real else "generated KITTI-sized frame")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class SoakResult:
    sent: dict[str, int]                                     # messages per input topic
    counters: dict[str, int]                                 # the node's diagnostics counters at the end
    depth_received: int
    unaccounted: list[str] = field(default_factory=list)     # harness.unaccounted() of the final diagnostics
    rss_mb: list[float] = field(default_factory=list)        # per window after warm-up
    latency_p50_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sets_sent(self) -> int:
        return self.sent["image"]

    @property
    def rss_growth(self) -> float:
        """Mean RSS of the last three windows over the first three, minus 1 (one window alone moves by
        +-3 % as the allocator returns and takes pages; a leak shows as a trend)."""
        return float(np.mean(self.rss_mb[-3:]) / np.mean(self.rss_mb[:3]) - 1.0)

    def delivery_gaps(self) -> dict[str, int]:
        return harness.delivery_gaps(self.sent, self.counters)

    def problems(self) -> list[str]:
        out = [f"{topic}: sent {self.sent[topic]}, the node received {self.counters.get(f'received: {topic}', 0)} "
               f"(+{self.counters.get(f'lost by DDS: {topic}', 0)} reported lost)"
               for topic, gap in self.delivery_gaps().items() if gap]
        out += self.unaccounted
        if self.depth_received != self.counters["processed"]:
            out.append(f"node processed {self.counters['processed']} but {self.depth_received} depth images arrived")
        if self.rss_growth >= 0.05:
            out.append(f"resident memory grew {100 * self.rss_growth:.1f} % after warm-up")
        first, last = np.mean(self.latency_p50_ms[:3]), np.mean(self.latency_p50_ms[-3:])
        if last > 1.5 * first + 5.0:
            out.append(f"latency drifted: p50 {first:.1f} -> {last:.1f} ms (mean of the first / last 3 windows)")
        return out


def soak(frames: int, rate: float, warmup: int = 100, window: int = 250, workdir: Path | None = None,
         frame: dict[str, np.ndarray] | None = None, depth: int = 10) -> SoakResult:
    """Run the soak with ``frame`` (default: the small one) and return its figures (raises AssertionError if
    the node dies). ``depth``: KEEP_LAST depth of this script's publishers and of the node's inputs
    (``qos_depth``); a stall longer than ``depth`` sets makes DDS drop samples, reported lost when the
    writer's history overflows, not reported at all when the node's reader history does."""
    from conftest import next_domain_id

    from lumde_depth.ros import convert

    frame = soak_frame("small")[0] if frame is None else frame
    workdir = Path(workdir or tempfile.mkdtemp(prefix="lumde_soak_"))
    params = {"model": str(harness.save_student(workdir / "student.pt")), "backend": "torch", "device": "cpu",
              "T_cam_lidar": frame["T"].ravel(), "publish_colored": False, "diagnostics_period": 0.5,
              "threads": 1, "qos_depth": depth}
    live = harness.LiveNode(workdir, params, next_domain_id(), frame, history=depth)
    messages = live.good_set()
    got = live.listener.got["depth/image"]
    result = SoakResult(dict.fromkeys(harness.TOPICS, 0), {}, 0)
    period = 1.0 / rate
    try:
        start = time.monotonic()
        latencies: list[float] = []
        for i in range(warmup + frames):
            live.send(*messages, stamp=time.time_ns())
            live.listener.spin_until(lambda: False, max(0.0, start + (i + 1) * period - time.monotonic()))
            now = time.time_ns()
            latencies += [(now - convert.stamp_to_ns(m.header.stamp)) / 1e6 for m in got]
            result.depth_received += len(got)
            got.clear()   # keep no messages: this process's memory must not grow either
            if i >= warmup and (i + 1 - warmup) % window == 0:
                result.rss_mb.append(rss_mb(live.proc.pid))
                result.latency_p50_ms.append(float(np.percentile(latencies, 50)) if latencies else float("nan"))
                latencies = []
            elif i + 1 == warmup:
                latencies = []
        result.seconds, result.sent = time.monotonic() - start, dict(live.sent)
        live.delivered(DELIVERY_TIMEOUT_S)   # what is still missing after it was overwritten unread in DDS
        live.listener.spin_until(lambda: False, 2.0)
        result.depth_received += len(got)
        live.settle()
        diag = live.diag()
        result.counters, result.unaccounted = harness.counts(diag), harness.unaccounted(diag)
        assert live.proc.poll() is None, "the node died"
    finally:
        live.close()
    return result


def _per_topic(c: dict[str, int], pattern: str) -> str:
    return " / ".join(str(c.get(pattern.format(topic), 0)) for topic in harness.TOPICS)


def report(result: SoakResult, args: argparse.Namespace, frame: dict[str, np.ndarray], source: str) -> str:
    c = result.counters
    sync = "sync " + "+".join(harness.TOPICS)
    rss_first, rss_last = np.mean(result.rss_mb[:3]), np.mean(result.rss_mb[-3:])
    rows = [("sets sent (image / camera_info / points messages each)", result.sets_sent),
            ("received by the node (image / camera_info / points)", _per_topic(c, "received: {}")),
            ("reported lost by DDS (image / camera_info / points)", _per_topic(c, "lost by DDS: {}")),
            ("matched into sets by the synchronizer (image / camera_info / points)",
             _per_topic(c, sync + ": {} matched")),
            ("evicted unmatched from its queues", _per_topic(c, sync + ": {} evicted")),
            ("pending in its queues at the end", _per_topic(c, sync + ": {} pending")),
            ("synchronized sets", c["synchronized sets"]),
            ("processed and published", c["processed"]),
            ("dropped by the newest-frame policy", c["dropped (replaced before processing)"]),
            ("bad frames", c["bad frames"]), ("depth images received here", result.depth_received),
            ("unaccounted messages (sent - lost - received, per input)",
             " / ".join(str(result.delivery_gaps()[t]) for t in harness.TOPICS)),
            ("accounting identities broken at the node", len(result.unaccounted)),
            ("node RSS after warm-up, mean of the first 3 -> last 3 windows (MB)",
             f"{rss_first:.1f} -> {rss_last:.1f} ({100 * result.rss_growth:+.2f} %)"),
            ("node RSS per window (MB)", ", ".join(f"{v:.1f}" for v in result.rss_mb)),
            ("latency p50 per window (ms)", ", ".join(f"{v:.1f}" for v in result.latency_p50_ms)),
            ("wall time (s)", f"{result.seconds:.0f}")]
    problems = result.problems()
    height, width = frame["rgb"].shape[:2]
    input_h, input_w = harness.STUDENT_INPUT_SIZE
    transport = ("shared memory (config/fastdds_large_messages.xml)" if args.large_messages_profile
                 else "default transports")
    lines = [f"`.venv/bin/python bench/soak.py --size {args.size} --frames {args.frames} --rate {args.rate} "
             f"--depth {args.depth}{' --large-messages-profile' * args.large_messages_profile}` "
             f"({time.strftime('%Y-%m-%d')}); {machine()}; {platform.platform()}; "
             f"load average {os.getloadavg()[0]:.1f} at the end.",
             f"Size `{args.size}`: input {width}x{height} rgb8 + {len(frame['points']):,}-point cloud ({source}), "
             f"reliable, KEEP_LAST {args.depth} on both sides, Fast DDS {transport}, "
             f"torch CPU backend, cdspn x32 (random init) at "
             f"{input_w}x{input_h}, 1 thread, {args.warmup} warm-up sets, windows of {args.window} sets.", "",
             "| figure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
             "Result: " + ("PASS (every message and set accounted for, memory and latency flat)" if not problems
                           else "FAIL: " + "; ".join(problems))]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("small", "kitti"), default="small",
                        help="small: 320x96 + 20k points; kitti: 1242x375 + ~120k points (the real KITTI object "
                             "frame when ../shared/data has it, else a generated one)")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--depth", type=int, default=10,
                        help="KEEP_LAST depth of the publishers here and of the node's inputs (qos_depth)")
    parser.add_argument("--large-messages-profile", action="store_true",
                        help="run both processes with config/fastdds_large_messages.xml (shared memory), limited "
                             "to loopback: KITTI-sized messages otherwise travel as fragmented UDP")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args()
    if args.large_messages_profile:
        harness.use_large_messages_profile()
    frame, source = soak_frame(args.size)
    result = soak(args.frames, args.rate, args.warmup, args.window, frame=frame, depth=args.depth)
    text = report(result, args, frame, source)
    print(text)
    if not args.no_doc:
        write_section("soak" if args.size == "small" else f"soak_{args.size}", text, DOC)
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
