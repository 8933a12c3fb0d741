"""The ROS Python libraries PyPI lacks, real when installed, API-compatible fallbacks otherwise.

``message_filters``, ``cv_bridge``, ``sensor_msgs_py.point_cloud2`` and ``tf_transformations`` exist
on a ROS 2 install but not as wheels. Import them from here::

    from lumde_depth.ros.compat import message_filters, cv_bridge, point_cloud2, tf_transformations

Each name is resolved on first use (so importing this module imports neither rclpy nor the real
libraries) and is chosen by capability, not by a successful import: the real library when it imports
*and* a small probe shows it does the job, otherwise a fallback with the same names and signatures (the
part of the API this package uses) and the real library's semantics. ``message_filters`` is chosen per
class: e.g. a ``Subscriber`` that takes no keyword arguments (``message_filters`` of January 2026) or
none at all (the rolling synchronizer module alone) is replaced by the fallback's, which passes
``event_callbacks`` on, while the real synchronizers stay.

- ``message_filters``: ``SimpleFilter``, ``Subscriber(node, msg_type, topic, qos_profile=10, **kwargs)``,
  ``TimeSynchronizer(fs, queue_size)`` (current upstream: on each message, only the oldest stamp held by
  every queue is emitted, and older queued messages are dropped), ``ApproximateTimeSynchronizer(fs,
  queue_size, slop, allow_headerless=False)`` (the ROS 2 Python policy: on each message, the closest
  stamps within ``slop`` in the other queues; the first combination spanning less than ``slop`` is
  emitted and removed). These classes are also the package's own synchronizers for the offline tools
  (:mod:`lumde_depth.ros.bag_process`): they read any ``header.stamp`` with ``sec`` / ``nanosec``
  (rosbags' too, which the real library refuses) and need no rclpy.
- ``cv_bridge``: ``CvBridge().imgmsg_to_cv2(msg, desired_encoding='passthrough')``,
  ``.cv2_to_imgmsg(arr, encoding='passthrough', header=None)``, ``CvBridgeError``; numpy only.
- ``point_cloud2``: ``read_points``, ``read_points_numpy``, ``read_points_list``, ``dtype_from_fields``,
  ``create_cloud``, ``create_cloud_xyz32`` (Humble+ structured-array API).
- ``tf_transformations``: 4x4 matrix and (x, y, z, w) quaternion helpers over ``transforms3d``.

``FALLBACKS`` maps each library (or ``message_filters`` class) replaced by a fallback in this process to
the reason, e.g. ``{"cv_bridge": "CvBridge cannot convert rgb8 -> bgr8: No module named 'cv2'"}``.
"""
from __future__ import annotations

import importlib
import inspect
import itertools
import sys
import threading
import time
import types
from collections import namedtuple
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lumde_depth.ros import convert

# --------------------------------------------------------------------------------------------------
# message_filters


class SimpleFilter:
    """A filter that passes what it outputs to its registered callbacks (``message_filters.SimpleFilter``)."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable, tuple]] = {}

    def registerCallback(self, cb: Callable, *args: Any) -> int:  # noqa: N802 (ROS API name)
        """Call ``cb(*outputs, *args)`` on each output; returns a connection id."""
        conn = len(self.callbacks)
        self.callbacks[conn] = (cb, args)
        return conn

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802 (ROS API name)
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """A ROS 2 subscription as the first filter of a chain; takes ``node.create_subscription``'s arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.node = args[0]
        self.topic = args[2]
        kwargs.setdefault("qos_profile", 10)
        self.sub = self.node.create_subscription(*args[1:], self.callback, **kwargs)

    def callback(self, msg: Any) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802 (ROS API name)
        return self.topic

    def __getattr__(self, key: str) -> Any:
        if key == "sub":
            raise AttributeError(key)
        return getattr(self.sub, key)


def _now_ns() -> int:
    """ROS time now (the real library stamps headerless messages with ``ROSClock().now()``)."""
    try:
        from rclpy.clock import ROSClock
    except ImportError:
        return time.time_ns()
    return ROSClock().now().nanoseconds


class TimeSynchronizer(SimpleFilter):
    """Emits one message from each input when all inputs hold a message with the same stamp."""

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int) -> None:
        super().__init__()
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.connectInput(fs)

    def connectInput(self, fs: Sequence[SimpleFilter]) -> None:  # noqa: N802 (ROS API name)
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, q, i) for i, (f, q) in enumerate(zip(fs, self.queues))]

    def _enqueue(self, msg: Any, stamp: int, queue: dict[int, Any]) -> None:
        queue[stamp] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        with self.lock:
            self._enqueue(msg, convert.stamp_to_ns(msg.header.stamp), my_queue)
            common = set.intersection(*(set(q) for q in self.queues))
            if not common:
                return
            oldest = min(common)
            msgs = [q.pop(oldest) for q in self.queues]
            for queue in self.queues:   # as upstream (and the C++ policy): older messages can no longer match
                for stamp in [s for s in queue if s < oldest]:
                    del queue[stamp]
            self.signalMessage(*msgs)


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emits one message per input whose stamps lie within ``slop`` seconds of each other."""

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int, slop: float, allow_headerless: bool = False) -> None:
        super().__init__(fs, queue_size)
        self.slop_ns = int(round(float(slop) * 1e9))
        self.allow_headerless = allow_headerless

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        header = getattr(msg, "header", None)
        if header is None or not hasattr(header, "stamp"):
            if not self.allow_headerless:
                print("message_filters (lumde_depth fallback): can not synchronize a message without header stamp "
                      "when allow_headerless is False", file=sys.stderr)
                return
            stamp = _now_ns()
        else:
            stamp = convert.stamp_to_ns(header.stamp)
        with self.lock:
            self._enqueue(msg, stamp, my_queue)
            others = [q for i, q in enumerate(self.queues) if i != my_queue_index] if my_queue_index is not None \
                else self.queues
            candidates = []
            for queue in others:
                near = sorted((s for s in queue if abs(s - stamp) <= self.slop_ns), key=lambda s: abs(s - stamp))
                if not near:
                    return
                candidates.append(near)
            for combo in itertools.product(*candidates):
                stamps = list(combo)
                if my_queue_index is not None:
                    stamps.insert(my_queue_index, stamp)
                if max(stamps) - min(stamps) < self.slop_ns and all(s in q for q, s in zip(self.queues, stamps)):
                    msgs = [q.pop(s) for q, s in zip(self.queues, stamps)]
                    self.signalMessage(*msgs)
                    break


_message_filters_fallback = types.SimpleNamespace(
    SimpleFilter=SimpleFilter, Subscriber=Subscriber, TimeSynchronizer=TimeSynchronizer,
    ApproximateTimeSynchronizer=ApproximateTimeSynchronizer, __name__="lumde_depth.ros.compat.message_filters")

# --------------------------------------------------------------------------------------------------
# cv_bridge


class CvBridgeError(TypeError):
    """Raised when an image cannot be converted (as ``cv_bridge.CvBridgeError``)."""


_NUMPY_TO_CV = {"uint8": "8U", "int8": "8S", "uint16": "16U", "int16": "16S", "int32": "32S", "float32": "32F",
                "float64": "64F"}
# channel order of the colour encodings, as indices into RGBA
_CHANNELS = {"rgb8": (0, 1, 2), "bgr8": (2, 1, 0), "rgba8": (0, 1, 2, 3), "bgra8": (2, 1, 0, 3)}


def _to_rgba(im: np.ndarray, encoding: str) -> np.ndarray:
    if encoding in ("mono8", "8UC1"):
        return np.concatenate([np.repeat(im[..., None], 3, axis=2), np.full(im.shape + (1,), 255, np.uint8)], axis=2)
    order = _CHANNELS[encoding]
    rgba = np.full(im.shape[:2] + (4,), 255, np.uint8)
    rgba[..., list(order)] = im
    return rgba


class CvBridge:
    """numpy-only ``cv_bridge.CvBridge`` for 8-bit colour/mono conversions and passthrough of every type."""

    def imgmsg_to_cv2(self, img_msg: Any, desired_encoding: str = "passthrough") -> np.ndarray:
        """The image as an array (H, W) or (H, W, C) of the encoding's dtype, converted to ``desired_encoding``."""
        try:
            im = np.ascontiguousarray(convert.image_to_array(img_msg))
        except ValueError as exc:
            raise CvBridgeError(str(exc)) from exc
        if desired_encoding in ("passthrough", img_msg.encoding):
            return im
        src = img_msg.encoding
        if src not in (*_CHANNELS, "mono8", "8UC1") or desired_encoding not in (*_CHANNELS, "mono8"):
            raise CvBridgeError(f"[{src}] is not a color format or [{desired_encoding}] is not a supported target; "
                                f"the numpy fallback converts between rgb8, bgr8, rgba8, bgra8 and mono8")
        rgba = _to_rgba(im, src)
        if desired_encoding == "mono8":
            # OpenCV's RGB -> GRAY weights
            grey = rgba[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            return np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgba[..., list(_CHANNELS[desired_encoding])])

    def cv2_to_imgmsg(self, cvim: np.ndarray, encoding: str = "passthrough", header: Any = None) -> Any:
        """A ``sensor_msgs/Image`` of ``cvim``; ``passthrough`` names the encoding after the array type (e.g. 8UC3)."""
        if not isinstance(cvim, (np.ndarray, np.generic)):
            raise TypeError("Your input type is not a numpy array")
        channels = 1 if cvim.ndim < 3 else cvim.shape[2]
        if cvim.dtype.name not in _NUMPY_TO_CV:
            raise CvBridgeError(f"numpy type {cvim.dtype} has no OpenCV equivalent")
        cv_type = f"{_NUMPY_TO_CV[cvim.dtype.name]}C{channels}"
        if encoding == "passthrough":
            encoding = cv_type
        else:
            dtype, n = convert.encoding_format(encoding)
            if f"{_NUMPY_TO_CV[dtype.name]}C{n}" != cv_type:
                raise CvBridgeError(f"encoding specified as {encoding}, but image has incompatible type {cv_type}")
        if header is None:
            header = convert.message_class("std_msgs/msg/Header")()
        return convert.numpy_to_image(cvim.reshape(cvim.shape[:2]) if channels == 1 else cvim, encoding, header)


_cv_bridge_fallback = types.SimpleNamespace(CvBridge=CvBridge, CvBridgeError=CvBridgeError,
                                            __name__="lumde_depth.ros.compat.cv_bridge")

# --------------------------------------------------------------------------------------------------
# sensor_msgs_py.point_cloud2

DUMMY_FIELD_PREFIX = "unnamed_field"


def dtype_from_fields(fields: Iterable[Any], point_step: int | None = None) -> np.dtype:
    """Structured dtype (native byte order) of a point: unnamed fields become ``unnamed_field_i``,
    ``count > 1`` fields ``name_0 .. name_{count-1}``."""
    return convert.cloud_dtype(list(fields), point_step, is_bigendian=sys.byteorder == "big")


def read_points(cloud: Any, field_names: Sequence[str] | None = None, skip_nans: bool = False,
                uvs: Iterable | None = None, reshape_organized_cloud: bool = False) -> np.ndarray:
    """Points of a PointCloud2 as a structured numpy array (row padding honoured, values in the cloud's byte order)."""
    points = convert.cloud_to_structured(cloud).reshape(-1)
    if field_names is not None:
        missing = [n for n in field_names if n not in points.dtype.names]
        if missing:
            raise AssertionError(f"Requests field is not in the fields of the PointCloud! ({missing})")
        points = points[list(field_names)]
    if skip_nans and not cloud.is_dense:
        keep = np.ones(len(points), dtype=bool)
        for name in points.dtype.names:
            if points.dtype.fields[name][0].kind == "f":
                keep &= ~np.isnan(points[name])
        points = points[keep]
    if uvs is not None:
        points = points[uvs if isinstance(uvs, np.ndarray) else np.fromiter(uvs, int)]
    if reshape_organized_cloud and cloud.height > 1:
        points = points.reshape(cloud.height, cloud.width)
    return points


def read_points_numpy(cloud: Any, field_names: Sequence[str] | None = None, skip_nans: bool = False,
                      uvs: Iterable | None = None, reshape_organized_cloud: bool = False) -> np.ndarray:
    """Equally typed fields of a PointCloud2 as an unstructured (N, fields) array."""
    from numpy.lib.recfunctions import structured_to_unstructured

    chosen = [f for f in cloud.fields if field_names is None or f.name in field_names]
    if any(f.datatype != chosen[0].datatype for f in chosen[1:]):
        raise AssertionError("All fields need to have the same datatype. Use `read_points()` otherwise.")
    return structured_to_unstructured(read_points(cloud, field_names, skip_nans, uvs, reshape_organized_cloud))


def read_points_list(cloud: Any, field_names: Sequence[str] | None = None, skip_nans: bool = False,
                     uvs: Iterable | None = None) -> list:
    """Points as a list of namedtuples (slow; for small clouds)."""
    if field_names is None:
        field_names = [f.name for f in cloud.fields]
    point = namedtuple("Point", field_names)
    return [point._make(p) for p in read_points(cloud, field_names, skip_nans, uvs)]


def create_cloud(header: Any, fields: Sequence[Any], points: Any, point_step: int | None = None) -> Any:
    """A PointCloud2 from a structured array, an unstructured one of the fields' common type, or an iterable."""
    dtype = dtype_from_fields(fields, point_step)
    if isinstance(points, np.ndarray):
        if points.dtype.names is None:
            from numpy.lib.recfunctions import unstructured_to_structured

            if any(f.datatype != fields[0].datatype for f in fields[1:]):
                raise AssertionError("All fields need to have the same datatype. Pass a structured NumPy array "
                                     "with multiple dtypes otherwise.")
            points = unstructured_to_structured(points, dtype=dtype)
        elif points.dtype != dtype:
            raise AssertionError("PointFields and structured NumPy array dtype do not match for all fields! "
                                 "Check their field order, names and types.")
    else:
        points = np.array(list(map(tuple, points)), dtype=dtype)
    if points.ndim > 2:
        raise AssertionError("Too many dimensions for organized cloud! Points can only be organized in max. "
                             "two dimensional space")
    return convert.structured_to_cloud(points, header, fields=list(fields), is_dense=False)


def create_cloud_xyz32(header: Any, points: Any) -> Any:
    """A PointCloud2 with float32 x, y, z from (N, 3) points."""
    fields = [convert.make_point_field(n, 4 * i, 7) for i, n in enumerate("xyz")]
    return create_cloud(header, fields, points)


_point_cloud2_fallback = types.SimpleNamespace(
    read_points=read_points, read_points_numpy=read_points_numpy, read_points_list=read_points_list,
    dtype_from_fields=dtype_from_fields, create_cloud=create_cloud, create_cloud_xyz32=create_cloud_xyz32,
    DUMMY_FIELD_PREFIX=DUMMY_FIELD_PREFIX, __name__="lumde_depth.ros.compat.point_cloud2")

# --------------------------------------------------------------------------------------------------
# tf_transformations (quaternions are (x, y, z, w), matrices 4x4 homogeneous)


def _tf_fallback() -> types.SimpleNamespace:
    import transforms3d

    def xyzw(q_wxyz: np.ndarray) -> np.ndarray:
        return np.asarray([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]], dtype=np.float64)

    def wxyz(q_xyzw: Sequence[float]) -> np.ndarray:
        return np.asarray([q_xyzw[3], q_xyzw[0], q_xyzw[1], q_xyzw[2]], dtype=np.float64)

    def affine(rotation: np.ndarray | None = None, translation: Sequence[float] | None = None) -> np.ndarray:
        m = np.eye(4)
        if rotation is not None:
            m[:3, :3] = rotation
        if translation is not None:
            m[:3, 3] = translation
        return m

    def identity_matrix() -> np.ndarray:
        return np.eye(4)

    def translation_matrix(direction: Sequence[float]) -> np.ndarray:
        return affine(translation=np.asarray(direction, float)[:3])

    def translation_from_matrix(matrix: np.ndarray) -> np.ndarray:
        return np.array(matrix, dtype=np.float64, copy=True)[:3, 3]

    def quaternion_matrix(quaternion: Sequence[float]) -> np.ndarray:
        return affine(rotation=transforms3d.quaternions.quat2mat(wxyz(quaternion)))

    def quaternion_from_matrix(matrix: np.ndarray) -> np.ndarray:
        return xyzw(transforms3d.quaternions.mat2quat(np.asarray(matrix, float)[:3, :3]))

    def euler_matrix(ai: float, aj: float, ak: float, axes: str = "sxyz") -> np.ndarray:
        return affine(rotation=transforms3d.euler.euler2mat(ai, aj, ak, axes))

    def euler_from_matrix(matrix: np.ndarray, axes: str = "sxyz") -> tuple[float, float, float]:
        return transforms3d.euler.mat2euler(np.asarray(matrix, float)[:3, :3], axes)

    def euler_from_quaternion(quaternion: Sequence[float], axes: str = "sxyz") -> tuple[float, float, float]:
        return transforms3d.euler.quat2euler(wxyz(quaternion), axes)

    def quaternion_from_euler(ai: float, aj: float, ak: float, axes: str = "sxyz") -> np.ndarray:
        return xyzw(transforms3d.euler.euler2quat(ai, aj, ak, axes))

    def quaternion_multiply(quaternion1: Sequence[float], quaternion0: Sequence[float]) -> np.ndarray:
        return xyzw(transforms3d.quaternions.qmult(wxyz(quaternion1), wxyz(quaternion0)))

    def quaternion_inverse(quaternion: Sequence[float]) -> np.ndarray:
        return xyzw(transforms3d.quaternions.qinverse(wxyz(quaternion)))

    def quaternion_conjugate(quaternion: Sequence[float]) -> np.ndarray:
        return xyzw(transforms3d.quaternions.qconjugate(wxyz(quaternion)))

    def inverse_matrix(matrix: np.ndarray) -> np.ndarray:
        return np.linalg.inv(matrix)

    def concatenate_matrices(*matrices: np.ndarray) -> np.ndarray:
        m = np.eye(4)
        for other in matrices:
            m = m @ other
        return m

    return types.SimpleNamespace(**{f.__name__: f for f in (
        identity_matrix, translation_matrix, translation_from_matrix, quaternion_matrix, quaternion_from_matrix,
        euler_matrix, euler_from_matrix, euler_from_quaternion, quaternion_from_euler, quaternion_multiply,
        quaternion_inverse, quaternion_conjugate, inverse_matrix, concatenate_matrices)},
        __name__="lumde_depth.ros.compat.tf_transformations")


# --------------------------------------------------------------------------------------------------
# choosing real or fallback, by what the real library can do

FALLBACKS: dict[str, str] = {}


def _stamped(sec: int, nanosec: int = 0) -> Any:
    """A message with an rclpy ``header.stamp`` (what the real synchronizers accept)."""
    from std_msgs.msg import Header

    header = Header()
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return types.SimpleNamespace(header=header)


def _sync_problem(real: Any, name: str) -> str | None:
    """None when ``real.<name>`` synchronizes two inputs as :mod:`lumde_depth.ros.sync` needs (``queues``,
    ``add(msg, my_queue, my_queue_index)``, one emitted set), else what is wrong."""
    cls = getattr(real, name, None)
    if cls is None:
        return f"it has no {name}"
    inputs = [SimpleFilter(), SimpleFilter()]
    sync = cls(inputs, 2) if name == "TimeSynchronizer" else cls(inputs, 2, 0.05)
    if not isinstance(getattr(sync, "queues", None), list) or \
            "my_queue_index" not in inspect.signature(sync.add).parameters:
        return f"its {name} has no per-input queues / add(msg, my_queue, my_queue_index)"
    emitted: list[tuple] = []
    sync.registerCallback(lambda *msgs: emitted.append(msgs))
    inputs[0].signalMessage(_stamped(1))
    inputs[1].signalMessage(_stamped(1, 0 if name == "TimeSynchronizer" else 10_000_000))
    return None if len(emitted) == 1 else f"its {name} did not pair two messages of matching stamps"


def _subscriber_problem(real: Any) -> str | None:
    cls = getattr(real, "Subscriber", None)
    if cls is None:
        return "it has no Subscriber"
    kinds = {p.kind for p in inspect.signature(cls.__init__).parameters.values()}
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        return "its Subscriber takes no keyword arguments (event_callbacks cannot be passed on)"
    return None


def _message_filters() -> Any:
    """The real ``message_filters`` where every class this package uses works, else a namespace mixing the
    real classes that work with the fallback's for the others (each replaced class in FALLBACKS)."""
    try:
        real = importlib.import_module("message_filters")
    except ImportError as exc:
        FALLBACKS["message_filters"] = f"not installed ({exc})"
        return _message_filters_fallback
    problems = {"SimpleFilter": None if hasattr(real, "SimpleFilter") else "it has no SimpleFilter",
                "Subscriber": _subscriber_problem(real)}
    for name in ("TimeSynchronizer", "ApproximateTimeSynchronizer"):
        try:
            problems[name] = _sync_problem(real, name)
        except Exception as exc:   # noqa: BLE001 (any failure of the probe means it cannot do the job)
            problems[name] = f"its {name} failed a two-input probe: {exc!r}"
    if not any(problems.values()):
        return real
    chosen = {}
    for name, problem in problems.items():
        if problem:
            FALLBACKS[f"message_filters.{name}"] = problem
        chosen[name] = getattr(_message_filters_fallback if problem else real, name)
    return types.SimpleNamespace(**chosen, __name__="lumde_depth.ros.compat.message_filters")


def _cv_bridge_problem(real: Any) -> str | None:
    """None when ``CvBridge`` converts rgb8 -> bgr8 (a real conversion needs cv2 and cv_bridge_boost)."""
    bridge = real.CvBridge()
    rgb = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    bgr = bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(rgb, "rgb8"), "bgr8")
    return None if np.array_equal(bgr, rgb[..., ::-1]) else "CvBridge converted rgb8 -> bgr8 wrongly"


def _point_cloud2_problem(real: Any) -> str | None:
    """None when it has the Humble+ structured-array API and round-trips an xyz cloud."""
    missing = [n for n in vars(_point_cloud2_fallback) if not n.startswith("__") and not hasattr(real, n)]
    if missing:
        return f"it lacks {', '.join(missing)} (the Humble+ API)"
    from std_msgs.msg import Header

    xyz = np.array([[1.0, 2.0, 3.0]], np.float32)
    back = real.read_points_numpy(real.create_cloud_xyz32(Header(), xyz))
    return None if np.array_equal(back, xyz) else "create_cloud_xyz32 / read_points_numpy do not round-trip"


def _tf_problem(real: Any) -> str | None:
    missing = [n for n in vars(_tf_fallback()) if not n.startswith("__") and not hasattr(real, n)]
    if missing:
        return f"it lacks {', '.join(missing)}"
    ok = np.allclose(real.quaternion_matrix([0.0, 0.0, 0.0, 1.0]), np.eye(4))
    return None if ok else "quaternion_matrix of the identity quaternion is not the identity"


def _real_or_fallback(module: str, name: str, fallback: Callable[[], Any], problem: Callable[[Any], str | None]
                      ) -> Any:
    """The real ``module`` when it imports and ``problem(real)`` finds nothing wrong, else ``fallback()``
    (and the reason recorded in :data:`FALLBACKS` under ``name``)."""
    try:
        real = importlib.import_module(module)
    except ImportError as exc:
        reason = f"not installed ({exc})"
    else:
        try:
            reason = problem(real)
        except Exception as exc:   # noqa: BLE001 (a probe that fails: the library cannot do the job)
            reason = f"its probe failed: {type(exc).__name__}: {exc}"
    if reason is None:
        return real
    FALLBACKS[name] = reason
    return fallback()


_RESOLVERS: dict[str, Callable[[], Any]] = {
    "message_filters": _message_filters,
    "cv_bridge": lambda: _real_or_fallback("cv_bridge", "cv_bridge", lambda: _cv_bridge_fallback, _cv_bridge_problem),
    "point_cloud2": lambda: _real_or_fallback("sensor_msgs_py.point_cloud2", "sensor_msgs_py.point_cloud2",
                                              lambda: _point_cloud2_fallback, _point_cloud2_problem),
    "tf_transformations": lambda: _real_or_fallback("tf_transformations", "tf_transformations", _tf_fallback,
                                                    _tf_problem),
}


def __getattr__(name: str) -> Any:
    """``message_filters``, ``cv_bridge``, ``point_cloud2``, ``tf_transformations``: resolved on first use."""
    if name not in _RESOLVERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = _RESOLVERS[name]()
    return value
