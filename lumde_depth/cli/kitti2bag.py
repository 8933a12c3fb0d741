"""``lumde kitti2bag DRIVE OUT``: a KITTI raw drive folder -> ROS 2 bag (kitti2bag topics, MCAP or sqlite3)."""
from __future__ import annotations

import argparse
import sys

from lumde_depth.ros.bag_io import STORAGES, BagError
from lumde_depth.ros.kitti2bag import CAMERAS, kitti2bag


def _run(args: argparse.Namespace) -> int:
    try:
        summary = kitti2bag(args.drive, args.out, storage=args.storage,
                            cameras=tuple(args.cameras) if args.cameras else None, progress=not args.no_progress)
    except BagError as exc:
        print(f"lumde kitti2bag: {exc}", file=sys.stderr)
        return 1
    seconds = (summary.end_ns - summary.start_ns) / 1e9
    print(f"wrote {summary.out} ({args.storage}, {sum(summary.counts.values())} messages, {seconds:.1f} s)")
    for topic, count in sorted(summary.counts.items()):
        print(f"  {topic:45s} {count:6d}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kitti2bag", help="convert a KITTI raw drive into a ROS 2 bag",
        description="Convert a KITTI raw drive (image_0X, velodyne_points, oxts, ../calib_*.txt) into a ROS 2 bag "
                    "with kitti2bag's topic names and frames, stamps from the timestamps files and /tf_static.")
    parser.add_argument("drive", help="drive folder, e.g. 2011_09_26/2011_09_26_drive_0001_sync")
    parser.add_argument("out", help="bag folder to create (must not exist)")
    parser.add_argument("--storage", choices=STORAGES, default="mcap", help="bag storage (default: mcap)")
    parser.add_argument("--cameras", nargs="+", choices=tuple(CAMERAS), metavar="image_0X",
                        help="camera folders to include (default: every one present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)
