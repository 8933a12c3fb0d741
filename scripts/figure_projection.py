"""Draw a real KITTI LiDAR scan projected onto its camera image, coloured by depth.

Run: ``.venv/bin/python scripts/figure_projection.py [--frame 000003] [--out docs/images/kitti_projection.png]``.
Reads ``kitti_object/training/{image_2,velodyne,calib}`` from ../shared/data (or
``$LUMDE_SHARED_DATA``), projects with :func:`lumde_depth.geometry.project_to_pixels`, and writes a
PNG: the darkened photo with each LiDAR return as a 3x3 dot (nearest wins where dots overlap) in the
turbo colour map on log depth (red near, blue far), and a labelled colour bar.
Data: KITTI (Geiger et al.), CC BY-NC-SA 3.0.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lumde_depth.geometry import project_to_pixels, read_kitti_object_calib, splat_nearest  # noqa: E402
from lumde_depth.viz import colorize, colour_bar  # noqa: E402
from lumde_depth.data.depth_io import read_velodyne_bin  # noqa: E402

NEAR, FAR = 3.0, 80.0
BAR_HEIGHT = 28


def dots(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, height: int, width: int,
         radius: int = 1) -> np.ndarray:
    """Depth map with every point grown to a (2r+1)^2 square, nearest point winning on overlaps."""
    offsets = np.arange(-radius, radius + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
    rows = (rows[:, None] + dr).ravel()
    cols = (cols[:, None] + dc).ravel()
    zz = np.repeat(z, dr.size)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    return splat_nearest(rows[inside], cols[inside], zz[inside], height, width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame", default="000003", help="KITTI object training frame id")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("LUMDE_SHARED_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "kitti_projection.png")
    args = parser.parse_args(argv)
    root = args.data / "kitti_object" / "training"
    image_path = root / "image_2" / f"{args.frame}.png"
    if not image_path.is_file():
        print(f"no KITTI frame at {image_path}: pass --data pointing at the shared data folder", file=sys.stderr)
        return 1
    image = np.asarray(Image.open(image_path).convert("RGB"))
    height, width = image.shape[:2]
    calib = read_kitti_object_calib(root / "calib" / f"{args.frame}.txt", image_size=(width, height))
    scan = read_velodyne_bin(root / "velodyne" / f"{args.frame}.bin")
    rows, cols, z, _ = project_to_pixels(scan, calib.T_cam_lidar, calib.P, width, height)
    depth = dots(rows, cols, z, height, width)
    picture = (image * 0.55).astype(np.uint8)
    hit = depth > 0
    picture[hit] = colorize(depth, NEAR, FAR)[hit]
    canvas = Image.new("RGB", (width, height + BAR_HEIGHT))
    canvas.paste(Image.fromarray(picture), (0, 0))
    canvas.paste(Image.fromarray(colour_bar(width, NEAR, FAR, ticks=(3, 5, 10, 20, 40, 80), height=BAR_HEIGHT)),
                 (0, height))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"{args.out}: {len(z):,} of {len(scan):,} points in view, "
          f"{z.min():.1f}-{z.max():.1f} m, {args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
