"""Synthetic data generation speed: ``.venv/bin/python bench/synth.py [--frames 200] [--quick]``.

Target (issue "Data"): 200 full-resolution KITTI frames (1242x375 camera + 64-beam LiDAR, files
written) in under 2 minutes with 2 worker processes on a 2-core machine. Rows, in one run: rendering
alone in this process, then the kitti_dc layout with one and with two workers. Writes section
``synth`` of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, write_section  # noqa: E402
from lumde_depth.data.synth import Generator, SynthConfig, generate  # noqa: E402

def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _row(name: str, frames: int, workers: int, seconds: float, cpu: float, density: float | None) -> dict:
    return {"name": name, "frames": frames, "workers": workers, "seconds": seconds, "fps": frames / seconds,
            "cpu": cpu / frames, "density": density}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames of the target run (default 200)")
    parser.add_argument("--quick", action="store_true", help="20 frames, a quick check (not the target)")
    args = parser.parse_args()
    frames = 20 if args.quick else args.frames
    load_before = os.getloadavg()[0]
    rows = []

    gen = Generator(SynthConfig(frames=6, sequences=1, seed=0), Path("unused"))
    gen.render(0, 0)  # warm-up: scene building, lattice tables
    started, cpu = time.perf_counter(), _cpu_seconds()
    for index in range(1, 6):
        gen.render(0, index)
    rows.append(_row("render only (camera + LiDAR + projection), in process", 5, 1,
                     time.perf_counter() - started, _cpu_seconds() - cpu, None))

    with tempfile.TemporaryDirectory(prefix="lumde_synth_bench_") as tmp:
        for workers, count in ((1, max(4, frames // 5)), (2, frames)):
            config = SynthConfig(frames=count, sequences=2, seed=0, workers=workers, layout="kitti_dc")
            started, cpu = time.perf_counter(), _cpu_seconds()
            summary = generate(config, Path(tmp) / f"w{workers}", progress=False)
            rows.append(_row("render + write kitti_dc (raw images, .bin scans, OXTS, depth PNGs)", count, workers,
                             time.perf_counter() - started, _cpu_seconds() - cpu, summary["density"]))
    load_after = os.getloadavg()[0]

    target = rows[-1]
    lines = ["| run | frames | workers | wall (s) | frames/s | CPU s/frame | projected LiDAR px |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        density = "" if r["density"] is None else f"{100 * r['density']:.2f}%"
        lines.append(f"| {r['name']} | {r['frames']} | {r['workers']} | {r['seconds']:.1f} | {r['fps']:.2f} | "
                     f"{r['cpu']:.2f} | {density} |")
    wall_200 = 200 / target["fps"]
    cpu_200 = 200 * target["cpu"] / target["workers"]
    text = "\n".join([
        "## Synthetic data generation (`lumde synth`)",
        "",
        f"Command: `.venv/bin/python bench/synth.py{' --quick' if args.quick else ''}`. Machine: {machine()}; "
        f"load average {load_before:.1f} before, {load_after:.1f} after (other jobs share the cores, so wall "
        "times stretch with the load; CPU time does not). Resolution 1242x375 (KITTI camera 2) and a "
        "64 x 2000-ray LiDAR sweep; backend numpy (CPU), multiprocessing over frames (fork).",
        "",
        *lines,
        "",
        f"200 frames with {target['workers']} workers: **{wall_200:.0f} s** wall at the measured rate; "
        f"**{cpu_200:.0f} s** on {target['workers']} otherwise idle cores (CPU time / workers). "
        f"Target: 120 s.",
    ])
    print(text)
    write_section("synth", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
