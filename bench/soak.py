"""Soak: thousands of frames replayed through the live node; nothing unaccounted, no memory growth, no latency drift.

One node process (real rclpy, loopback DDS, its own domain) and this script publishing synchronized
image + camera_info + cloud sets at --rate (reliable) and listening to depth/image and /diagnostics.
After --warmup sets, every --window sets it samples the node's resident memory (/proc VmRSS) and the
end-to-end latency of the depth images that arrived in that window (arrival here minus image stamp).

Checks: sets sent = images the node received (+ any DDS reports lost) = sets synchronized (the sync
slop 0.05 s must stay below half the frame period, or neighbouring sets can be mis-paired and their
leftovers never synchronize); synchronized = processed + dropped + bad; depth images here = processed;
RSS after warm-up grows < 5 % and the latency p50 stays < 1.5x (+5 ms), comparing the means of the
first and last three windows. Writes the ``soak`` section of docs/reliability.md.

    .venv/bin/python bench/soak.py                        # 3000 sets at 96x320, 10 Hz (KITTI's rate)
    .venv/bin/python bench/soak.py --frames 300 --no-doc  # quick look
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test"), str(ROOT / "bench")]

from _report import machine, write_section  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class SoakResult:
    sent: int
    counters: dict[str, int]
    depth_received: int
    rss_mb: list[float] = field(default_factory=list)        # per window after warm-up
    latency_p50_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rss_growth(self) -> float:
        """Mean RSS of the last three windows over the first three, minus 1 (one window alone moves by
        +-3 % as the allocator returns and takes pages; a leak shows as a trend)."""
        return float(np.mean(self.rss_mb[-3:]) / np.mean(self.rss_mb[:3]) - 1.0)

    def problems(self) -> list[str]:
        c = self.counters
        out = []
        if c["received: image"] + c["lost by DDS: image"] != self.sent:
            out.append(f"sent {self.sent} sets but the node received {c['received: image']} images "
                       f"(+{c['lost by DDS: image']} reported lost)")
        if c["synchronized sets"] != c["received: image"]:
            out.append(f"{c['received: image'] - c['synchronized sets']} received images never synchronized")
        if c["synchronized sets"] != c["processed"] + c["dropped (replaced before processing)"] + c["bad frames"]:
            out.append(f"unaccounted sets: {c}")
        if self.depth_received != c["processed"]:
            out.append(f"node processed {c['processed']} but {self.depth_received} depth images arrived")
        if self.rss_growth >= 0.05:
            out.append(f"resident memory grew {100 * self.rss_growth:.1f} % after warm-up")
        first, last = np.mean(self.latency_p50_ms[:3]), np.mean(self.latency_p50_ms[-3:])
        if last > 1.5 * first + 5.0:
            out.append(f"latency drifted: p50 {first:.1f} -> {last:.1f} ms (mean of the first / last 3 windows)")
        return out


def soak(frames: int, rate: float, warmup: int = 100, window: int = 250, workdir: Path | None = None) -> SoakResult:
    """Run the soak and return its figures (raises AssertionError if the node dies)."""
    import test_reliability_node as live_mod
    from lumde_depth.ros import convert

    workdir = Path(workdir or tempfile.mkdtemp(prefix="lumde_soak_"))
    params = {"model": str(live_mod.save_student(workdir / "student.pt")), "backend": "torch", "device": "cpu",
              "T_cam_lidar": live_mod.FRAME["T"].ravel(), "publish_colored": False, "diagnostics_period": 0.5,
              "threads": 1, "qos_depth": 10}
    live = live_mod.LiveNode(workdir, params)
    image, info, cloud = live_mod.good_set()
    arrivals: list[tuple[int, int]] = []   # (stamp, arrival ns)
    got = live.listener.got["depth/image"]
    result = SoakResult(0, {}, 0)
    period = 1.0 / rate
    try:
        start = time.monotonic()
        latencies: list[float] = []
        for i in range(warmup + frames):
            live.send(image, info, cloud, stamp=time.time_ns())
            result.sent += 1
            live.listener.spin_until(lambda: False, max(0.0, start + (i + 1) * period - time.monotonic()))
            now = time.time_ns()
            arrivals += [(convert.stamp_to_ns(m.header.stamp), now) for m in got]
            latencies += [(now - convert.stamp_to_ns(m.header.stamp)) / 1e6 for m in got]
            result.depth_received += len(got)
            got.clear()   # keep no messages: this process's memory must not grow either
            if i >= warmup and (i + 1 - warmup) % window == 0:
                result.rss_mb.append(rss_mb(live.proc.pid))
                result.latency_p50_ms.append(float(np.percentile(latencies, 50)) if latencies else float("nan"))
                latencies = []
            elif i + 1 == warmup:
                latencies = []
        result.seconds = time.monotonic() - start
        live.listener.spin_until(lambda: False, 2.0)
        result.depth_received += len(got)
        live.settle()
        keys = ("received: image", "received: camera_info", "received: points", "lost by DDS: image",
                "lost by DDS: camera_info", "lost by DDS: points", "synchronized sets", "processed",
                "dropped (replaced before processing)", "bad frames")
        result.counters = {k: live.count(k) for k in keys}
        assert live.proc.poll() is None, "the node died"
    finally:
        live.close()
    return result


def report(result: SoakResult, args: argparse.Namespace) -> str:
    from test_reliability_node import FRAME, HEIGHT, INPUT_SIZE, WIDTH

    c = result.counters
    dropped = c["dropped (replaced before processing)"]
    rss_first, rss_last = np.mean(result.rss_mb[:3]), np.mean(result.rss_mb[-3:])
    rows = [("sets sent", result.sent),
            ("image / camera_info / points received by the node",
             f"{c['received: image']} / {c['received: camera_info']} / {c['received: points']}"),
            ("reported lost by DDS (image / camera_info / points)",
             f"{c['lost by DDS: image']} / {c['lost by DDS: camera_info']} / {c['lost by DDS: points']}"),
            ("synchronized", c["synchronized sets"]),
            ("processed and published", c["processed"]),
            ("dropped by the newest-frame policy", dropped),
            ("bad frames", c["bad frames"]), ("depth images received here", result.depth_received),
            ("unaccounted (received - processed - dropped - bad)",
             c["received: image"] - c["processed"] - dropped - c["bad frames"]),
            ("node RSS after warm-up, mean of the first 3 -> last 3 windows (MB)",
             f"{rss_first:.1f} -> {rss_last:.1f} ({100 * result.rss_growth:+.2f} %)"),
            ("node RSS per window (MB)", ", ".join(f"{v:.1f}" for v in result.rss_mb)),
            ("latency p50 per window (ms)", ", ".join(f"{v:.1f}" for v in result.latency_p50_ms)),
            ("wall time (s)", f"{result.seconds:.0f}")]
    problems = result.problems()
    lines = [f"`.venv/bin/python bench/soak.py --frames {args.frames} --rate {args.rate}` "
             f"({time.strftime('%Y-%m-%d')}); {machine()}; {platform.platform()}.",
             f"Input {WIDTH}x{HEIGHT} rgb8 + {len(FRAME['points']) // 1000}k-point cloud (reduced from KITTI's "
             f"1242x375 / 120k so 3,000 sets fit a CI-sized run), torch CPU backend, cdspn x32 (random init) at "
             f"{INPUT_SIZE[1]}x{INPUT_SIZE[0]}, 1 thread, {args.warmup} warm-up sets, "
             f"windows of {args.window} sets.", "",
             "| figure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
             "Result: " + ("PASS (every set accounted for, memory and latency flat)" if not problems
                           else "FAIL: " + "; ".join(problems))]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args()
    result = soak(args.frames, args.rate, args.warmup, args.window)
    text = report(result, args)
    print(text)
    if not args.no_doc:
        write_section("soak", text, DOC)
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
