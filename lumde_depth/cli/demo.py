"""``lumde demo --out DIR``: a synthetic drive through kitti2bag and the node's pipeline, with pictures and metrics."""
from __future__ import annotations

import argparse
import sys
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole product on a synthetic drive: bag, depth, pictures, metrics",
        description="Make a short synthetic KITTI-like drive, convert it to a ROS 2 bag, run the node's depth "
                    "pipeline over it with the model and with the classical IP-Basic backend (offline, or with "
                    "--live the real node over DDS), and write per-frame pictures (camera, LiDAR, dense depth, "
                    "error map, coloured cloud) and a KITTI metrics table (metrics.json, metrics.md) to --out.")
    p.add_argument("--out", required=True, help="output folder (new, empty, or a previous demo's)")
    p.add_argument("--frames", type=int, default=20, help="frames of the drive (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the drive (default 0)")
    p.add_argument("--model", default="", help="model file (.pt or .onnx); default: the shipped student")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime", "classical"),
                   help="backend of the model (default auto); the classical row is always added")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--camera-scale", type=float, default=1.0,
                   help="image size relative to KITTI's 1242x375 (default 1.0; smaller is faster)")
    p.add_argument("--live", action="store_true",
                   help="run the real lumde_depth_node and lumde bag play over DDS (loopback) instead of bag process")
    p.add_argument("--rate", type=float, default=0.5, help="--live: playback speed factor (default 0.5)")
    p.add_argument("--domain-id", type=int, default=-1, help="--live: ROS_DOMAIN_ID (default: from the process id)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lumde_depth.config import from_dict
    from lumde_depth.ros.demo import DemoConfig, DemoError, run_demo

    config = from_dict(DemoConfig, {"frames": args.frames, "seed": args.seed, "model": args.model,
                                    "backend": args.backend, "device": args.device,
                                    "camera_scale": args.camera_scale, "live": args.live, "rate": args.rate,
                                    "domain_id": args.domain_id, "progress": not args.no_progress})
    started = time.perf_counter()
    try:
        result = run_demo(config, args.out)
    except (DemoError, FileNotFoundError, ValueError) as exc:
        print(f"lumde demo: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - started:.0f} s: {len(result.pictures)} pictures in {result.out} "
          f"(frame_XXXX.png, cloud_XXXX.png), metrics.json, metrics.md")
    return 0
