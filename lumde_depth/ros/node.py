"""``lumde_depth_node``: camera + LiDAR -> dense depth image and coloured cloud (DESIGN section 4).

Threads: the executor runs the subscription callbacks, which only count and hand each synchronized
set to a one-slot mailbox (a newer set replaces an unprocessed one, and the replaced set is counted
as dropped), so callbacks never block and nothing queues up. A worker thread takes the newest set,
converts the messages, runs :class:`~lumde_depth.ros.pipeline.DepthPipeline` and publishes the depth image;
the organized cloud (the costliest output: built from the depth, 16 bytes a pixel, sent) is built and published
on a second thread while the worker goes on with the next set (it waits only if that cloud thread is still
busy with the previous frame's cloud, so no cloud is dropped for it). A bad
frame is logged (throttled per kind), counted in ``/diagnostics`` and skipped. Messages the synchronizer
never puts into a set are counted there too (:mod:`lumde_depth.ros.sync`), so every message is accounted for.

Several cameras (parameter ``cameras``): each camera has its inputs and outputs under its name and its own
synchronizer with the shared cloud; its sets are gathered by sweep (:mod:`lumde_depth.ros.rig`) and the
worker runs a whole sweep at once (:meth:`~lumde_depth.ros.pipeline.DepthPipeline.process_rig`: the cloud
converted once, one network run for every camera). Each camera's own work (its image converted and resized,
its depth refined at full resolution and masked, its messages built and published as soon as it is ready)
runs on a :class:`~lumde_depth.inference.FramePool`: one thread per camera up to ``threads`` (default: one
per core), torch's threads shared out among them.
"""
from __future__ import annotations

import functools
import os
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from lumde_depth.config import ConfigError
from lumde_depth.inference import (DEFAULT_MONO_MODEL, DepthCompleter, FramePool, shared_torch_threads, usable_cores,
                                   use_torch_threads)
from lumde_depth.ros import convert
from lumde_depth.ros.compat import message_filters
from lumde_depth.ros.diagnostics import NodeStats, status_message
from lumde_depth.ros.extrinsics import Extrinsics, FixedExtrinsic, matrix_from_calib_file, matrix_from_param
from lumde_depth.ros.heap import FrameHeap
from lumde_depth.ros.params import NODE_NAME, NodeParams, change, declare, declare_camera_extrinsics, unknown_overrides
from lumde_depth.ros.pipeline import AutoPipeline, DepthPipeline, FrameError, frame_inputs, rig_inputs
from lumde_depth.ros.rig import Sweep, SweepGatherer
from lumde_depth.ros.sync import counting_synchronizer

SHIPPED = "shipped"    # mono_model value: the shipped monocular student
INPUT_SILENT_S = 2.0   # an input unheard this long (and 3 of its own periods) while another one arrives is missing

try:   # Iron+
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:   # Humble
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks

FUTURE_SLACK_NS = 100_000_000   # a stamp this far ahead of the node's clock is "in the future" (sim-time /clock steps)


def reliability(name: str) -> ReliabilityPolicy:
    """``best_available`` where this rclpy has it (Iron+), else best effort (it matches both kinds
    of publisher); ``reliable`` / ``best_effort`` as named."""
    if name == "best_available":
        return getattr(ReliabilityPolicy, "BEST_AVAILABLE", ReliabilityPolicy.BEST_EFFORT)
    return ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT


class DepthNode(Node):
    """The depth completion node; parameters in :class:`~lumde_depth.ros.params.NodeParams`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        # first: rclpy's context shutdown calls destroy_node() also on a node whose __init__ raised
        self._slot: tuple[Any, ...] | None = None
        self._cond = threading.Condition()
        self._running = True
        self._worker: threading.Thread | None = None
        self._cloud_thread = ThreadPoolExecutor(1, thread_name_prefix="lumde_depth_cloud")
        self._cloud_job: Future | None = None
        self._idle_since: float | None = time.monotonic()   # None while the worker processes a set
        self._heap = FrameHeap()   # oversized frames' arrays mapped on their own (ros.heap)
        self.frame_pool: FramePool | None = None
        self.params: NodeParams = declare(self)
        p = self.params
        self._torch_threads = p.threads or shared_torch_threads()   # the worker's (a rig's cameras: the pool's)
        self.cameras = p.cameras or [""]   # "": one camera, topics without a namespace
        self.rig = SweepGatherer(p.cameras, p.sweep_wait) if len(p.cameras) > 1 else None
        if self.rig is not None:
            self.frame_pool = FramePool.for_frames(len(p.cameras), p.threads)
            cores = usable_cores()
            if self.frame_pool.workers == 1 and not p.threads and cores > 1:   # e.g. OMP_NUM_THREADS=1 in a container
                self.get_logger().warning(
                    f"[threads] the {len(p.cameras)} cameras run one after the other on one CPU thread: torch has 1 "
                    f"thread (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}) on this {cores}-core "
                    f"machine; set threads:={cores} to process them side by side (README: several cameras)")
        self.stats = NodeStats(tuple(f"{_ns(c)}{name}" for c in self.cameras for name in ("image", "camera_info"))
                               + ("points",))
        self._last_log: dict[str, float] = {}
        self.pipeline = self.mono_pipeline = None
        if p.mode in ("completion", "auto"):
            self.pipeline = self._pipeline(p.model)
        if p.mode == "monocular" and not p.mono_model:
            raise ValueError(f"mode 'monocular' needs a monocular model: set mono_model to a model file, or to "
                             f"'{SHIPPED}' for the shipped one (synthetic-only: see docs/model_card.md)")
        if p.mode in ("monocular", "auto") and p.mono_model:
            self.mono_pipeline = self._pipeline(str(DEFAULT_MONO_MODEL) if p.mono_model == SHIPPED else p.mono_model,
                                                own_size=True)
        self.auto = AutoPipeline(self.pipeline, self.mono_pipeline) if p.mode == "auto" and self.mono_pipeline else None
        fixed = None
        if p.T_cam_lidar:
            fixed = matrix_from_param(p.T_cam_lidar)
        elif p.calib_file:
            fixed = matrix_from_calib_file(p.calib_file, p.calib_camera)
        fixed = None if fixed is None else FixedExtrinsic(fixed, p.lidar_frame, self.get_logger().info)
        self.extrinsics = Extrinsics(self, fixed, p.use_tf, p.tf_timeout)
        self.camera_extrinsics = {name: FixedExtrinsic(T, p.lidar_frame, self.get_logger().info)
                                  for name, T in declare_camera_extrinsics(self, p.cameras).items()}

        qos_in = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.qos_depth,
                            reliability=reliability(p.qos_reliability))
        qos_out = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.qos_depth,
                             reliability=reliability(p.output_reliability))
        self._qos_out = qos_out
        self._output_publishers: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        for base, wanted in {"depth/image": True, "depth/camera_info": True, "depth/points": True,
                              "depth/confidence": True, "depth/sparse": p.publish_sparse,
                              "depth/colored": p.publish_colored}.items():
            self._enable_output(base, wanted)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        image_type = CompressedImage if p.image_compressed else Image
        self._qos_in = qos_in
        self._to_best_effort: set[str] = set()
        self._last_points = time.monotonic()
        self.synchronizers = []
        self.inputs: dict[str, Any] = {}   # input name (its relative topic) -> subscriber
        cameras = [(self._input(image_type, f"{_ns(camera)}image"),
                    self._input(CameraInfo, f"{_ns(camera)}camera_info")) for camera in self.cameras]
        if p.mode in ("completion", "auto"):
            self.sub_points = self._input(PointCloud2, "points", self._on_points)
        for camera, (sub_image, sub_info) in zip(self.cameras, cameras):
            if p.mode in ("completion", "auto"):
                self.synchronizers.append(self._synchronizer([sub_image, sub_info, self.sub_points]))
                self.synchronizers[-1].registerCallback(
                    self._on_set if self.rig is None else functools.partial(self._on_rig_set, camera))
            if p.mode in ("monocular", "auto"):
                self.synchronizers.append(self._synchronizer([sub_image, sub_info]))
                self.synchronizers[-1].registerCallback(self._on_camera_set)
        if self.rig is not None:
            self.create_timer(0.1, self._expire_sweeps)

        self._worker = threading.Thread(target=self._work, name="lumde_depth_worker", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self.create_timer(0.2, self._downgrade_inputs)
        self._started = time.monotonic()
        self._last_stamp: dict[str, int] = {}   # per camera
        backend = self.pipeline or self.mono_pipeline
        self.get_logger().info(
            f"mode {p.mode}; backend {backend.completer.backend_name if backend else 'none'} on "
            f"{backend.completer.device if backend else '-'}; extrinsic from {self.extrinsics.source}; "
            f"sync {'exact' if p.exact_sync else f'approximate (slop {p.slop} s)'}; {self.topics_line()}")
        for warning in unknown_overrides(self):
            self.get_logger().warning(warning)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def input_topics(self) -> dict[str, str]:
        """Input name -> resolved topic (after namespace and remapping)."""
        return {name: sub.sub.topic_name for name, sub in self.inputs.items()}

    def topics_line(self) -> str:
        """Every resolved topic and its QoS, for the start-up line."""
        p = self.params
        resolved = reliability(p.qos_reliability).name.lower()
        how = p.qos_reliability + (f" (here {resolved})" if resolved != p.qos_reliability else "")
        inputs = ", ".join(f"{name} '{topic}'" for name, topic in self.input_topics().items())
        outputs = ", ".join(f"'{pub.topic_name}'" for pub in self.outputs.values() if pub is not None)
        return (f"inputs {inputs} ({'CompressedImage' if p.image_compressed else 'Image'}; QoS {how}, depth "
                f"{p.qos_depth}); outputs {outputs} (QoS {p.output_reliability}, depth {p.qos_depth}), '/diagnostics' "
                "(QoS reliable, depth 10)")

    # ------------------------------------------------------------------ set-up helpers
    def _pipeline(self, model: str, own_size: bool = False) -> DepthPipeline:
        """The pipeline of ``model``; ``own_size``: at the model's input size (input_height / input_width
        are the completion model's)."""
        p = self.params
        size = (p.input_height, p.input_width) if p.input_height and not own_size else None
        completer = DepthCompleter.load(model or None, backend=p.backend, device=p.device, input_size=size,
                                        fit=p.fit, threads=p.threads, lidar_align=p.lidar_align)
        return self._depth_pipeline(completer)

    def _depth_pipeline(self, completer: DepthCompleter) -> DepthPipeline:
        """The pipeline around ``completer`` with the current parameters (rebuilt when a live one changes)."""
        p = self.params
        return DepthPipeline(completer, decimation=p.decimation, min_depth=p.min_depth, max_depth=p.max_depth,
                             colored=p.publish_colored, color_range=(p.color_near, p.color_far),
                             publish_unsupported=p.publish_unsupported, support_gap=p.support_gap,
                             min_confidence=p.min_confidence, rectify=p.rectify, pool=self.frame_pool)

    _OUTPUT_TYPES = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/points": PointCloud2,
                     "depth/confidence": Image, "depth/sparse": Image, "depth/colored": Image}

    def _enable_output(self, base: str, enabled: bool) -> None:
        """Publish output ``base`` (``depth/image``...) of every camera or stop publishing it (its publishers are
        kept for when it is enabled again)."""
        for topic in (f"{_ns(camera)}{base}" for camera in self.cameras):
            if enabled and topic not in self._output_publishers:
                self._output_publishers[topic] = self.create_publisher(
                    self._OUTPUT_TYPES[base], topic, self._qos_out, event_callbacks=PublisherEventCallbacks(
                        incompatible_qos=lambda info, t=topic: self._incompatible_output(t, info)))
            self.outputs[topic] = self._output_publishers[topic] if enabled else None

    # ------------------------------------------------------------------ parameters changed at run time
    def _on_set_parameters(self, changed: list[Any]) -> Any:
        """``ros2 param set``: a live parameter is checked as at start-up and applied; a parameter fixed at
        start-up, or a bad value, is refused with the reason (:func:`~lumde_depth.ros.params.change`)."""
        from rcl_interfaces.msg import SetParametersResult

        updates = {q.name: q.value for q in changed if q.name in NodeParams.__dataclass_fields__}
        if not updates:
            return SetParametersResult(successful=True)
        try:
            params = change(self.params, updates)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._apply(params, set(updates))
        self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v}" for k, v in updates.items()))
        return SetParametersResult(successful=True)

    def _apply(self, params: NodeParams, names: set[str]) -> None:
        """Make the checked ``params`` current; ``names`` changed. The worker reads ``self.params`` and the
        pipelines once per frame, so a frame runs wholly with the old or wholly with the new values."""
        self.params = params
        if "slop" in names:
            for sync in self.synchronizers:
                sync.set_slop(params.slop)
        if names & {"decimation", "min_depth", "max_depth", "min_confidence", "publish_unsupported", "support_gap",
                    "publish_colored", "color_near", "color_far", "rectify"}:
            self.pipeline = self._depth_pipeline(self.pipeline.completer) if self.pipeline else None
            self.mono_pipeline = self._depth_pipeline(self.mono_pipeline.completer) if self.mono_pipeline else None
            if self.auto is not None:
                self.auto.completion, self.auto.mono = self.pipeline, self.mono_pipeline
        for name in names & {"publish_sparse", "publish_colored"}:
            self._enable_output(name.replace("publish_", "depth/"), getattr(params, name))
        if "tf_timeout" in names:
            self.extrinsics.timeout = params.tf_timeout
        if "diagnostics_period" in names:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = self.create_timer(params.diagnostics_period, self._publish_diagnostics)

    def _input(self, msg_type: type, topic: str, counted: Any = None) -> Any:
        """The subscriber of input ``topic``, counted in the stats (by ``counted`` where given)."""
        sub = self.inputs[topic] = self._subscriber(msg_type, topic)
        sub.registerCallback(counted or (lambda _msg: self.stats.input(topic)))
        return sub

    def _subscriber(self, msg_type: type, topic: str) -> Any:
        """A message_filters input; counts messages DDS reports lost and notices incompatible publishers."""
        sub = message_filters.Subscriber(self, msg_type, topic, qos_profile=self._qos_in,
                                          event_callbacks=self._input_events(topic))
        sub.msg_type = msg_type
        return sub

    def _input_events(self, topic: str) -> SubscriptionEventCallbacks:
        return SubscriptionEventCallbacks(incompatible_qos=lambda info: self._incompatible(topic, info),
                                          message_lost=lambda info: self.stats.lost(topic, info.total_count_change))

    def _incompatible(self, topic: str, info: Any) -> None:
        """A publisher this input cannot hear. A reliable input (what best_available resolves to when it starts
        before any publisher) cannot hear a best-effort publisher: with best_available, switch that input to
        best effort, which hears both kinds; otherwise say so (every mode) and count it."""
        policy = _policy_name(info)
        if self.params.qos_reliability == "best_available" and policy == "RELIABILITY":
            self._to_best_effort.add(topic)
            return
        self.stats.incompatible(topic)
        fix = ("a publisher on it is best effort and this input is reliable: set qos_reliability:=best_available "
               "(or best_effort), or publish reliable" if policy == "RELIABILITY" else
               "make the publisher's QoS match the input's (reliability, durability volatile)")
        self._warn("incompatible_qos", f"input '{self._resolved(topic)}' cannot receive from a publisher with "
                                       f"incompatible QoS (policy {policy}), no message will arrive: {fix}", topic)

    def _incompatible_output(self, topic: str, info: Any) -> None:
        policy = _policy_name(info)
        self.stats.incompatible(topic)
        fix = ("a subscriber asks for reliable and output_reliability is best_effort: set "
               "output_reliability:=reliable, or subscribe best effort" if policy == "RELIABILITY" else
               "subscribe with QoS that this output offers (volatile durability)")
        self._warn("incompatible_qos", f"output '{self._output_publishers[topic].topic_name}' cannot reach a "
                                       f"subscriber with incompatible QoS (policy {policy}): {fix}", topic)

    def _resolved(self, name: str) -> str:
        return self.input_topics().get(name, name)

    def _downgrade_inputs(self) -> None:
        """Timer: recreate the inputs marked by :meth:`_incompatible` (not from their own event callback)."""
        while self._to_best_effort:
            topic = self._to_best_effort.pop()
            sub = self.inputs[topic]
            if sub.sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT:
                continue
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.params.qos_depth,
                             reliability=ReliabilityPolicy.BEST_EFFORT)
            self.destroy_subscription(sub.sub)
            sub.sub = self.create_subscription(sub.msg_type, topic, sub.callback, qos,
                                               event_callbacks=self._input_events(topic))
            self.get_logger().info(f"input '{sub.sub.topic_name}': a best-effort publisher appeared; "
                                   "subscribing best effort (hears reliable and best-effort publishers)")

    def _synchronizer(self, subscribers: list[Any]) -> Any:
        """A synchronizer whose per-input accounting (matched / evicted / pending) goes to /diagnostics."""
        p = self.params
        sync = counting_synchronizer(subscribers, p.queue_size, None if p.exact_sync else p.slop)
        self.stats.watch_synchronizer(tuple(s.topic for s in subscribers), sync.counts)
        return sync

    # ------------------------------------------------------------------ callbacks (never block)
    def _on_points(self, _msg: Any) -> None:
        self._last_points = time.monotonic()
        self.stats.input("points")

    def lidar_silent(self) -> bool:
        return time.monotonic() - self._last_points > self.params.lidar_timeout

    def _on_set(self, image: Any, info: Any, points: Any) -> None:
        self._offer((image, info, points))

    def _on_rig_set(self, camera: str, image: Any, info: Any, points: Any) -> None:
        """One camera's set of a rig: gathered with the other cameras' sets of its sweep."""
        ready, late = self.rig.add(camera, image, info, points)
        self.stats.set_received(late)
        for sweep in ready:
            self._offer_sweep(sweep)

    def _expire_sweeps(self) -> None:
        """Timer: sweeps that waited too long for a camera (while the worker was idle) go on with the cameras
        they have."""
        idle_since = self._idle_since
        if idle_since is None:   # busy
            return
        for sweep in self.rig.expired(idle_since):
            self._offer_sweep(sweep)

    def _offer_sweep(self, sweep: Sweep) -> None:
        with self._cond:
            replaced, self._slot = self._slot, (sweep,)
            self._cond.notify()
        if replaced is not None:
            self.stats.drop(len(replaced[0].sets))

    def _on_camera_set(self, image: Any, info: Any) -> None:
        if self.params.mode == "auto" and not self.lidar_silent():
            self.stats.skip("lidar live")
            return
        if self.mono_pipeline is None:
            self.stats.skip("no monocular model")
            silent = f"LiDAR silent for more than {self.params.lidar_timeout} s and " \
                if self.params.mode == "auto" else ""
            self.stats.state = f"{silent}no monocular model (mono_model is empty): publishing diagnostics only"
            self._warn("camera_only", self.stats.state)
            return
        self._offer((image, info, None))

    def _offer(self, item: tuple[Any, ...]) -> None:
        with self._cond:
            replaced = self._slot is not None
            self._slot = item
            self._cond.notify()
        self.stats.set_received(replaced)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        use_torch_threads(self._torch_threads)
        while True:
            with self._cond:
                while self._slot is None and self._running:
                    self._cond.wait()
                if not self._running:
                    return
                item, self._slot = self._slot, None
                self._idle_since = None
            image_bytes = len(getattr(item[0], "data", b"")) if len(item) > 1 else \
                sum(len(image.data) for image, _info in item[0].sets.values())
            with self._heap.frame(image_bytes) as oversized:
                try:
                    self._process(*item) if len(item) > 1 else self._process_sweep(*item)
                    if oversized:   # its cloud, too, is built while the frame's arrays are mapped on their own
                        self._cloud_done()
                except FrameError as exc:
                    self._refuse(exc)
                except Exception as exc:   # a bug must not kill the node: log it, count it, go on
                    if not self.context.ok():
                        return   # shutting down (Ctrl-C) while a frame was being published
                    self.stats.error("internal", f"frame failed: {exc!r}")
                    self._warn("internal", f"frame failed: {exc!r}\n{traceback.format_exc()}")
                item = None   # the messages go before the heap's free pages are given back
            self._idle_since = time.monotonic()

    def _refuse(self, exc: FrameError) -> None:
        self.stats.error(exc.kind, str(exc))
        self.stats.state = f"refusing sets ({exc.kind})"
        self._warn(exc.kind, str(exc))

    def _process(self, image_msg: Any, info_msg: Any, points_msg: Any) -> None:
        t0 = time.perf_counter()
        rgb, camera, xyz = frame_inputs(image_msg, info_msg, points_msg)
        camera_name = self.cameras[0]
        stamp_ns = convert.stamp_to_ns(image_msg.header.stamp)
        anomaly = self._check_stamp(stamp_ns, camera_name)
        T = None if points_msg is None else self._extrinsic(image_msg, points_msg, camera_name)
        pipeline = self.auto or (self.pipeline if points_msg is not None else self.mono_pipeline)
        t1 = time.perf_counter()
        wanted = self._wanted()
        result = pipeline.process(rgb, camera, xyz, T, outputs=wanted)
        self._publish(camera_name, result, image_msg, info_msg, anomaly, t1 - t0, wanted, cloud_thread=True)
        self.stats.state = "completion" if points_msg is not None else "camera-only (monocular)"

    def _process_sweep(self, sweep: Sweep) -> None:
        """The cameras of one sweep: the cloud converted once, one network run; a camera whose set cannot be
        processed is refused and counted alone (every camera's set counts: a bad cloud refuses them all)."""
        t0 = time.perf_counter()
        names = [camera for camera in self.cameras if camera in sweep.sets]
        try:
            views, xyz = rig_inputs([sweep.sets[camera] for camera in names], sweep.cloud, self.frame_pool)
        except FrameError as exc:
            for _ in names:
                self._refuse(exc)
            return
        jobs = []
        for camera, view in zip(names, views):
            image_msg, _info = sweep.sets[camera]
            try:
                if isinstance(view, FrameError):
                    raise view
                anomaly = self._check_stamp(convert.stamp_to_ns(image_msg.header.stamp), camera)
                jobs.append((camera, view, self._extrinsic(image_msg, sweep.cloud, camera), anomaly))
            except FrameError as exc:
                self._refuse(exc)
        if not jobs:
            return
        t1 = time.perf_counter()
        wanted = self._wanted()

        def publish(index: int, result: Any) -> None:   # on the camera's pool thread, as soon as it is finished
            camera, _view, _T, anomaly = jobs[index]
            self._publish(camera, result, *sweep.sets[camera], anomaly, t1 - t0, wanted)

        results = self.pipeline.process_rig([(rgb, model, T) for _c, (rgb, model), T, _a in jobs], xyz,
                                            outputs=wanted, done=publish)
        for result in results:
            if isinstance(result, FrameError):
                self._refuse(result)
        self.stats.state = f"completion, {len(self.cameras)} cameras"

    def _extrinsic(self, image_msg: Any, points_msg: Any, camera: str) -> np.ndarray:
        """LiDAR -> camera of this image and cloud (TF from the cloud's frame; else the camera's own
        ``<camera>.T_cam_lidar``, else T_cam_lidar / calib_file), or a ``no_extrinsic`` FrameError."""
        T, _source = self.extrinsics.lookup(image_msg.header.frame_id, points_msg.header.frame_id,
                                            self.camera_extrinsics.get(camera))
        if T is None:
            own = f"{camera}.T_cam_lidar" if camera else "T_cam_lidar or calib_file"
            fix = (f"publish it on TF (/tf_static), or set {own}" if self.extrinsics.tf_available
                   else f"set {own} (TF is not used: use_tf is false)" if not self.params.use_tf
                   else f"set {own} (tf2_ros is not installed, so TF cannot be used)")
            raise FrameError("no_extrinsic", f"no transform {points_msg.header.frame_id!r} -> "
                                             f"{image_msg.header.frame_id!r}: {fix}")
        return T

    def _wanted(self) -> set[str]:
        """The outputs (``depth/points``...) somebody subscribes to, for any camera."""
        return {base for camera in self.cameras for base in self._OUTPUT_TYPES
                if (pub := self.outputs.get(f"{_ns(camera)}{base}")) is not None and pub.get_subscription_count()}

    def _publish(self, camera: str, result: Any, image_msg: Any, info_msg: Any, anomaly: str | None,
                 convert_in_s: float, wanted: set[str], cloud_thread: bool = False) -> None:
        """Publish one camera's outputs that somebody subscribes to (``wanted``) and count them (thread-safe:
        a rig's cameras publish from their pool threads). With ``cloud_thread`` the cloud is built and published
        on the node's cloud thread, after the previous frame's cloud there (the worker waits for that one)."""
        t2 = time.perf_counter()
        header = image_msg.header
        later = {"depth/points"} & wanted if cloud_thread else set()
        self._send(camera, convert.iter_frame_messages(result, header, info_msg, topics=wanted - later))
        stamp_ns = convert.stamp_to_ns(header.stamp)
        latency_ms = None if anomaly else (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
        if anomaly:
            self.stats.stamp_anomaly(anomaly)
        convert_out_ms = 1e3 * (time.perf_counter() - t2)

        def count(cloud_ms: float = 0.0) -> None:
            self.stats.published(latency_ms, {**result.timings, "convert_in": 1e3 * convert_in_s,
                                              "convert_out": convert_out_ms + cloud_ms})

        if not later:
            count()
            return

        def send_cloud() -> None:
            t4 = time.perf_counter()
            try:
                self._send(camera, convert.iter_frame_messages(result, header, info_msg, topics=later))
            except Exception as exc:   # as the worker does: a bug must not go unseen, nor stop the node
                if not self.context.ok():
                    return   # shutting down while the cloud was being published
                self.stats.error("internal", f"cloud failed: {exc!r}")
                self._warn("internal", f"cloud failed: {exc!r}\n{traceback.format_exc()}")
                return
            count(1e3 * (time.perf_counter() - t4) - result.timings.get("cloud", 0.0))

        self._cloud_done()
        self._cloud_job = self._cloud_thread.submit(send_cloud)

    def _cloud_done(self) -> None:
        """Wait until the cloud thread has published the last cloud handed to it."""
        if self._cloud_job is not None:
            self._cloud_job.result()

    def _send(self, camera: str, messages: Any) -> None:
        """Publish ``(relative topic, message)`` pairs on ``camera``'s outputs, each as soon as it is built."""
        for topic, msg in messages:
            publisher = self.outputs.get(f"{_ns(camera)}{topic}")   # read once: a parameter change may disable it
            if publisher is not None:
                publisher.publish(msg)

    def _check_stamp(self, stamp_ns: int, camera: str = "") -> str | None:
        """Refuse a set older, or further in the future, than ``max_stamp_age`` (when > 0); otherwise return
        what makes its stamp useless for latency: ``zero``, ``future`` or ``backward`` (older than the previous
        set's, e.g. a bag loop), or None."""
        now = self.get_clock().now().nanoseconds
        max_age = self.params.max_stamp_age
        age = (now - stamp_ns) / 1e9
        if max_age > 0 and age > max_age:
            raise FrameError("stale", f"image stamp is {age:.2f} s old (max_stamp_age {max_age} s): replaying a "
                                      "bag? set use_sim_time:=true (and play with --clock), or max_stamp_age:=0")
        if max_age > 0 and -age > max_age:
            raise FrameError("future_stamp", f"image stamp is {-age:.2f} s ahead of this node's clock (max_stamp_age "
                                             f"{max_age} s): synchronize the clocks of the sensor's computer and "
                                             "this one (chrony / NTP / PTP), or set max_stamp_age:=0")
        previous, self._last_stamp[camera] = self._last_stamp.get(camera), stamp_ns
        if stamp_ns == 0:
            return "zero"
        if stamp_ns - now > FUTURE_SLACK_NS:
            return "future"
        if previous is not None and stamp_ns < previous:
            return "backward"
        return None

    # ------------------------------------------------------------------ diagnostics and logs
    def _warn(self, kind: str, message: str, topic: str = "") -> None:
        """Log ``[kind] message`` at most once per ``log_throttle`` per kind (and topic, where given)."""
        now, key = time.monotonic(), f"{kind} {topic}" if topic else kind
        if now - self._last_log.get(key, -np.inf) >= self.params.log_throttle:
            self._last_log[key] = now
            self.get_logger().warning(f"[{kind}] {message}")

    def _publish_diagnostics(self) -> None:
        p = self.params
        active = self.pipeline or self.mono_pipeline
        extra = {"mode": p.mode, "backend": active.completer.backend_name if active else "none",
                 "device": active.completer.device if active else "-", "extrinsic source": self.extrinsics.source,
                 "input size": str(list(active.completer.backend.input_size)) if active and active.completer.backend
                 else "-"}
        level = message = None
        if p.mode in ("completion", "auto") and self.lidar_silent():
            extra["LiDAR"] = f"silent for more than {p.lidar_timeout} s"
            if p.mode == "auto" and self.mono_pipeline is None:
                level = DiagnosticStatus.WARN
                message = "LiDAR silent and no monocular model: publishing diagnostics only"
            elif self.auto is not None and self.auto.scale.value is None:
                level = DiagnosticStatus.WARN
                message = "LiDAR silent and no LiDAR scale yet: monocular depth in the model's own scale"
        if self.rig is None:
            extra["refinement threads"] = str(self._torch_threads)
        if self.auto is not None:
            extra["monocular scale"] = self.auto.scale.describe()
        if self.rig is not None:   # synchronized sets = processed + dropped + bad frames + these
            extra["cameras"] = ", ".join(self.cameras)
            extra["camera sets waiting for their sweep"] = str(self.rig.waiting)
            extra["cameras in the last network run"] = str(self.pipeline.completer.last_batch)
            extra["camera workers"] = self.frame_pool.describe()
        needed = tuple(name for name in self.inputs if p.mode == "completion" or name != "points")
        if self.stats.quiet(INPUT_SILENT_S) and time.monotonic() - self._started > INPUT_SILENT_S:
            waiting = ", ".join(f"{name} on '{topic}' ({self.count_publishers(topic)} publishers)"
                                for name, topic in self.input_topics().items() if name in needed)
            extra["waiting for"] = waiting
            self._warn("no_input", f"no message on any input for {INPUT_SILENT_S} s, waiting for {waiting}: check the "
                                   "topic names (ros2 topic list) and the remapping (-r image:=... or the launch "
                                   "arguments); a publisher that is there but never delivers has incompatible QoS "
                                   "or needs the large-message DDS profile (README)")
            if level is None:
                level, message = DiagnosticStatus.WARN, f"waiting for input: {waiting}"
        silent = self.stats.silent(needed, INPUT_SILENT_S)
        if silent:
            names = " or ".join(f"{name} on '{self.inputs[name].sub.topic_name}'" for name in silent)
            extra["silent inputs"] = ", ".join(silent)
            self._warn("missing_input", f"no {names} for {INPUT_SILENT_S} s while other inputs arrive: nothing "
                                        "can be synchronized; check that publisher and the topic remapping")
            if level is None:
                level, message = DiagnosticStatus.WARN, f"no {names} for {INPUT_SILENT_S} s"
        status = status_message(self.stats, f"{self.get_name()}: depth completion", self.get_fully_qualified_name(),
                                extra, level, message)
        self.pub_diag.publish(DiagnosticArray(header=convert.make_header(self.get_clock().now().nanoseconds, ""),
                                              status=[status]))

    def destroy_node(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        self._cloud_thread.shutdown(wait=True)
        if self.frame_pool is not None:
            self.frame_pool.close()
        super().destroy_node()


def _ns(camera: str) -> str:
    """The topic prefix of ``camera`` (none for the single unnamed camera)."""
    return f"{camera}/" if camera else ""


def _policy_name(info: Any) -> str:
    """The name of the last incompatible QoS policy of an incompatible-QoS event."""
    kind = getattr(info, "last_policy_kind", None)
    return getattr(kind, "name", str(kind)).removeprefix("RMW_QOS_POLICY_")   # rclpy's QoSPolicyKind or rmw's


# installs made before the entry point moved to node_main (setup.py) still call lumde_depth.ros.node:main
from lumde_depth.ros.node_main import main  # noqa: E402,F401
