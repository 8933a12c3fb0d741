"""``lumde synth``: write synthetic KITTI-like drives (raw or depth-completion layout)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lumde_depth.config import load


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth", help="generate synthetic KITTI-like drives",
        description="Procedural street scenes ray-cast with KITTI's camera and a 64-beam LiDAR, written in the "
                    "KITTI raw or depth-completion layout (loadable with build_dataset('kitti_raw'|'kitti_dc')). "
                    "The same seed gives byte-identical files. Other rigs (image sizes, LiDAR patterns and ranges, "
                    "mountings, scan artefacts, camera realism, a random rig per drive: --set rig=random) are "
                    "keys of --set (README, section Data).")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--frames", type=int, help="frames in total, spread over the sequences (default 20)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--layout", choices=("kitti_raw", "kitti_dc"), help="file layout (default kitti_dc)")
    p.add_argument("--sequences", type=int, help="number of drives (default 2; kitti_dc puts the last in val)")
    p.add_argument("--workers", type=int, help="processes (default 2)")
    p.add_argument("--preview", nargs="?", const="", metavar="PNG",
                   help="also write a picture of the first frame (default OUT/preview.png)")
    p.add_argument("--config", type=Path, help="yaml file of SynthConfig keys (see lumde_depth/data/synth/generate.py)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set lidar.range_noise=0.03 (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lumde_depth.data.synth.generate import Generator, SynthConfig, generate
    from lumde_depth.data.synth.preview import save_preview
    from lumde_depth.data.synth.writers import selection_size

    flags = {"frames": args.frames, "seed": args.seed, "layout": args.layout, "sequences": args.sequences,
             "workers": args.workers}
    overrides = list(args.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    config = load(SynthConfig, args.config, overrides)
    started = time.perf_counter()
    summary = generate(config, args.out)
    elapsed = time.perf_counter() - started
    print(f"wrote {int(summary['frames'])} frame(s) ({config.layout}, {config.sequences} sequences) to {args.out} "
          f"in {elapsed:.1f} s; {summary['points']:.0f} LiDAR points and {100 * summary['density']:.2f}% "
          f"projected pixels per frame on average")
    if summary["selection_frames"]:
        height, width = selection_size(config.camera_scale)
        scaled = (f", KITTI's 1216x352 scaled by camera_scale {config.camera_scale:g}"
                  if config.camera_scale != 1 else "")
        print(f"{args.out / 'depth_selection' / 'val_selection_cropped'}: {int(summary['selection_frames'])} "
              f"frame(s) of the val drives cropped to {width}x{height}{scaled} (image, velodyne_raw, "
              f"groundtruth_depth, intrinsics with the shifted K)")
    if args.preview is not None:
        path = Path(args.preview) if args.preview else args.out / "preview.png"
        save_preview(path, Generator(config, args.out).render(0, 0))
        print(f"preview: {path}")
    return 0
