"""Per-frame processing shared by the node and ``lumde bag process`` (no rclpy: messages are duck-typed).

One synchronized set ``(image, camera, LiDAR xyz, T_cam_lidar)`` becomes: the z-buffered sparse depth
(``project_points`` with the camera_info's 3x4 ``P``; for a raw image with distortion ``D`` through
``K`` and ``D``, or onto the rectified image with ``rectify``: :class:`~lumde_depth.geometry.CameraModel`),
the dense depth (``DepthCompleter``) and, when asked for, its per-pixel confidence, the organized
coloured cloud (``organized_cloud``: the back-projected, optionally decimated, dense depth with the
image's colours, along the camera's rays) and a colour-mapped depth picture for people. Depth the LiDAR
does not support (outside its field of view, far from any point, saturated at the model's clip: see
:func:`~lumde_depth.geometry.support.support_mask`) is invalid (NaN when published, REP 118) unless
``publish_unsupported``, and so is depth whose confidence is below ``min_confidence``. Both the live
node and the
offline bag tool call :meth:`DepthPipeline.process`, so their outputs are identical for the same inputs.

The node's ``auto`` mode runs :class:`AutoPipeline`: completion while LiDAR frames arrive, the
monocular network while the LiDAR is silent, its depth brought to metres by the scale the recent
LiDAR frames gave (:class:`MonoScale`).

Bad inputs raise :class:`FrameError` with a short ``kind`` (a diagnostics counter name) and a
message that names the problem and the fix; callers count, log and go on with the next frame.
"""
from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Container, Sequence

import numpy as np

from lumde_depth.geometry import CameraModel, camera_model_from_camera_info
from lumde_depth.geometry.scale import lidar_scale
from lumde_depth.geometry.support import support_mask, unsaturated
from lumde_depth.inference import DepthCompleter, FramePool
from lumde_depth.inference.frame_pool import IN_TURN
from lumde_depth.ros import convert
from lumde_depth.viz import colorize


CALIBRATE = "publish the calibrated camera's camera_info (camera_calibration)"
FOCAL_RANGE = (1e-3, 1e7)   # plausible focal lengths in pixels (beyond them float32 geometry overflows)


class FrameError(ValueError):
    """A frame that cannot be processed; ``kind`` names the diagnostics counter it goes to."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class FrameResult:
    """What one frame produced (depth 0 = invalid; cloud NaN = invalid)."""

    sparse: np.ndarray | None        # (H, W) float32 metres, projected LiDAR (None in monocular mode)
    depth: np.ndarray                # (H, W) float32 metres, 0 where no depth or not supported (as published)
    colored: np.ndarray | None       # (H, W, 3) uint8 colour-mapped depth, when asked for
    K: np.ndarray                    # 3x3 matrix of the output images (P's block; the raw K of a distorted camera)
    timings: dict[str, float] = field(default_factory=dict)   # milliseconds per stage
    dense: np.ndarray | None = None  # the network's depth in [min_depth, max_depth] before the support mask
    support: np.ndarray | None = None  # (H, W) bool, True where supported (None: not masked)
    confidence: np.ndarray | None = None   # (H, W) float32 in [0, 1], 0 where no depth; when asked for
    rectified: bool = False          # a raw image was rectified: every image above is on the grid of P
    make_cloud: Callable[[], np.ndarray] | None = field(default=None, repr=False)   # builds `cloud` (None: not wanted)

    @functools.cached_property
    def cloud(self) -> np.ndarray | None:
        """``(H/d, W/d)`` :data:`~lumde_depth.geometry.XYZRGB` organized cloud in the optical frame, NaN invalid;
        None when it was not asked for. Built on first use, so the node publishes the depth image before it
        spends the cloud's time (its milliseconds go to ``timings["cloud"]`` then)."""
        if self.make_cloud is None:
            return None
        t0 = time.perf_counter()
        cloud = self.make_cloud()
        self.timings["cloud"] = 1e3 * (time.perf_counter() - t0)
        return cloud


def frame_inputs(image: Any, info: Any, cloud: Any | None) -> tuple[np.ndarray, CameraModel, np.ndarray | None]:
    """``(rgb, camera, xyz)`` of a synchronized ``(Image | CompressedImage, CameraInfo[, PointCloud2])`` set
    (rclpy or rosbags messages), with the checks the node and ``lumde bag process`` share. ``camera``
    is the image's :class:`~lumde_depth.geometry.CameraModel`: ``P`` for a rectified image, ``K`` and
    the distortion for a raw one (``D`` != 0)."""
    try:
        rgb = convert.image_to_rgb(image)
    except ValueError as exc:
        raise FrameError("bad_image", str(exc)) from None
    height, width = rgb.shape[:2]
    if (int(info.width), int(info.height)) != (width, height):
        raise FrameError("size_mismatch", f"camera_info is {info.width}x{info.height} but the image is "
                                          f"{width}x{height}: publish the camera_info of this image")
    try:
        camera = camera_model_from_camera_info(info)
    except ValueError as exc:
        text = str(exc) if "calibrat" in str(exc) else f"camera_info: {exc}: {CALIBRATE}"
        raise FrameError("bad_camera_info", text) from None
    return rgb, camera, None if cloud is None else cloud_xyz(cloud)


def cloud_xyz(cloud: Any) -> np.ndarray:
    """The finite xyz of a ``PointCloud2`` (rclpy or rosbags), or a ``bad_cloud`` :class:`FrameError`."""
    try:
        return convert.cloud_to_xyz(cloud)
    except (ValueError, KeyError) as exc:
        raise FrameError("bad_cloud", f"cannot read the cloud: {exc}") from None


def rig_inputs(cameras: Sequence[tuple[Any, Any]], cloud: Any, pool: FramePool | None = None
               ) -> tuple[list[tuple[np.ndarray, CameraModel] | FrameError], np.ndarray]:
    """``([(rgb, camera) or FrameError per camera], xyz)`` of the ``(image, camera_info)`` pairs of a rig's
    cameras and the LiDAR sweep they share: the cloud is converted once for all of them (a bad cloud
    raises for the whole rig), a bad camera gives its :class:`FrameError` in its place. With ``pool`` the
    cameras' images are converted side by side."""
    xyz = cloud_xyz(cloud)

    def view(pair: tuple[Any, Any]) -> tuple[np.ndarray, CameraModel] | FrameError:
        try:
            return frame_inputs(*pair, None)[:2]
        except FrameError as exc:
            return exc

    return (pool or IN_TURN).map(view, cameras), xyz


@dataclass
class _Staged:
    """A frame between projection and completion."""

    rgb: np.ndarray               # the image the network sees (rectified with ``rectify``)
    camera: CameraModel           # its camera
    sparse: np.ndarray | None     # the LiDAR's depth in it (None camera-only)
    rectified: bool
    t0: float                     # time.perf_counter() when its processing began
    timings: dict[str, float]

    @property
    def K(self) -> np.ndarray:
        return self.camera.K


class DepthPipeline:
    """Projection + completion + back-projection for one frame (:meth:`process`) or the cameras of one rig
    on one LiDAR sweep (:meth:`process_rig`: one network run for all of them, each camera's own work side by
    side on ``pool``'s threads when given)."""

    def __init__(self, completer: DepthCompleter, decimation: int = 1, min_depth: float = 0.1,
                 max_depth: float = 300.0, colored: bool = True,
                 color_range: tuple[float, float] = (1.0, 80.0), publish_unsupported: bool = False,
                 support_gap: float = 1.0, min_confidence: float = 0.0, rectify: bool = False,
                 pool: FramePool | None = None) -> None:
        """``publish_unsupported``: keep the depth the LiDAR does not support (no NaN mask);
        ``support_gap``: metres a pixel may lie from its nearest LiDAR point, at its depth, and still be
        supported (0 = no distance test; see :func:`~lumde_depth.geometry.support.support_mask`);
        ``min_confidence``: depth whose confidence is below it is invalid too (with or without
        ``publish_unsupported``; 0 = no confidence test); ``rectify``: a raw (distorted) image is
        rectified first and every output lies on the grid of its ``P`` (else the outputs are
        registered to the raw image, through the distortion); ``pool``: threads for the cameras of a rig
        (:meth:`process_rig`; None: one after the other), owned by the caller."""
        if decimation < 1:
            raise ValueError(f"decimation must be >= 1, got {decimation}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.completer = completer
        self.min_confidence = float(min_confidence)
        self.decimation = int(decimation)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        if not 0 < color_range[0] < color_range[1]:
            raise ValueError(f"color_range must be 0 < near < far, got {color_range}")
        self.colored, self.color_range = colored, (float(color_range[0]), float(color_range[1]))
        if support_gap < 0:
            raise ValueError(f"support_gap must be >= 0 metres, got {support_gap}")
        self.publish_unsupported, self.support_gap = bool(publish_unsupported), float(support_gap)
        self.rectify = bool(rectify)
        self.pool = pool

    def process(self, rgb: np.ndarray, P: np.ndarray | CameraModel, points: np.ndarray | None,
                T_cam_lidar: np.ndarray | None, outputs: Container[str] | None = None,
                scale: float = 1.0) -> FrameResult:
        """Run one frame. ``points`` ``(N, >=3)`` LiDAR-frame xyz, or None for camera-only
        (monocular) processing; ``P`` the camera of ``rgb`` ``(H, W, 3)`` uint8: a 3x3 or 3x4 matrix
        (pinhole) or a :class:`~lumde_depth.geometry.CameraModel` (e.g. a raw image with distortion:
        projected and back-projected through it, or rectified first with ``rectify``).

        ``outputs`` names the optional products wanted (``depth/points``, ``depth/colored``,
        ``depth/confidence``); None = all. The node passes the topics that have subscribers, so nobody
        pays for an unseen cloud. The confidence is also computed whenever ``min_confidence`` > 0:
        pixels below it get no depth (nor a point in the cloud).
        ``scale`` multiplies the network's depth before the depth range applies (a monocular
        network's metric scale).
        """
        staged = self._project(rgb, P, points, T_cam_lidar)
        t1 = time.perf_counter()
        try:
            if self._confidence_wanted(outputs):
                depth, confidence = self.completer.complete_with_confidence(staged.rgb, staged.sparse, staged.K)
            else:
                depth, confidence = self.completer.complete(staged.rgb, staged.sparse, staged.K), None
        except ValueError as exc:
            raise FrameError("bad_input", str(exc)) from None
        staged.timings.update({"complete": 1e3 * (time.perf_counter() - t1),
                               **{f"complete.{k}": v for k, v in self.completer.last_timings.items()}})
        return self._finish(staged, depth, confidence, outputs, scale)

    def process_rig(self, views: Sequence[tuple[np.ndarray, np.ndarray | CameraModel, np.ndarray | None]],
                    points: np.ndarray, outputs: Container[str] | None = None,
                    done: Callable[[int, FrameResult], None] | None = None) -> list[FrameResult | FrameError]:
        """Run the cameras of one rig on one LiDAR sweep: each ``(rgb, camera, T_cam_lidar)`` view is projected
        (``points`` converted once, by the caller, for all of them), the views go through the network in one
        run (:meth:`~lumde_depth.inference.DepthCompleter.complete_batch`) and each is finished as
        :meth:`process` finishes a frame. A view that cannot be processed (e.g. no point in its view) gives
        its :class:`FrameError` in its place; the others go on. With :attr:`pool`, the views are projected,
        prepared for the network, and finished side by side (the results are the same as one after the
        other). ``done(index, result)``, when given, gets each view's result as soon as it is finished, in the
        thread that finished it (the node publishes it there, while the other cameras are still refined).
        Timings: ``complete`` runs from the batch's start until this view's depth was ready;
        ``complete.preprocess`` and ``complete.inference`` are the whole batch's."""
        each = (self.pool or IN_TURN).map

        def project(view: tuple[np.ndarray, np.ndarray | CameraModel, np.ndarray | None]) -> _Staged | FrameError:
            try:
                return self._project(view[0], view[1], points, view[2])
            except FrameError as exc:
                return exc

        staged = each(project, views)
        ready = [(index, s) for index, s in enumerate(staged) if isinstance(s, _Staged)]
        started: list[int] = []
        t1 = time.perf_counter()

        def finish(item: int, depth: np.ndarray, confidence: np.ndarray | None) -> FrameResult:
            started.append(item)
            index, s = ready[item]
            s.timings.update({"complete": 1e3 * (time.perf_counter() - t1),
                              **{f"complete.{k}": v for k, v in self.completer.last_timings.items()}})
            result = self._finish(s, depth, confidence, outputs, 1.0)
            if done is not None:
                done(index, result)
            return result

        try:
            finished = iter(self.completer.complete_batch([(s.rgb, s.sparse, s.K) for _i, s in ready],
                                                          confidence=self._confidence_wanted(outputs), pool=self.pool,
                                                          then=finish))
        except ValueError as exc:
            if started:   # not the batch's inputs: raised while finishing a view
                raise
            return [s if isinstance(s, FrameError) else FrameError("bad_input", str(exc)) for s in staged]
        return [next(finished) if isinstance(s, _Staged) else s for s in staged]

    def _confidence_wanted(self, outputs: Container[str] | None) -> bool:
        return self.min_confidence > 0 or outputs is None or "depth/confidence" in outputs

    def _project(self, rgb: np.ndarray, P: np.ndarray | CameraModel, points: np.ndarray | None,
                 T_cam_lidar: np.ndarray | None) -> _Staged:
        """The checked image (rectified with ``rectify``), its camera and the LiDAR's sparse depth in it
        (None camera-only)."""
        t0 = time.perf_counter()
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise FrameError("bad_image", f"image must be (H, W, 3) uint8 rgb, got "
                                          f"{getattr(rgb, 'shape', type(rgb))} {getattr(rgb, 'dtype', '')}")
        camera = self._camera(P, rgb)
        rectified = self.rectify and camera.distorted
        if rectified:
            rgb, camera = camera.rectifier()(rgb), camera.rectified()
        t_rectify = time.perf_counter()
        sparse = None
        if points is not None:
            sparse = project_cloud(points, T_cam_lidar, camera, min_depth=self.min_depth, max_depth=self.max_depth)
        return _Staged(rgb, camera, sparse, rectified, t0, {"rectify": 1e3 * (t_rectify - t0),
                                                            "project": 1e3 * (time.perf_counter() - t_rectify)})

    def _finish(self, staged: _Staged, depth: np.ndarray, confidence: np.ndarray | None,
                outputs: Container[str] | None, scale: float) -> FrameResult:
        """The network's depth of a staged frame -> its depth range, support mask, colour map and (built on first
        use: :attr:`FrameResult.cloud`) cloud."""
        rgb, camera, K, sparse = staged.rgb, staged.camera, staged.K, staged.sparse
        t2 = time.perf_counter()
        depth *= np.float32(scale)
        depth[(depth < self.min_depth) | (depth > self.max_depth)] = 0.0
        dense, support = depth, self._support(depth, sparse, K, scale)
        if confidence is not None and self.min_confidence > 0:
            confident = confidence >= np.float32(self.min_confidence)
            support = confident if support is None else support & confident
        if support is not None:
            depth = np.where(support, depth, np.float32(0.0))
        if confidence is not None:
            confidence = np.where(depth > 0, confidence, np.float32(0.0))
        t3 = time.perf_counter()
        colored = colorize(depth, *self.color_range) if self.colored and (
            outputs is None or "depth/colored" in outputs) else None
        t4 = time.perf_counter()
        timings = {**staged.timings, "support": 1e3 * (t3 - t2), "colorize": 1e3 * (t4 - t3),
                   "total": 1e3 * (t4 - staged.t0)}
        make_cloud = functools.partial(camera.cloud, depth, rgb, self.decimation) \
            if outputs is None or "depth/points" in outputs else None
        return FrameResult(sparse, depth, colored, K, timings, dense, support, confidence, staged.rectified,
                           make_cloud)

    @staticmethod
    def _camera(P: np.ndarray | CameraModel, rgb: np.ndarray) -> CameraModel:
        height, width = rgb.shape[:2]
        if isinstance(P, CameraModel):
            if (P.width, P.height) != (width, height):
                raise FrameError("size_mismatch", f"the camera is {P.width}x{P.height} but the image is "
                                                  f"{width}x{height}: publish the camera_info of this image")
            _checked_P(P.K)
            return P
        return CameraModel.pinhole(_checked_P(P), width, height)

    def _support(self, depth: np.ndarray, sparse: np.ndarray | None, K: np.ndarray,
                 scale: float) -> np.ndarray | None:
        """Where ``depth`` is supported (None with ``publish_unsupported``). Camera-only frames have no LiDAR
        to support them: only the model's saturated values (at its clip times ``scale``) are masked there."""
        if self.publish_unsupported:
            return None
        if sparse is None:
            low, high = self.completer.depth_range
            return unsaturated(depth, (low * scale, high * scale))
        return support_mask(depth, sparse, float(K[0, 0]), self.support_gap, depth_range=self.completer.depth_range)


def project_cloud(points: np.ndarray, T_cam_lidar: np.ndarray | None, camera: CameraModel | np.ndarray,
                  width: int | None = None, height: int | None = None, min_depth: float = 0.1,
                  max_depth: float = np.inf) -> np.ndarray:
    """The z-buffered sparse depth of a LiDAR cloud in the image, with the node's checks: a
    :class:`FrameError` for a malformed or empty cloud, a missing extrinsic, or no point in view.
    ``camera``: the image's :class:`~lumde_depth.geometry.CameraModel` (through its distortion, if
    any), or a pinhole 3x3 / 3x4 matrix with ``width`` and ``height``."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise FrameError("bad_cloud", f"cloud must be (N, >=3) x, y, z, got shape {points.shape}")
    if points.shape[0] == 0:
        raise FrameError("empty_cloud", "the LiDAR cloud has no finite points (all NaN or empty)")
    if T_cam_lidar is None:
        raise FrameError("no_extrinsic", "no LiDAR -> camera transform: pass T_cam_lidar (4x4, LiDAR -> camera "
                                         "optical frame)")
    if not isinstance(camera, CameraModel):
        camera = CameraModel.pinhole(_checked_P(camera), width, height)
    sparse = camera.project(points, T_cam_lidar, min_depth, max_depth)
    if not sparse.any():
        raise FrameError("no_points_in_view", f"none of the {points.shape[0]} LiDAR points projects into the "
                                              "image: check T_cam_lidar (LiDAR -> camera optical frame) "
                                              "and the cloud's frame")
    return sparse


def _checked_P(P: np.ndarray) -> np.ndarray:
    """``P`` as float64, or a ``bad_camera_info`` FrameError naming the entry that is wrong."""
    P = np.asarray(P, dtype=np.float64)
    if P.shape not in ((3, 3), (3, 4)):
        raise FrameError("bad_camera_info", f"camera matrix must be 3x3 (K) or 3x4 (P), got shape {P.shape}")
    fx, fy, cx, cy = P[0, 0], P[1, 1], P[0, 2], P[1, 2]
    if not (FOCAL_RANGE[0] <= fx <= FOCAL_RANGE[1] and FOCAL_RANGE[0] <= fy <= FOCAL_RANGE[1]):   # False for NaN
        raise FrameError("bad_camera_info", f"camera_info focal lengths fx={fx}, fy={fy} must be finite and between "
                                            f"{FOCAL_RANGE[0]:g} and {FOCAL_RANGE[1]:g} pixels: {CALIBRATE}")
    if not (np.isfinite(cx) and np.isfinite(cy)):
        raise FrameError("bad_camera_info", f"camera_info principal point cx={cx}, cy={cy} is not finite: {CALIBRATE}")
    if not np.all(np.isfinite(P)):
        raise FrameError("bad_camera_info", f"camera_info P has non-finite entries {P.tolist()}: {CALIBRATE}")
    return P


class MonoScale:
    """The metric scale of a monocular network, kept up to date from frames that have LiDAR.

    Each observed frame gives :func:`~lumde_depth.geometry.scale.lidar_scale` (the median of
    LiDAR / predicted depth over its projected points); the scale is the median over the last
    ``window`` frames that had enough points, so one frame with a bad scan or an odd view does not
    move it.
    """

    def __init__(self, window: int = 30) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.recent: deque[float] = deque(maxlen=window)

    def observe(self, mono_depth: np.ndarray, sparse: np.ndarray) -> float:
        """Add one frame's ratio (NaN, and not added, when it has too few LiDAR points); returns it."""
        ratio = lidar_scale(mono_depth, sparse)
        if np.isfinite(ratio) and ratio > 0:
            self.recent.append(ratio)
        return ratio

    @property
    def value(self) -> float | None:
        """The running scale, or None before any frame gave one."""
        recent = tuple(self.recent)  # a snapshot: the diagnostics timer reads while the worker adds
        return float(np.median(recent)) if recent else None

    def describe(self) -> str:
        """The scale for ``/diagnostics``."""
        value = self.value
        if value is None:
            return "none yet (no LiDAR frame scaled the monocular network): monocular depth in the model's own scale"
        return f"{value:.4g} (median of the last {len(self.recent)} LiDAR frames)"


class AutoPipeline:
    """Mode ``auto``: completion for frames with LiDAR, the monocular network for frames without.

    Every ``scale_every``-th LiDAR frame also runs the monocular network, and its depth against
    that frame's projected LiDAR updates :attr:`scale`; camera-only frames are multiplied by it
    (by 1, the model's own scale, until the first LiDAR frame). ``process`` has the signature of
    :meth:`DepthPipeline.process`.
    """

    def __init__(self, completion: DepthPipeline, mono: DepthPipeline, scale_every: int = 5,
                 scale_window: int = 30) -> None:
        if scale_every < 1:
            raise ValueError(f"scale_every must be >= 1, got {scale_every}")
        self.completion, self.mono = completion, mono
        self.scale = MonoScale(scale_window)
        self.scale_every = int(scale_every)
        self._lidar_frames = 0

    def process(self, rgb: np.ndarray, P: np.ndarray, points: np.ndarray | None,
                T_cam_lidar: np.ndarray | None, outputs: Container[str] | None = None) -> FrameResult:
        if points is None:
            return self.mono.process(rgb, P, None, None, outputs, scale=self.scale.value or 1.0)
        result = self.completion.process(rgb, P, points, T_cam_lidar, outputs)
        if self._lidar_frames % self.scale_every == 0:
            t0 = time.perf_counter()
            on_grid = P.rectifier()(rgb) if result.rectified else rgb   # the grid of result.sparse
            self.scale.observe(self.mono.completer.complete(on_grid, None, result.K), result.sparse)
            result.timings["mono_scale"] = 1e3 * (time.perf_counter() - t0)
        self._lidar_frames += 1
        return result
