"""``lumde_depth_node``: camera + LiDAR -> dense depth image and coloured cloud (DESIGN section 4).

Threads: the executor runs the subscription callbacks, which only count and hand each synchronized
set to a one-slot mailbox (a newer set replaces an unprocessed one, and the replaced set is counted
as dropped), so callbacks never block and nothing queues up. A worker thread takes the newest set,
converts the messages, runs :class:`~lumde_depth.ros.pipeline.DepthPipeline` and publishes. A bad
frame is logged (throttled per kind), counted in ``/diagnostics`` and skipped. Messages the synchronizer
never puts into a set are counted there too (:mod:`lumde_depth.ros.sync`), so every message is accounted for.
"""
from __future__ import annotations

import ctypes
import functools
import threading
import time
import traceback
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from lumde_depth.config import ConfigError
from lumde_depth.inference import DEFAULT_MONO_MODEL, DepthCompleter
from lumde_depth.ros import convert
from lumde_depth.ros.compat import message_filters
from lumde_depth.ros.diagnostics import NodeStats, status_message
from lumde_depth.ros.extrinsics import Extrinsics, FixedExtrinsic, matrix_from_calib_file, matrix_from_param
from lumde_depth.ros.params import NODE_NAME, NodeParams, change, declare, unknown_overrides
from lumde_depth.ros.pipeline import AutoPipeline, DepthPipeline, FrameError, frame_inputs
from lumde_depth.ros.sync import counting_synchronizer

SHIPPED = "shipped"    # mono_model value: the shipped monocular student
INPUT_SILENT_S = 2.0   # an input unheard this long (and 3 of its own periods) while another one arrives is missing

try:   # Iron+
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:   # Humble
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks

FUTURE_SLACK_NS = 100_000_000   # a stamp this far ahead of the node's clock is "in the future" (sim-time /clock steps)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):   # not glibc
        return None


def release_free_heap() -> None:
    """Give the C heap's free pages back to the system. glibc keeps what a large frame's arrays freed (its
    mmap threshold grows with each large block freed, so later blocks come from the heap and stay), and
    one 4096x3000 frame would hold ~100 MB for good. A no-op where the C library is not glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


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
        self._last_image_bytes = 0
        self.params: NodeParams = declare(self)
        p = self.params
        self.stats = NodeStats()
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

        qos_in = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.qos_depth,
                            reliability=reliability(p.qos_reliability))
        qos_out = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.qos_depth,
                             reliability=reliability(p.output_reliability))
        self._qos_out = qos_out
        self._output_publishers: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        for topic, wanted in {"depth/image": True, "depth/camera_info": True, "depth/points": True,
                              "depth/confidence": True, "depth/sparse": p.publish_sparse,
                              "depth/colored": p.publish_colored}.items():
            self._enable_output(topic, wanted)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        image_type = CompressedImage if p.image_compressed else Image
        self._qos_in = qos_in
        self._to_best_effort: set[str] = set()
        self.sub_image = self._subscriber(image_type, "image")
        self.sub_info = self._subscriber(CameraInfo, "camera_info")
        self.sub_image.registerCallback(lambda _msg: self.stats.input("image"))
        self.sub_info.registerCallback(lambda _msg: self.stats.input("camera_info"))
        self._last_points = time.monotonic()
        self.synchronizers = []
        if p.mode in ("completion", "auto"):
            self.sub_points = self._subscriber(PointCloud2, "points")
            self.sub_points.registerCallback(self._on_points)
            self.synchronizers.append(self._synchronizer([self.sub_image, self.sub_info, self.sub_points]))
            self.synchronizers[-1].registerCallback(self._on_set)
        if p.mode in ("monocular", "auto"):
            self.synchronizers.append(self._synchronizer([self.sub_image, self.sub_info]))
            self.synchronizers[-1].registerCallback(self._on_camera_set)

        self._worker = threading.Thread(target=self._work, name="lumde_depth_worker", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self.create_timer(0.2, self._downgrade_inputs)
        self._started = time.monotonic()
        self._last_stamp: int | None = None
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
        subs = {"image": self.sub_image, "camera_info": self.sub_info, "points": getattr(self, "sub_points", None)}
        return {name: sub.sub.topic_name for name, sub in subs.items() if sub is not None}

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
                             min_confidence=p.min_confidence, rectify=p.rectify)

    _OUTPUT_TYPES = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/points": PointCloud2,
                     "depth/confidence": Image, "depth/sparse": Image, "depth/colored": Image}

    def _enable_output(self, topic: str, enabled: bool) -> None:
        """Publish ``topic`` or stop publishing it (its publisher is kept for when it is enabled again)."""
        if enabled and topic not in self._output_publishers:
            self._output_publishers[topic] = self.create_publisher(
                self._OUTPUT_TYPES[topic], topic, self._qos_out, event_callbacks=PublisherEventCallbacks(
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
            sub = {"image": self.sub_image, "camera_info": self.sub_info}.get(topic) or self.sub_points
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
        while True:
            with self._cond:
                while self._slot is None and self._running:
                    self._cond.wait()
                if not self._running:
                    return
                item, self._slot = self._slot, None
            image_bytes = len(getattr(item[0], "data", b""))
            try:
                self._process(*item)
            except FrameError as exc:
                self.stats.error(exc.kind, str(exc))
                self.stats.state = f"refusing sets ({exc.kind})"
                self._warn(exc.kind, str(exc))
            except Exception as exc:   # a bug must not kill the node: log it, count it, go on
                if not self.context.ok():
                    return   # shutting down (Ctrl-C) while a frame was being published
                self.stats.error("internal", f"frame failed: {exc!r}")
                self._warn("internal", f"frame failed: {exc!r}\n{traceback.format_exc()}")
            item = None
            if image_bytes != self._last_image_bytes:   # frame size changed: what the last size used is free now
                self._last_image_bytes = image_bytes
                release_free_heap()

    def _process(self, image_msg: Any, info_msg: Any, points_msg: Any) -> None:
        t0 = time.perf_counter()
        rgb, camera, xyz = frame_inputs(image_msg, info_msg, points_msg)
        stamp_ns = convert.stamp_to_ns(image_msg.header.stamp)
        anomaly = self._check_stamp(stamp_ns)
        T = None
        if points_msg is not None:
            T, _source = self.extrinsics.lookup(image_msg.header.frame_id, points_msg.header.frame_id)
            if T is None:
                fix = ("publish it on TF (/tf_static), or set T_cam_lidar or calib_file" if self.extrinsics.tf_available
                       else "set T_cam_lidar or calib_file (TF is not used: use_tf is false)" if not self.params.use_tf
                       else "set T_cam_lidar or calib_file (tf2_ros is not installed, so TF cannot be used)")
                raise FrameError("no_extrinsic", f"no transform {points_msg.header.frame_id!r} -> "
                                                 f"{image_msg.header.frame_id!r}: {fix}")
        pipeline = self.auto or (self.pipeline if points_msg is not None else self.mono_pipeline)
        wanted = {topic for topic, pub in self.outputs.items() if pub is not None and pub.get_subscription_count()}
        t1 = time.perf_counter()
        result = pipeline.process(rgb, camera, xyz, T, outputs=wanted)
        t2 = time.perf_counter()
        for topic, msg in convert.frame_messages(result, image_msg.header, info_msg).items():
            publisher = self.outputs.get(topic)   # read once: a parameter change may disable it meanwhile
            if publisher is not None:
                publisher.publish(msg)
        t3 = time.perf_counter()
        latency_ms = None if anomaly else (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
        if anomaly:
            self.stats.stamp_anomaly(anomaly)
        self.stats.state = "completion" if points_msg is not None else "camera-only (monocular)"
        self.stats.published(latency_ms, {**result.timings, "convert_in": 1e3 * (t1 - t0),
                                          "convert_out": 1e3 * (t3 - t2)})

    def _check_stamp(self, stamp_ns: int) -> str | None:
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
        previous, self._last_stamp = self._last_stamp, stamp_ns
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
                 "input size": str(list(active.completer.input_size or [])) if active else "-"}
        level = message = None
        if p.mode in ("completion", "auto") and self.lidar_silent():
            extra["LiDAR"] = f"silent for more than {p.lidar_timeout} s"
            if p.mode == "auto" and self.mono_pipeline is None:
                level = DiagnosticStatus.WARN
                message = "LiDAR silent and no monocular model: publishing diagnostics only"
            elif self.auto is not None and self.auto.scale.value is None:
                level = DiagnosticStatus.WARN
                message = "LiDAR silent and no LiDAR scale yet: monocular depth in the model's own scale"
        if self.auto is not None:
            extra["monocular scale"] = self.auto.scale.describe()
        needed = ("image", "camera_info", "points") if p.mode == "completion" else ("image", "camera_info")
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
            topics = {"image": self.sub_image, "camera_info": self.sub_info,
                      "points": getattr(self, "sub_points", None)}
            names = " or ".join(f"{name} on '{topics[name].sub.topic_name}'" for name in silent)
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
        super().destroy_node()


def _policy_name(info: Any) -> str:
    """The name of the last incompatible QoS policy of an incompatible-QoS event."""
    kind = getattr(info, "last_policy_kind", None)
    return getattr(kind, "name", str(kind)).removeprefix("RMW_QOS_POLICY_")   # rclpy's QoSPolicyKind or rmw's


# installs made before the entry point moved to node_main (setup.py) still call lumde_depth.ros.node:main
from lumde_depth.ros.node_main import main  # noqa: E402,F401
