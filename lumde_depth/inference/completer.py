"""``DepthCompleter``: numpy in, numpy out depth completion with a trained student.

Geometry of the network input (the pixel convention of :mod:`lumde_depth.geometry`: the centre of
pixel ``i`` is at coordinate ``i``, so a row of ``W`` pixels spans ``[-0.5, W - 0.5]``):

1. a window of the image is chosen: the whole image (``fit="aspect"``, the default, and
   ``fit="stretch"``), or the largest window with the network's aspect ratio, centred horizontally and
   anchored at the bottom where the LiDAR returns are (``fit="crop"``, KITTI depth-completion style);
2. the network's input size ``(h, w)`` for that image (:meth:`DepthCompleter.network_size`): the model's
   own (``meta["input_size"]``), except with ``fit="aspect"`` for an image whose aspect ratio differs from
   it by more than :data:`ASPECT_TOLERANCE`: then as many pixels at the image's own aspect ratio. Why: a
   network trained on 3.3:1 KITTI frames sees a 1.6:1 DDAD or a 4:3 indoor frame squashed 2-2.5x
   vertically if it is stretched to its own size, every object flattened; at its own aspect ratio the
   network-only error on the real DDAD / indoor frames falls 4-15 % (docs/model_card.md). Monocular
   models keep their own size: without LiDAR their depth cue is the image row (where the ground meets
   the horizon in a KITTI frame), and a stretched image keeps it where they learned it (on the real DDAD,
   PJLab and Argoverse frames the shipped monocular student's AbsRel is 20-50 % worse at the aspect ratio);
3. the window is resized to that size with scale factors
   ``sx = w / W_win``, ``sy = h / H_win``, so ``fx' = fx sx``, ``cx' = (cx - x0 + 0.5) sx - 0.5``
   (:meth:`DepthCompleter.network_K` returns it). The RGB image is resampled bilinearly with
   antialiasing; the sparse depth is *not* interpolated: each valid point moves to the network
   pixel that contains its centre and the nearest point wins (min pooling over valid points only),
   so no depth is invented between a foreground and a background return;
   LiDAR points beyond the model's trained range (``depth_range``) are left out of the network's
   input: the network only sees the depths it was trained on;
4. the network's depth is clipped to the model's ``depth_range`` and resized back onto the window
   (bilinear, same convention, except across depth edges, where the nearest network pixel is kept so
   that edges stay steps: :func:`~lumde_depth.models.fill.edge_aware_upsample`); pixels outside the
   window (``fit="crop"``) are 0 (= no depth);
5. with ``lidar_align`` (the default for completion models), the depth is rescaled to meet the LiDAR
   points at the image's own resolution (:func:`~lumde_depth.models.fill.lidar_align`): pulled to
   the points where they are dense, smooth between them. It restores what the network's reduced
   input resolution blurs and a slowly varying scale error on data unlike the training data. All
   the LiDAR points take part, far ones included, and the result is clipped to the model's range
   extended up to the input's farthest point: LiDAR points beyond the trained range (a 250 m
   LiDAR, a model trained to 90 m) survive completion. Then each pixel is pulled to the LiDAR points
   nearby (3 pixels on a KITTI scan, more on sparser LiDARs: :func:`~lumde_depth.models.fill.snap_radius`)
   that lie on its own surface (:func:`~lumde_depth.models.fill.lidar_snap`, a joint
   bilateral filter of the points guided by the depth): the value gets the sensor's precision at the
   image's full resolution while points across a depth edge are ignored (real KITTI: MAE -21 % / -12 %).

:meth:`DepthCompleter.complete_with_confidence` also returns a per-pixel confidence in [0, 1]
(:mod:`~lumde_depth.inference.confidence`).
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lumde_depth.geometry.intrinsics import crop_intrinsics, resize_sparse_depth, scale_intrinsics
from lumde_depth.inference.backends import (Backend, OnnxBackend, TorchBackend, candidate_backends, fastest,
                                            resolve_device)
from lumde_depth.inference.classical import CLASSICAL_FILLS
from lumde_depth.inference.confidence import depth_confidence
from lumde_depth.inference.frame_pool import IN_TURN, FramePool
from lumde_depth.models.fill import edge_aware_upsample, lidar_align, lidar_snap, snap_radius
from lumde_depth.models.io import SHIPPED, model_file

DEFAULT_MODEL = SHIPPED["shipped"]
DEFAULT_MONO_MODEL = SHIPPED["shipped_mono"]  # camera-only (LUMDE student)
FITS = ("aspect", "stretch", "crop")
ASPECT_TOLERANCE = 1.1
"""Ratio between the image's and the model's aspect ratios up to which ``fit="aspect"`` keeps the model's own
input size (KITTI frames of 1242x375 and 1216x352 run at the trained 621x188)."""
SIZE_MULTIPLE = 8
"""An aspect-preserving input size is rounded to multiples of this (the networks pad to 32 internally)."""


def cache_dir() -> Path:
    """Where models exported on the fly are kept: ``$LUMDE_CACHE`` or ``~/.cache/lumde_depth``."""
    return Path(os.environ.get("LUMDE_CACHE", Path.home() / ".cache" / "lumde_depth")) / "onnx"


class DepthCompleter:
    """Dense depth from an RGB image and sparse LiDAR depth (or from RGB alone, monocular models).

    Build it with :meth:`load`; call :meth:`complete` per frame (:meth:`complete_batch` for the
    cameras of one rig: one network run). ``last_timings`` holds the
    milliseconds spent in ``preprocess``, ``inference`` and ``postprocess`` for the last frame.
    """

    def __init__(self, backend: Backend | None, meta: dict[str, Any], fit: str = "aspect",
                 lidar_align: bool = True, classical: str = "classical") -> None:
        if fit not in FITS:
            raise ValueError(f"unknown fit '{fit}': use one of {list(FITS)}")
        if backend is None and classical not in CLASSICAL_FILLS:
            raise ValueError(f"unknown classical fill '{classical}': use one of {list(CLASSICAL_FILLS)}")
        self.backend = backend
        self.classical = classical if backend is None else None
        self.meta = meta
        self.fit = fit
        self.kind: str = meta.get("kind", "completion")
        self.lidar_align = lidar_align and backend is not None and self.kind == "completion"
        self.depth_range: tuple[float, float] = tuple(float(v) for v in meta.get("depth_range", (0.0, 100.0)))
        self.input_size: tuple[int, int] | None = tuple(meta["input_size"]) if backend is not None else None
        mean = np.asarray(meta.get("rgb_mean", (0.0, 0.0, 0.0)), np.float32).reshape(3, 1, 1)
        std = np.asarray(meta.get("rgb_std", (1.0, 1.0, 1.0)), np.float32).reshape(3, 1, 1)
        self._scale, self._offset = 1.0 / (255.0 * std), -mean / std   # (rgb / 255 - mean) / std
        self.last_timings: dict[str, float] = {}
        self._confidence_ms = 0.0   # of the last _finish
        self.last_batch = 1   # frames in the last network run (complete_batch)

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, path: str | Path | None = None, backend: str = "auto", device: str = "auto", *,
             input_size: tuple[int, int] | None = None, fit: str = "aspect", threads: int = 0,
             warmup: int = 2, lidar_align: bool = True) -> "DepthCompleter":
        """Load a model file (``lumde_depth.models.io``) or an exported ``.onnx`` model.

        ``path=None`` is the shipped student ``lumde_depth/weights/student.pt``. ``backend``:
        ``auto`` | ``torch`` | ``onnxruntime`` | ``classical`` (IP-Basic, no model, ``path`` ignored)
        | ``nearest`` (nearest fill, no model);
        ``auto`` is torch on CUDA, and on CPU the faster of torch and onnxruntime, timed here
        (``meta["auto_timings_ms"]``; see :mod:`~lumde_depth.inference.backends`). With onnxruntime
        a model file is exported once to :func:`cache_dir` (keyed by the file's hash and the input
        size). ``input_size`` ``(h, w)`` overrides the model's ``meta["input_size"]`` (e.g. a
        reduced size for a faster CPU run; with ``fit="aspect"`` its pixel count at the image's aspect
        ratio, see :meth:`network_size`). ``fit``: :data:`FITS`. ``threads`` caps the CPU threads (0 = library default).
        """
        device = resolve_device(device)
        candidates = candidate_backends(backend, device)
        if candidates[0] in CLASSICAL_FILLS:
            return cls(None, {"kind": "completion", "depth_range": [0.0, float("inf")]}, fit=fit, lidar_align=False,
                       classical=candidates[0])
        path = _model_path(path)
        if threads:
            torch.set_num_threads(threads)
        if path.suffix == ".onnx":
            if "onnxruntime" not in candidates:
                raise ValueError(f"{path} is an ONNX model: use backend='onnxruntime' (or 'auto'), "
                                 "or load the .pt model file with the torch backend")
            from lumde_depth.engine.export import read_export_meta

            meta = read_export_meta(path)
            size = _input_size(path, meta, input_size)
            if "dynamic_axes" not in meta and tuple(meta["input_size"]) != size:
                raise ValueError(f"{path} was exported for input size {meta['input_size']} only; it cannot run "
                                 f"at {list(size)}: export it again with --input-size {size[0]} {size[1]}")
            runners: list[Backend] = [OnnxBackend(path, size, threads)]
        else:
            from lumde_depth.engine.profile import takes_sparse
            from lumde_depth.models.io import load_model

            model, meta = load_model(path)
            size = _input_size(path, meta, input_size)
            monocular = not takes_sparse(model)
            meta = {**meta, "kind": "monocular" if monocular else "completion"}
            runners = [TorchBackend(model, size, monocular, device) if name == "torch" else
                       OnnxBackend(_cached_onnx(path, model, {**meta, "input_size": list(size)}), size, threads)
                       for name in candidates]
        meta = {**meta, "input_size": list(size)}
        if len(runners) > 1:
            runner, medians = fastest(runners)
            meta["auto_timings_ms"] = medians
        else:
            runner = runners[0]
        completer = cls(runner, meta, fit=fit, lidar_align=lidar_align)
        completer.warm_up(warmup)
        return completer

    def warm_up(self, runs: int = 2) -> None:
        """Run the network on empty buffers (first runs pay for allocation and graph set-up)."""
        for _ in range(runs if self.backend is not None else 0):
            self.backend.run()

    @property
    def backend_name(self) -> str:
        return self.classical if self.backend is None else self.backend.name

    @property
    def device(self) -> str:
        return "cpu" if self.backend is None else self.backend.device

    # ------------------------------------------------------------------ geometry
    def network_size(self, height: int, width: int) -> tuple[int, int] | None:
        """The network's input size ``(h, w)`` for an image of ``height x width`` (None: no network)."""
        if self.input_size is None or self.fit != "aspect" or not self.backend.any_size or self.kind == "monocular":
            return self.input_size
        net_h, net_w = self.input_size
        if max(width * net_h, height * net_w) <= ASPECT_TOLERANCE * min(width * net_h, height * net_w):
            return self.input_size
        scale = (net_h * net_w / (height * width)) ** 0.5
        return tuple(max(SIZE_MULTIPLE, SIZE_MULTIPLE * round(side * scale / SIZE_MULTIPLE))
                     for side in (height, width))

    def window(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The image window ``(x0, y0, w, h)`` that is resized to the network input."""
        if self.input_size is None or self.fit != "crop":
            return 0, 0, width, height
        net_h, net_w = self.input_size
        if width * net_h > height * net_w:
            win_w = min(width, round(height * net_w / net_h))
            return (width - win_w) // 2, 0, win_w, height
        win_h = min(height, round(width * net_h / net_w))
        return 0, height - win_h, width, win_h

    def network_K(self, K: np.ndarray, height: int, width: int) -> np.ndarray:
        """The intrinsics of the network input for an image of ``height x width`` with ``K``."""
        K = _check_K(K)
        if self.input_size is None:
            return K.copy()
        x0, y0, win_w, win_h = self.window(height, width)
        net_h, net_w = self.network_size(height, width)
        return scale_intrinsics(crop_intrinsics(K, y0, x0), net_w / win_w, net_h / win_h)

    # ------------------------------------------------------------------ per frame
    def complete(self, rgb: np.ndarray, sparse: np.ndarray | None, K: np.ndarray) -> np.ndarray:
        """Dense depth ``(H, W)`` float32 metres (0 = no depth) for ``rgb`` ``(H, W, 3)`` uint8,
        ``sparse`` ``(H, W)`` float32 metres (0 = no point; may be None for monocular models) and
        the 3x3 intrinsics ``K`` of that image."""
        return self._complete(rgb, sparse, K, confidence=False)[0]

    def complete_with_confidence(self, rgb: np.ndarray, sparse: np.ndarray | None,
                                 K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(depth, confidence)``: :meth:`complete`'s depth and a per-pixel confidence ``(H, W)``
        float32 in [0, 1] (0 where there is no depth); the error falls as the confidence rises
        (:mod:`~lumde_depth.inference.confidence`). Costs a few milliseconds more per frame."""
        depth, confidence = self._complete(rgb, sparse, K, confidence=True)
        return depth, confidence

    def complete_batch(self, frames: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray]],
                       confidence: bool = False, pool: FramePool | None = None,
                       then: Callable[[int, np.ndarray, np.ndarray | None], Any] | None = None) -> list[Any]:
        """``(depth, confidence or None)`` of each ``(rgb, sparse, K)`` frame, as :meth:`complete` /
        :meth:`complete_with_confidence` give them, with one network run for all of them (the cameras
        of one rig: every frame is resized to the network's input size for the first frame, so images of any
        size batch).
        With ``pool``, each frame's own work before and after the network run (resizing it into the
        network's input, its depth back onto the image) runs on the pool's threads, frames side by side;
        the results are the same. ``then(item, depth, confidence)``, when given, runs for each frame as soon as
        it is finished, in the thread that finished it (while the other frames may still be running; the
        batch's ``preprocess`` and ``inference`` are in ``last_timings`` by then), and its results are returned
        instead. ``last_timings`` then covers the whole batch, ``last_batch`` is its size."""
        t0 = time.perf_counter()
        sizes = [self._check_inputs(rgb, sparse, K) for rgb, sparse, K in frames]
        each = (pool or IN_TURN).map

        def done(item: int, out: tuple[np.ndarray, np.ndarray | None]) -> Any:
            return out if then is None else then(item, *out)

        if self.backend is None or not frames:
            results = each(lambda item: done(item, self._complete(*frames[item], confidence)), range(len(frames)))
            self.last_timings = {"inference": 1e3 * (time.perf_counter() - t0)}
            self.last_batch = len(frames)
            return results
        self.backend.resize(self.network_size(*sizes[0]))
        self.backend.reserve(len(frames))
        windows = each(lambda item: self._prepare(*frames[item], item), range(len(frames)))
        t1 = time.perf_counter()
        net = self.backend.run_batch(len(frames))
        t2 = time.perf_counter()
        self.last_timings = {"preprocess": 1e3 * (t1 - t0), "inference": 1e3 * (t2 - t1)}
        results = each(lambda item: done(item, self._finish(net[item], frames[item][1], sizes[item], windows[item],
                                                            confidence)), range(len(frames)))
        self.last_timings["postprocess"] = 1e3 * (time.perf_counter() - t2)
        self.last_batch = len(frames)
        return results

    def _complete(self, rgb: np.ndarray, sparse: np.ndarray | None, K: np.ndarray,
                  confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        t0 = time.perf_counter()
        height, width = self._check_inputs(rgb, sparse, K)
        self.last_batch = 1
        if self.backend is None:
            out = CLASSICAL_FILLS[self.classical](sparse)
            t1 = time.perf_counter()
            conf = depth_confidence(torch.from_numpy(out)[None, None])[0, 0].numpy() if confidence else None
            self.last_timings = {"preprocess": 0.0, "inference": 1e3 * (t1 - t0), "postprocess": 0.0,
                                 **({"confidence": 1e3 * (time.perf_counter() - t1)} if confidence else {})}
            return out, conf
        self.backend.resize(self.network_size(height, width))
        window = self._prepare(rgb, sparse, K)
        t1 = time.perf_counter()
        net = self.backend.run()
        t2 = time.perf_counter()
        out, conf = self._finish(net, sparse, (height, width), window, confidence)
        t3 = time.perf_counter()
        self.last_timings = {"preprocess": 1e3 * (t1 - t0), "inference": 1e3 * (t2 - t1),
                             "postprocess": 1e3 * (t3 - t2) - self._confidence_ms,
                             **({"confidence": self._confidence_ms} if confidence else {})}
        return out, conf

    def _finish(self, net: np.ndarray, sparse: np.ndarray | None, size: tuple[int, int],
                window: tuple[int, int, int, int], confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's ``(h, w)`` depth ``net`` -> the image's depth (and confidence): clipped, resized
        onto the window, aligned to the LiDAR, pasted into the image."""
        (height, width), (x0, y0, win_w, win_h) = size, window
        lo, hi = self.depth_range
        up = network = edge_aware_upsample(torch.from_numpy(np.clip(net, lo, hi))[None, None], (win_h, win_w))
        if self.lidar_align:
            window_sparse = np.ascontiguousarray(sparse[y0:y0 + win_h, x0:x0 + win_w], dtype=np.float32)
            ceiling = max(hi, float(window_sparse.max(initial=0.0)))   # far LiDAR points survive the clip
            points = torch.from_numpy(window_sparse)[None, None]
            radius = snap_radius(int(np.count_nonzero(window_sparse)), window_sparse.size)
            up = lidar_snap(lidar_align(network, points, trust_beyond=hi), points, radius).clamp_(lo, ceiling)
        conf, t0 = None, time.perf_counter()
        if confidence:
            conf = self._paste(depth_confidence(up, network if self.lidar_align else None)[0, 0].numpy(),
                               height, width, x0, y0)
        self._confidence_ms = 1e3 * (time.perf_counter() - t0) if confidence else 0.0
        return self._paste(up[0, 0].numpy(), height, width, x0, y0), conf

    @staticmethod
    def _paste(window: np.ndarray, height: int, width: int, x0: int, y0: int) -> np.ndarray:
        """``window`` placed at ``(x0, y0)`` in a zero ``(height, width)`` image (itself if it fills it)."""
        if window.shape == (height, width):
            return np.ascontiguousarray(window)
        out = np.zeros((height, width), np.float32)
        out[y0:y0 + window.shape[0], x0:x0 + window.shape[1]] = window
        return out

    def network_inputs(self, rgb: np.ndarray, sparse: np.ndarray | None, K: np.ndarray) -> dict[str, np.ndarray]:
        """The network's own inputs for a frame, as :meth:`complete` prepares them: ``rgb``
        (1 x 3 x h x w, normalised) and, for completion models, ``sparse`` (1 x 1 x h x w metres);
        copies, e.g. to calibrate a quantized export (:func:`lumde_depth.engine.export.quantize_onnx`)."""
        if self.backend is None:
            raise ValueError("the classical backend has no network: load a model file")
        self.backend.resize(self.network_size(*self._check_inputs(rgb, sparse, K)))
        self._prepare(rgb, sparse, K)
        inputs = {"rgb": self.backend.rgb.copy()}
        if self.kind != "monocular":
            inputs["sparse"] = self.backend.sparse.copy()
        return inputs

    def _prepare(self, rgb: np.ndarray, sparse: np.ndarray | None, K: np.ndarray,
                 item: int = 0) -> tuple[int, int, int, int]:
        """Write the frame's window into item ``item`` of the backend's input buffers (sized by
        ``backend.resize``); returns the window."""
        x0, y0, win_w, win_h = self.window(*rgb.shape[:2])
        self._write_rgb(rgb[y0:y0 + win_h, x0:x0 + win_w], item)
        if self.kind != "monocular":
            net_sparse = self.backend.batch_sparse[item, 0]
            net_sparse[...] = resize_sparse_depth(sparse[y0:y0 + win_h, x0:x0 + win_w], K, self.backend.input_size)[0]
            net_sparse[net_sparse > self.depth_range[1]] = 0.0   # beyond the trained range: alignment only
        return x0, y0, win_w, win_h

    def _check_inputs(self, rgb: np.ndarray, sparse: np.ndarray | None, K: np.ndarray) -> tuple[int, int]:
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got "
                             f"{getattr(rgb, 'shape', type(rgb))} {getattr(rgb, 'dtype', '')}")
        height, width = rgb.shape[:2]
        if sparse is None:
            if self.kind != "monocular":
                raise ValueError("sparse depth is required by a completion model (pass the projected LiDAR "
                                 "depth, or load a monocular model)")
        elif sparse.shape != (height, width):
            raise ValueError(f"sparse depth shape {sparse.shape} differs from the image's {(height, width)}: "
                             "project the LiDAR with the image's size")
        _check_K(K)
        return height, width

    def _write_rgb(self, rgb: np.ndarray, item: int = 0) -> None:
        """The image, resized to the network's input and normalised, into item ``item`` of the rgb buffer.
        Resized with torch's antialiased bilinear on uint8 (its SIMD path: 4x faster than PIL's, 1.2 against
        5.4 ms for a KITTI frame), which is within one grey level of :func:`~lumde_depth.geometry.resize_image`."""
        chw = rgb.transpose(2, 0, 1)
        if rgb.shape[:2] != self.backend.input_size:
            image = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy()).permute(2, 0, 1)[None]
            chw = F.interpolate(image, size=self.backend.input_size, mode="bilinear", antialias=True,
                                align_corners=False)[0].numpy()
        buf = self.backend.batch_rgb[item]
        np.multiply(chw, self._scale, out=buf)
        buf += self._offset


# ---------------------------------------------------------------------- helpers
def _check_K(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a finite 3x3 intrinsic matrix with positive focal lengths, got {K.tolist()}")
    return K


def _model_path(path: str | Path | None) -> Path:
    if path is None or str(path) == "":
        if not DEFAULT_MODEL.is_file():
            raise FileNotFoundError(
                f"the shipped default student {DEFAULT_MODEL} is not in this installation yet: pass a model "
                "file (DepthCompleter.load('student.pt'), node parameter model:=...), or use backend='classical'")
        return DEFAULT_MODEL
    path = model_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


def _input_size(path: Path, meta: dict[str, Any], override: tuple[int, int] | None) -> tuple[int, int]:
    size = override if override is not None else meta.get("input_size")
    if size is None:
        raise ValueError(f"{path}: its metadata has no input_size: pass input_size=(h, w) "
                         "(the network's input resolution)")
    size = tuple(int(v) for v in size)
    if len(size) != 2 or min(size) < 8:
        raise ValueError(f"input_size must be (height, width) of at least 8 pixels, got {list(size)}")
    return size


def _cached_onnx(path: Path, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Export ``model`` to ONNX once per (file content, input size); later loads reuse the file."""
    from lumde_depth.engine.export import export_onnx

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    h, w = meta["input_size"]
    target = cache_dir() / f"{path.stem}-{digest}-{h}x{w}.onnx"
    if not target.is_file():
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp.onnx")
        export_onnx(model, tmp, (h, w), meta)
        tmp.replace(target)
    return target
