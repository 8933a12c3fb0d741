"""Run the node's pipeline over a bag offline (no DDS): input bag -> output bag with the depth topics added.

Every message of the input bag is copied unchanged; the camera image, its camera_info and the LiDAR
cloud go through the node's synchronizer policy (the package's own synchronizer, which needs no rclpy
and reads rosbags' stamps; same slop / queue size defaults as the node's parameters) and each synchronized set through
:class:`~lumde_depth.ros.pipeline.DepthPipeline` and :func:`~lumde_depth.ros.convert.frame_messages`,
exactly as the live node does. The LiDAR -> camera transform comes from the bag's ``/tf_static``
(any chain of static transforms between the cloud's and the image's frames), or is given. Output
messages are recorded at the bag time of their image. With ground-truth depth PNGs (``--gt``) the
KITTI metrics of the dense depth are computed per image and averaged.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lumde_depth.geometry import CameraModel
from lumde_depth.ros import convert
from lumde_depth.ros.bag_io import BagError, check_new_bag, new_bag, open_bag, typestore
from lumde_depth.ros.compat import SimpleFilter
from lumde_depth.ros.extrinsics import FixedExtrinsic, transform_to_matrix
from lumde_depth.ros.kitti2bag import KITTI_INPUTS
from lumde_depth.ros.params import NodeParams
from lumde_depth.ros.pipeline import DepthPipeline, FrameError, frame_inputs
from lumde_depth.ros.sync import counting_synchronizer

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


@dataclass
class ProcessSummary:
    """Counts of what happened: input messages, synchronized sets, frames written, errors by kind, metrics."""

    out: Path
    inputs: dict[str, int] = field(default_factory=dict)
    sets: int = 0
    written: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    evaluated: int = 0


def choose_inputs(connections: list[Any], image: str | None, info: str | None, points: str | None
                  ) -> tuple[str, str, str]:
    """(image, camera_info, points) topics: as given, else kitti2bag's names, else the only one of each type."""
    by_topic = {c.topic: c.msgtype for c in connections}
    if image is None and info is None and points is None and all(t in by_topic for t in KITTI_INPUTS):
        return KITTI_INPUTS

    def pick(given: str | None, types: tuple[str, ...], what: str, flag: str) -> str:
        if given is not None:
            if given not in by_topic:
                raise BagError(f"{what} topic {given!r} is not in the bag; its topics: {sorted(by_topic)}")
            if by_topic[given] not in types:
                raise BagError(f"{what} topic {given!r} has type {by_topic[given]}, expected {' or '.join(types)}")
            return given
        found = sorted(t for t, ty in by_topic.items() if ty in types)
        if len(found) != 1:
            raise BagError(f"cannot tell the {what} topic ({'none' if not found else ', '.join(found)} in the bag): "
                           f"give it with {flag}")
        return found[0]

    image = pick(image, IMAGE_TYPES, "image", "--image")
    if info is None:
        sibling = image.rsplit("/", 1)[0] + "/camera_info"
        info = sibling if by_topic.get(sibling) == "sensor_msgs/msg/CameraInfo" else None
    info = pick(info, ("sensor_msgs/msg/CameraInfo",), "camera_info", "--camera-info")
    points = pick(points, ("sensor_msgs/msg/PointCloud2",), "points", "--points")
    return image, info, points


class StaticTransforms:
    """The static TF tree of a bag: ``lookup(target, source)`` -> 4x4 ``T_target_source`` or None."""

    def __init__(self) -> None:
        self.parent: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, tf_message: Any) -> None:
        for tr in tf_message.transforms:
            self.parent[tr.child_frame_id.lstrip("/")] = (tr.header.frame_id.lstrip("/"),
                                                          transform_to_matrix(tr.transform))

    def _to_root(self, frame: str) -> tuple[str, np.ndarray]:
        T, seen = np.eye(4), {frame}
        while frame in self.parent:
            frame, T_parent_child = self.parent[frame]
            if frame in seen:
                raise ValueError(f"/tf_static has a cycle through {frame!r}")
            seen.add(frame)
            T = T_parent_child @ T
        return frame, T

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        root_t, T_root_target = self._to_root(target.lstrip("/"))
        root_s, T_root_source = self._to_root(source.lstrip("/"))
        if root_t != root_s:
            return None
        return np.linalg.inv(T_root_target) @ T_root_source


def _decode(ts: Any, raw: bytes, conn: Any, stamp: int, bag: str | Path, index: int | None) -> Any:
    """Deserialize one message; a corrupt one is a :class:`BagError` naming the bag, the frame (``index``,
    the message's rank on an input topic; None for other topics), the topic and the bag time."""
    try:
        return ts.deserialize_cdr(raw, conn.msgtype)
    except Exception as exc:   # rosbags raises SerdeError, struct.error, IndexError... on damaged bytes
        where = f"frame {index} (message {index} of {conn.topic}" if index is not None else f"a {conn.topic} message ("
        raise BagError(f"{bag}: {where}, bag time {stamp} ns) is corrupt and cannot be decoded as {conn.msgtype} "
                       f"({exc}); re-record or re-convert the bag") from None


def _ground_truth(gt_dir: Path | None, index: int) -> np.ndarray | None:
    if gt_dir is None:
        return None
    from lumde_depth.data.depth_io import read_depth_png

    path = gt_dir / f"{index:010d}.png"
    return read_depth_png(path) if path.is_file() else None


def process_bag(bag_in: str | Path, bag_out: str | Path, pipeline: DepthPipeline, *, image_topic: str | None = None,
                info_topic: str | None = None, points_topic: str | None = None,
                T_cam_lidar: np.ndarray | None = None, lidar_frame: str = "", slop: float | None = None,
                queue_size: int | None = None, exact_sync: bool = False, namespace: str = "", gt_dir: str | Path | None = None,
                storage: str = "mcap", progress: bool = True, log: Callable[[str], None] | None = None
                ) -> ProcessSummary:
    """Copy ``bag_in`` to the new bag ``bag_out`` and add the pipeline's depth topics under ``namespace``.

    ``slop`` / ``queue_size`` default to the node's parameter defaults. ``T_cam_lidar`` (LiDAR ->
    camera optical frame) replaces the bag's ``/tf_static``; it maps clouds from ``lidar_frame`` (empty:
    the first cloud's frame, see :class:`~lumde_depth.ros.extrinsics.FixedExtrinsic`). ``gt_dir``: KITTI
    depth PNGs named by frame index (the n-th image of the bag is frame n), for KITTI metrics of the
    dense depth.
    """
    from tqdm import tqdm

    from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics

    defaults = NodeParams()
    slop = defaults.slop if slop is None else slop
    queue_size = defaults.queue_size if queue_size is None else queue_size
    log = log or (lambda text: print(text, file=sys.stderr))
    bag_out = check_new_bag(bag_out, storage)
    gt_dir = Path(gt_dir) if gt_dir is not None else None
    if gt_dir is not None and not gt_dir.is_dir():
        raise BagError(f"--gt {gt_dir}: not a folder of depth PNGs")
    prefix = "/" + namespace.strip("/") + "/" if namespace.strip("/") else "/"
    ts = typestore()
    summary = ProcessSummary(out=bag_out)
    fixed = None if T_cam_lidar is None else FixedExtrinsic(
        T_cam_lidar, lidar_frame, lambda text: log(f"lumde bag process: {text}"), setting="--lidar-frame ")
    accumulator = MetricAccumulator(kitti_metrics)
    with open_bag(bag_in) as reader:
        inputs = choose_inputs(reader.connections, image_topic, info_topic, points_topic)
        images: dict[int, tuple[int, int]] = {}  # id(image message) -> (frame index, bag time)
        static_tf = StaticTransforms()
        filters, ready = synchronizer(queue_size, slop, exact_sync)
        with new_bag(bag_out, storage) as writer:
            copies = {}
            for conn in reader.connections:
                known = conn.msgtype in ts.types
                copies[conn.id] = writer.add_connection(
                    conn.topic, conn.msgtype, typestore=ts if known else None,
                    msgdef=None if known else conn.msgdef.data, rihs01=None if known else conn.digest,
                    offered_qos_profiles=conn.ext.offered_qos_profiles)
            outputs: dict[str, Any] = {}

            def write_outputs(msgs: dict[str, Any], stamp: int) -> None:
                for name, msg in msgs.items():
                    topic = prefix + name
                    if topic not in outputs:
                        outputs[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
                    writer.write(outputs[topic], stamp, ts.serialize_cdr(msg, msg.__msgtype__))

            total = sum(c.msgcount for c in reader.connections)
            for conn, stamp, raw in tqdm(reader.messages(), total=total, desc=f"bag process {Path(bag_in).name}",
                                         unit="msg", disable=not progress):
                writer.write(copies[conn.id], stamp, raw)
                if conn.topic == "/tf_static":
                    static_tf.add(_decode(ts, raw, conn, stamp, bag_in, None))
                if conn.topic not in inputs:
                    continue
                summary.inputs[conn.topic] = summary.inputs.get(conn.topic, 0) + 1
                msg = _decode(ts, raw, conn, stamp, bag_in, summary.inputs[conn.topic] - 1)
                if conn.topic == inputs[0]:
                    images[id(msg)] = (summary.inputs[conn.topic] - 1, stamp)
                filters[inputs.index(conn.topic)].signalMessage(msg)
                while ready:
                    image, info, cloud = ready.pop(0)
                    index, image_time = images.pop(id(image))
                    summary.sets += 1
                    try:
                        result = _process_set(pipeline, image, info, cloud, fixed or static_tf)
                    except FrameError as exc:
                        summary.errors[exc.kind] = summary.errors.get(exc.kind, 0) + 1
                        log(f"lumde bag process: frame at {convert.stamp_to_ns(image.header.stamp)} skipped "
                            f"({exc.kind}): {exc}")
                        continue
                    write_outputs(convert.frame_messages(result, image.header, info, ts), image_time)
                    summary.written += 1
                    gt = _ground_truth(gt_dir, index)
                    if gt is not None:
                        accumulator.update(result.dense, gt)   # the model's depth, as lumde eval scores it
    summary.metrics, summary.evaluated = accumulator.result(), accumulator.count
    return summary


def synchronizer(queue_size: int, slop: float, exact_sync: bool) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The node's synchronizer policy over (image, camera_info, cloud): feed ``filters[i].signalMessage(msg)``;
    complete sets are appended to the returned list. The package's own synchronizer: it needs no rclpy and
    reads rosbags' stamps (real ``message_filters`` refuses them)."""
    filters = [SimpleFilter() for _ in range(3)]
    sync = counting_synchronizer(filters, queue_size, None if exact_sync else slop, own=True)
    ready: list[tuple[Any, ...]] = []
    sync.registerCallback(lambda *msgs: ready.append(msgs))
    return filters, ready


def set_inputs(image: Any, info: Any, cloud: Any, extrinsic: FixedExtrinsic | StaticTransforms
               ) -> tuple[np.ndarray, CameraModel, np.ndarray, np.ndarray]:
    """``(rgb, camera, xyz, T_cam_lidar)`` of a synchronized set, with the node's checks (:class:`FrameError`).

    ``extrinsic``: the fixed ``T_cam_lidar`` (for clouds of its frame), or the bag's static TF tree to
    look it up in."""
    rgb, camera, xyz = frame_inputs(image, info, cloud)
    if isinstance(extrinsic, FixedExtrinsic):
        return rgb, camera, xyz, extrinsic.for_cloud(cloud.header.frame_id, image.header.frame_id)
    try:
        T = extrinsic.lookup(image.header.frame_id, cloud.header.frame_id)
    except ValueError as exc:
        raise FrameError("no_extrinsic", str(exc)) from None
    if T is None:
        raise FrameError("no_extrinsic", f"no transform {cloud.header.frame_id!r} -> {image.header.frame_id!r} in "
                                         f"the bag's /tf_static: give --T-cam-lidar or --calib")
    return rgb, camera, xyz, T


def _process_set(pipeline: DepthPipeline, image: Any, info: Any, cloud: Any,
                 extrinsic: FixedExtrinsic | StaticTransforms) -> Any:
    """One synchronized (image, camera_info, cloud) set through the pipeline, with the node's checks."""
    return pipeline.process(*set_inputs(image, info, cloud, extrinsic))
