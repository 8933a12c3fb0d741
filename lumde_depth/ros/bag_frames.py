"""A ROS 1 or ROS 2 bag as a :class:`~lumde_depth.data.recording.Recording` (what ``lumde adapt`` trains on).

The bag is read with ``rosbags``' ``AnyReader`` (ROS 1 ``.bag`` files and ROS 2 bag folders, no ROS
install). Image, camera_info and LiDAR cloud go through the node's synchronizer and checks
(:func:`~lumde_depth.ros.bag_process.synchronizer`, :func:`~lumde_depth.ros.bag_process.set_inputs`);
the cloud is projected with the camera_info's ``P`` (a raw image's through ``K`` and ``D``:
:func:`~lumde_depth.ros.pipeline.project_cloud`),
so a frame is what the node would have completed. The extrinsic comes from the bag's ``/tf_static``
or is given. A bad set is skipped, counted by kind and logged, as ``lumde bag process`` does.

Camera poses (``RigFrame.T_world_cam``, for ``lumde adapt``'s photometric term) come from ``/tf``: the
image's frame is followed up the tree (``/tf_static`` edges as they are, ``/tf`` edges interpolated at the
image's stamp) to its root, e.g. kitti2bag's ``camera_color_left -> velo_link -> imu_link -> base_link ->
world``; a frame whose chain holds no ``/tf`` edge, or whose stamp lies outside one of them, has none.

Frames are kept in memory (the image, and the projected points as coordinates): a bag with more than
``max_frames`` synchronized sets is thinned to every n-th set.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from transforms3d.axangles import axangle2mat, mat2axangle

from lumde_depth.data.recording import Recording
from lumde_depth.data.rig_frame import RigFrame
from lumde_depth.geometry import CameraModel, pixel_indices
from lumde_depth.ros import convert
from lumde_depth.ros.bag_io import BagError
from lumde_depth.ros.bag_process import StaticTransforms, choose_inputs, set_inputs, synchronizer
from lumde_depth.ros.extrinsics import FixedExtrinsic, transform_to_matrix
from lumde_depth.ros.params import NodeParams
from lumde_depth.ros.pipeline import FrameError, project_cloud


class MovingTransforms:
    """The ``/tf`` edges of a bag over time; :meth:`pose` chains them with the static tree."""

    def __init__(self) -> None:
        self.edges: dict[str, tuple[str, list[int], list[np.ndarray]]] = {}

    def add(self, tf_message: Any) -> None:
        for tr in tf_message.transforms:
            parent, stamps, poses = self.edges.setdefault(tr.child_frame_id.lstrip("/"),
                                                          (tr.header.frame_id.lstrip("/"), [], []))
            stamps.append(convert.stamp_to_ns(tr.header.stamp))
            poses.append(np.asarray(transform_to_matrix(tr.transform), dtype=np.float64))

    def _at(self, child: str, stamp: int) -> np.ndarray | None:
        """``T_parent_child`` at ``stamp``: translation linear, rotation along the geodesic between the two
        transforms around it (extrapolated by at most one interval before the first / after the last)."""
        _, stamps, poses = self.edges[child]
        if len(stamps) < 2:
            return None
        order = np.argsort(stamps, kind="stable")
        times = np.asarray(stamps, np.int64)[order]
        right = int(np.clip(np.searchsorted(times, stamp), 1, len(times) - 1))
        a, b = times[right - 1], times[right]
        if b == a or stamp < a - (b - a) or stamp > b + (b - a):
            return None
        alpha = (stamp - a) / (b - a)
        A, B = poses[order[right - 1]], poses[order[right]]
        axis, angle = mat2axangle(A[:3, :3].T @ B[:3, :3], unit_thresh=1e-5)
        T = np.eye(4)
        T[:3, :3] = A[:3, :3] @ axangle2mat(axis, alpha * angle)
        T[:3, 3] = A[:3, 3] + alpha * (B[:3, 3] - A[:3, 3])
        return T

    def pose(self, frame: str, stamp: int, static: StaticTransforms) -> np.ndarray | None:
        """``T_root_frame`` at ``stamp`` through static and moving edges, or None without a moving one."""
        T, moved, seen = np.eye(4), False, {frame}
        while True:
            if frame in static.parent:
                parent, T_parent_frame = static.parent[frame]
            elif frame in self.edges:
                parent, moved = self.edges[frame][0], True
                T_parent_frame = self._at(frame, stamp)
                if T_parent_frame is None:
                    return None
            else:
                return T if moved else None
            if parent in seen:
                raise ValueError(f"/tf has a cycle through {parent!r}")
            seen.add(parent)
            T, frame = T_parent_frame @ T, parent


def _open(path: Path) -> Any:
    from rosbags.highlevel import AnyReader, AnyReaderError

    if not path.exists():
        raise BagError(f"{path}: no such bag (give a ROS 2 bag folder holding metadata.yaml, or a ROS 1 .bag file)")
    try:
        reader = AnyReader([path])
        reader.open()
    except (AnyReaderError, FileNotFoundError, ValueError) as exc:
        raise BagError(f"{path}: not a readable ROS 1 / ROS 2 bag ({exc})") from None
    return reader


def bag_recording(bag: str | Path, *, image_topic: str | None = None, info_topic: str | None = None,
                  points_topic: str | None = None, T_cam_lidar: np.ndarray | None = None, lidar_frame: str = "",
                  slop: float | None = None, queue_size: int | None = None, exact_sync: bool = False,
                  max_frames: int = 300, log: Callable[[str], None] | None = None) -> Recording:
    """The synchronized frames of a bag. Topics default to kitti2bag's names, else the only topic of each
    type (as ``lumde bag process``); ``T_cam_lidar`` replaces the bag's ``/tf_static``, for clouds in
    ``lidar_frame`` (empty: the first cloud's frame; see :class:`~lumde_depth.ros.extrinsics.FixedExtrinsic`)."""
    path = Path(bag)
    log = log or (lambda text: print(text, file=sys.stderr))
    defaults = NodeParams()
    slop = defaults.slop if slop is None else slop
    queue_size = defaults.queue_size if queue_size is None else queue_size
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    reader = _open(path)
    frames: list[tuple[Any, ...]] = []
    skipped: dict[str, int] = {}
    try:
        inputs = choose_inputs(reader.connections, image_topic, info_topic, points_topic)
        images = sum(c.msgcount for c in reader.connections if c.topic == inputs[0])
        stride = max(1, math.ceil(images / max_frames))
        filters, ready = synchronizer(queue_size, slop, exact_sync)
        static_tf, moving_tf = StaticTransforms(), MovingTransforms()
        extrinsic = static_tf if T_cam_lidar is None else FixedExtrinsic(
            T_cam_lidar, lidar_frame, lambda text: log(f"lumde adapt: {path.name}: {text}"), setting="--lidar-frame ")
        wanted = [c for c in reader.connections if c.topic in (*inputs, "/tf_static", "/tf")]
        counts = dict.fromkeys(inputs, 0)
        sets = 0
        for conn, stamp, raw in reader.messages(connections=wanted):
            msg = _deserialize(reader, raw, conn, stamp, path, counts.get(conn.topic))
            if conn.topic == "/tf_static":
                static_tf.add(msg)
                continue
            if conn.topic == "/tf":
                moving_tf.add(msg)
                continue
            counts[conn.topic] += 1
            filters[inputs.index(conn.topic)].signalMessage(msg)
            while ready:
                image, info, cloud = ready.pop(0)
                sets += 1
                if (sets - 1) % stride:
                    continue
                try:
                    rgb, camera, xyz, T = set_inputs(image, info, cloud, extrinsic)
                    sparse = project_cloud(xyz, T, camera)
                except FrameError as exc:
                    skipped[exc.kind] = skipped.get(exc.kind, 0) + 1
                    log(f"lumde adapt: {path.name}: frame at {convert.stamp_to_ns(image.header.stamp)} ns skipped "
                        f"({exc.kind}): {exc}")
                    continue
                rows, cols = pixel_indices(sparse > 0)
                stamp = convert.stamp_to_ns(image.header.stamp)
                frames.append((rgb, camera, np.stack([rows, cols]).astype(np.int32), sparse[rows, cols],
                               path.name, inputs[0], stamp, image.header.frame_id.lstrip("/")))
    finally:
        reader.close()
    if not frames:
        raise BagError(f"{path}: no usable synchronized (image, camera_info, points) set on {', '.join(inputs)}"
                       + (f" (skipped: {skipped})" if skipped else
                          f" (messages: {counts}; are the stamps within slop={slop} s?)"))
    if skipped:
        log(f"lumde adapt: {path.name}: {len(frames)} frames read, skipped {skipped}")
    return Recording(str(path), [_loader(*frame[:-1], moving_tf.pose(frame[-1], frame[-2], static_tf))
                                 for frame in frames])


def _loader(rgb: np.ndarray, model: CameraModel, pixels: np.ndarray, depth: np.ndarray, scene: str, camera: str,
            stamp: int, T_world_cam: np.ndarray | None) -> Callable[[], RigFrame]:
    def load() -> RigFrame:
        sparse = np.zeros(rgb.shape[:2], np.float32)
        sparse[pixels[0], pixels[1]] = depth
        return RigFrame(rgb=rgb, depth=sparse, K=model.K, scene=scene, camera=camera, name=f"{scene}/{stamp}",
                        stamp_ns=stamp, D=model.D, distortion_model=model.distortion_model, T_world_cam=T_world_cam)
    return load


def _deserialize(reader: Any, raw: bytes, conn: Any, stamp: int, bag: Path, index: int | None) -> Any:
    try:
        return reader.deserialize(raw, conn.msgtype)
    except Exception as exc:   # rosbags raises SerdeError, struct.error, IndexError... on damaged bytes
        where = f"message {index} of {conn.topic}" if index is not None else f"a {conn.topic} message"
        raise BagError(f"{bag}: {where} (bag time {stamp} ns) is corrupt and cannot be decoded as {conn.msgtype} "
                       f"({exc}); re-record or re-convert the bag") from None
