"""Pictures for people: depth colour maps, error maps, labelled panels, colour bars, point-cloud views.

The one place the package draws images (the node's ``depth/colored``, ``lumde synth --preview``,
``lumde demo``, the figure scripts). numpy + Pillow only, no lumde_depth imports, so every layer can
use it. Conventions:

- depth: the turbo colour map (Mikhailov, Google 2019) on *log* depth, ``near`` (and closer) red,
  ``far`` (and beyond) dark blue; log spreads the near range, where detail matters. Invalid depth
  (0, negative, NaN) is black.
- error: the KITTI devkit's error image. The normalised error is ``|pred - gt| / max(3 m, 5% of
  gt)`` (the stereo benchmark's outlier rule: 1 = an outlier), drawn in 10 log-spaced bins from dark
  blue (< 1/16) to dark red (>= 16). Pixels without ground truth are black.
- cloud views: orthographic renders of points in the camera optical frame (x right, y down, z
  forward), nearest point to the viewer winning per pixel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Turbo's published polynomial fit (per channel, powers 0..5), sampled at 256 levels.
_TURBO_COEFFS = np.array([[0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
                          [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
                          [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973]])
TURBO = (np.clip(_TURBO_COEFFS @ np.linspace(0.0, 1.0, 256)[None, :] ** np.arange(6)[:, None], 0.0, 1.0).T
         * 255.0 + 0.5).astype(np.uint8)
"""(256, 3) uint8 turbo colour map: index 0 dark blue, 255 dark red."""

ERROR_EDGES = np.array([1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, 16.0])
"""Lower edges of the error bins 1..9 (bin 0 starts at 0), in units of ``max(3 m, 5% of gt)``."""
ERROR_COLOURS = np.array([[49, 54, 149], [69, 117, 180], [116, 173, 209], [171, 217, 233], [224, 243, 248],
                          [254, 224, 144], [253, 174, 97], [244, 109, 67], [215, 48, 39], [165, 0, 38]],
                         dtype=np.uint8)
"""The KITTI devkit's 10 error colours, blue (small) to red (large)."""
ERROR_ABS, ERROR_REL = 3.0, 0.05

BACKGROUND = (0, 0, 0)
GRID = (70, 70, 70)
TEXT = (255, 255, 255)


def font(size: int = 14) -> ImageFont.ImageFont:
    """Pillow's bundled scalable font at ``size`` pixels (the bitmap default where FreeType is absent)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError):   # Pillow < 10.1 or built without FreeType
        return ImageFont.load_default()


def _valid(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def _check_range(near: float, far: float) -> None:
    if not 0 < near < far:
        raise ValueError(f"colour range must satisfy 0 < near < far, got near={near}, far={far}")


def colorize(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """``(..., 3)`` uint8 turbo colours of ``depth`` (metres, any shape): log scale, ``near`` (and
    closer) red, ``far`` (and beyond) dark blue, invalid (0 / negative / NaN) black."""
    _check_range(near, far)
    depth = np.asarray(depth)
    valid = _valid(depth)
    log_far = np.log(far)
    log_d = np.log(np.where(valid, depth, far))
    idx = np.clip((log_far - log_d) * (255.0 / (log_far - np.log(near))), 0, 255).astype(np.uint8)
    out = TURBO[idx]
    out[~valid] = 0
    return out


def normalised_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``|pred - gt| / max(3 m, 5% of gt)`` where ``gt`` is valid, NaN elsewhere. A missing
    prediction (0 / NaN) counts as depth 0, as the metrics count it."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape: resize the prediction first")
    has_gt = _valid(gt)
    err = np.abs(np.where(_valid(pred), pred, 0.0) - np.where(has_gt, gt, 0.0))
    return np.where(has_gt, err / np.maximum(ERROR_ABS, ERROR_REL * np.where(has_gt, gt, 0.0)), np.nan)


def error_colours(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 KITTI devkit error image of ``pred`` against ``gt`` (black: no ground truth)."""
    n = normalised_error(pred, gt)
    out = ERROR_COLOURS[np.digitize(np.nan_to_num(n, nan=0.0), ERROR_EDGES)]
    out[np.isnan(n)] = 0
    return out


def overlay_points(rgb: np.ndarray, sparse: np.ndarray, near: float, far: float, radius: int = 1,
                   dim: float = 0.35) -> np.ndarray:
    """Sparse depth drawn over the dimmed grey camera image, each point a ``(2r+1)^2`` dot coloured by
    depth (nearest point wins where dots overlap), so a LiDAR scan stays readable when scaled down."""
    rgb, sparse = np.asarray(rgb), np.asarray(sparse, np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[:2] != sparse.shape:
        raise ValueError(f"need rgb (H, W, 3) and sparse (H, W) of the same size, got {rgb.shape}, {sparse.shape}")
    from scipy.ndimage import minimum_filter

    depth = np.where(_valid(sparse), sparse, np.inf)
    if radius > 0:
        depth = minimum_filter(depth, size=2 * radius + 1, mode="constant", cval=np.inf)
    out = np.repeat((rgb.mean(axis=2, keepdims=True) * dim).astype(np.uint8), 3, axis=2)
    hit = np.isfinite(depth)
    out[hit] = colorize(depth[hit], near, far)
    return out


def label(image: np.ndarray, text: str, size: int = 14) -> np.ndarray:
    """A copy of ``image`` with ``text`` in its top-left corner, white on a dark box (readable on any picture)."""
    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    f = font(size)
    _, _, right, bottom = draw.textbbox((4, 2), text, font=f)
    draw.rectangle((0, 0, right + 4, bottom + 3), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=TEXT, font=f)
    return np.asarray(picture)


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` scaled by ``scale`` (bilinear; colour pictures, not data)."""
    if scale == 1.0:
        return np.asarray(image)
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.BILINEAR))


def grid(panels: Sequence[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Panels (``(H, W, 3)`` uint8, all the same size) laid out row by row, ``columns`` per row,
    ``gap`` black pixels between them."""
    if not panels:
        raise ValueError("grid needs at least one panel")
    shapes = {p.shape for p in panels}
    if len(shapes) != 1:
        raise ValueError(f"grid panels must share one size, got {sorted(shapes)}")
    h, w = panels[0].shape[:2]
    rows = -(-len(panels) // columns)
    out = np.zeros((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), np.uint8)
    for k, panel in enumerate(panels):
        r, c = divmod(k, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = panel
    return out


def stack(images: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """Pictures of any widths one under the other, left-aligned, on black."""
    width = max(im.shape[1] for im in images)
    out = np.zeros((sum(im.shape[0] for im in images) + gap * (len(images) - 1), width, 3), np.uint8)
    y = 0
    for im in images:
        out[y:y + im.shape[0], :im.shape[1]] = im
        y += im.shape[0] + gap
    return out


def _bar(colour_of: Callable[[np.ndarray], np.ndarray], ticks: Sequence[tuple[float, str]], title: str, width: int,
         height: int) -> np.ndarray:
    """``title`` on the left, then a colour strip (``colour_of(fractions)`` -> (n, 3) colours, fraction
    0 at the strip's left end) with tick marks and labels at the fractions in ``ticks``."""
    f = font(max(10, height // 2 - 3))
    picture = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    left = int(draw.textlength(title, font=f)) + 8 if title else 0
    if width - left < 8:
        raise ValueError(f"a colour bar {width} pixels wide has no room for its strip: make it wider")
    strip = height // 2
    colours = colour_of(np.linspace(0.0, 1.0, width - left))
    picture.paste(Image.fromarray(np.repeat(colours[None], strip, axis=0)), (left, 0))
    _, top, _, bottom = draw.textbbox((0, 0), title, font=f)
    draw.text((4, (height - top - bottom) // 2), title, fill=TEXT, font=f)
    for fraction, text in ticks:
        x = left + int(round(fraction * (width - left - 1)))
        draw.line([(x, 0), (x, strip)], fill=TEXT)
        draw.text((min(x + 2, width - draw.textlength(text, font=f) - 2), strip + 1), text, fill=TEXT, font=f)
    return np.asarray(picture)


def colour_bar(width: int, near: float, far: float, ticks: Sequence[float] | None = None, height: int = 28,
               title: str = "depth") -> np.ndarray:
    """``(height, width, 3)`` uint8 depth colour bar from ``near`` (left) to ``far`` (log scale),
    ticks labelled in metres (default: 1-2-5 steps inside the range)."""
    _check_range(near, far)
    if ticks is None:
        ticks = [v for e in range(-2, 5) for v in (10.0 ** e, 2 * 10.0 ** e, 5 * 10.0 ** e) if near <= v <= far]
    span = np.log(far) - np.log(near)
    marks = [((np.log(v) - np.log(near)) / span, f"{v:g} m") for v in ticks]
    return _bar(lambda t: colorize(near * np.exp(t * span), near, far), marks, title, width, height)


def error_bar(width: int, height: int = 28) -> np.ndarray:
    """``(height, width, 3)`` uint8 key of :func:`error_colours`: one block per bin, each labelled with
    its lower edge as an absolute error in metres (valid up to 60 m depth; beyond, 5% of the depth
    replaces 3 m)."""
    blocks = len(ERROR_COLOURS)
    marks = [(k / blocks, f"{ERROR_ABS * e:.2g} m") for k, e in enumerate(ERROR_EDGES, start=1)]
    return _bar(lambda t: ERROR_COLOURS[np.minimum((t * blocks).astype(int), blocks - 1)], marks, "|error|",
                width, height)


def ortho_view(u: np.ndarray, v: np.ndarray, key: np.ndarray, colours: np.ndarray, u_range: tuple[float, float],
               v_range: tuple[float, float], px_per_m: float) -> np.ndarray:
    """Orthographic render: point ``(u, v)`` (metres; ``u`` to the right, ``v`` up) goes to its pixel;
    per pixel the point with the smallest ``key`` (nearest to the viewer) wins. Black background."""
    width = int(np.ceil((u_range[1] - u_range[0]) * px_per_m))
    height = int(np.ceil((v_range[1] - v_range[0]) * px_per_m))
    out = np.zeros((height, width, 3), np.uint8)
    cols = np.floor((u - u_range[0]) * px_per_m).astype(np.int64)
    rows = np.floor((v_range[1] - v) * px_per_m).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height) & np.isfinite(key)
    pixel = rows[inside] * width + cols[inside]
    order = np.lexsort((key[inside], pixel))            # by pixel, then nearest first
    pixel = pixel[order]
    first = np.ones(pixel.size, dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    out.reshape(-1, 3)[pixel[first]] = colours[inside][order][first]
    return out


def _axes(image: np.ndarray, u_range: tuple[float, float], v_range: tuple[float, float], px_per_m: float,
          step: float, title: str) -> np.ndarray:
    """Grid lines every ``step`` metres (drawn under the points), their labels, and a title strip above."""
    height, width = image.shape[:2]
    f = font(12)
    empty = image.max(axis=2) == 0
    lines = np.zeros_like(empty)
    for u in np.arange(np.ceil(u_range[0] / step) * step, u_range[1] + 1e-9, step):
        x = int((u - u_range[0]) * px_per_m)
        lines[:, min(x, width - 1)] = True
    for v in np.arange(np.ceil(v_range[0] / step) * step, v_range[1] + 1e-9, step):
        y = int((v_range[1] - v) * px_per_m)
        lines[min(y, height - 1), :] = True
    out = image.copy()
    out[lines & empty] = GRID
    picture = Image.fromarray(out)
    draw = ImageDraw.Draw(picture)
    for u in np.arange(np.ceil(u_range[0] / step) * step, u_range[1] + 1e-9, step):
        draw.text((int((u - u_range[0]) * px_per_m) + 2, height - 14), f"{u + 0.0:g}", fill=GRID, font=f)
    for v in np.arange(np.ceil(v_range[0] / step) * step, v_range[1] + 1e-9, step):
        draw.text((2, int((v_range[1] - v) * px_per_m) + 1), f"{v + 0.0:g}", fill=GRID, font=f)
    heading = label(np.zeros((18, width, 3), np.uint8), title, 13)
    return stack([heading, np.asarray(picture)], gap=0)


def cloud_views(xyz: np.ndarray, rgb: np.ndarray, forward: tuple[float, float] = (0.0, 60.0),
                lateral: tuple[float, float] = (-20.0, 20.0), up: tuple[float, float] = (-3.0, 7.0),
                px_per_m: float = 10.0, step: float = 10.0) -> np.ndarray:
    """Bird's-eye view above a side view of a coloured cloud in the camera optical frame.

    ``xyz`` ``(..., 3)`` (NaN rows are skipped) and ``rgb`` ``(..., 3)`` uint8 of the same leading
    shape (e.g. an organized cloud). Both views put forward (``z``) to the right: the bird's-eye
    view looks down with the left side (``-x``) at the top, highest point winning; the side view
    looks from the right (``+x``) with up (``-y``, metres above the camera) at the top, the nearest
    point winning. Grid every ``step`` metres (``step / 2`` in the side view).
    """
    xyz, rgb = np.asarray(xyz, np.float64).reshape(-1, 3), np.asarray(rgb).reshape(-1, 3)
    if xyz.shape[0] != rgb.shape[0] or rgb.dtype != np.uint8:
        raise ValueError(f"xyz (..., 3) and uint8 rgb (..., 3) must hold the same points, got {xyz.shape[0]} "
                         f"xyz and {rgb.shape[0]} {rgb.dtype} colours")
    keep = np.isfinite(xyz).all(axis=1)
    x, y, z = xyz[keep].T
    rgb = rgb[keep]
    top = ortho_view(z, -x, y, rgb, forward, (-lateral[1], -lateral[0]), px_per_m)
    side = ortho_view(z, -y, -x, rgb, forward, up, px_per_m)
    top = _axes(top, forward, (-lateral[1], -lateral[0]), px_per_m, step,
                "bird's-eye view (forward ->, left up; m)")
    side = _axes(side, forward, up, px_per_m, step / 2, "side view (forward ->, up; m)")
    return stack([top, side])


def save_png(path: str | Path, image: np.ndarray, optimize: bool = False) -> Path:
    """Write an ``(H, W, 3)`` uint8 picture as PNG (parent folders created). ``optimize`` makes the file
    ~10% smaller at ~10x the time: for pictures that are kept (docs), not for per-frame output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image)).save(path, optimize=optimize)
    return path
