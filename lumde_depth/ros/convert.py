"""ROS messages <-> numpy, duck-typed on the message fields.

Readers work on rclpy messages and on ``rosbags`` messages alike (they only read fields and take the
``data`` buffer without copying). Builders take ``typestore=None`` (build rclpy messages from the
installed ``sensor_msgs`` / ``std_msgs`` packages) or a ``rosbags`` typestore (build that store's
dataclasses, ready for ``typestore.serialize_cdr``), so the node and the bag tools share one code path.
"""
from __future__ import annotations

import array
import copy
import importlib
import io
import re
import sys
from typing import Any, Container, Iterator

import numpy as np

from lumde_depth.geometry import XYZRGB, calibration_from_camera_info, pack_rgb

# PointField datatype codes (sensor_msgs/msg/PointField) <-> numpy kinds.
POINTFIELD_DTYPES: dict[int, str] = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
DTYPE_POINTFIELDS: dict[str, int] = {v: k for k, v in POINTFIELD_DTYPES.items()}

# Named image encodings (sensor_msgs/image_encodings.h) -> (numpy kind, channels).
NAMED_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
    "mono8": ("u1", 1), "mono16": ("u2", 1),
    "rgb16": ("u2", 3), "bgr16": ("u2", 3), "rgba16": ("u2", 4), "bgra16": ("u2", 4),
}
_GENERIC_ENCODING = re.compile(r"^(8|16|32|64)(U|S|F)C([1-4])$")
_GENERIC_KIND = {("8", "U"): "u1", ("8", "S"): "i1", ("16", "U"): "u2", ("16", "S"): "i2",
                 ("32", "S"): "i4", ("32", "F"): "f4", ("64", "F"): "f8"}
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
CAMERA_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")   # what image_to_rgb (the node's camera input) takes


def encoding_format(encoding: str) -> tuple[np.dtype, int]:
    """(dtype, channels) of an image encoding: the named ones and the generic ``{8,16,32,64}{U,S,F}C{1..4}``."""
    if encoding in NAMED_ENCODINGS:
        kind, channels = NAMED_ENCODINGS[encoding]
        return np.dtype(kind), channels
    match = _GENERIC_ENCODING.match(encoding)
    if match and (match[1], match[2]) in _GENERIC_KIND:
        return np.dtype(_GENERIC_KIND[(match[1], match[2])]), int(match[3])
    raise ValueError(f"unsupported image encoding {encoding!r}: use one of {', '.join(NAMED_ENCODINGS)} "
                     f"or a generic one like 8UC3, 16UC1, 32FC1")


def _buffer(data: Any) -> memoryview:
    """The bytes of a message's ``data`` field (bytes, array.array('B'), list, or a numpy array) without copying."""
    if isinstance(data, np.ndarray):
        return memoryview(np.ascontiguousarray(data).view(np.uint8).reshape(-1))
    if isinstance(data, (list, tuple)):
        return memoryview(bytes(data))
    return memoryview(data).cast("B")


# --------------------------------------------------------------------------------------------------
# message classes and headers


def message_class(name: str, typestore: Any = None) -> type:
    """Class of ROS type ``name`` (``"sensor_msgs/msg/Image"``): from ``typestore`` or the installed Python package."""
    if typestore is not None:
        try:
            return typestore.types[name]
        except KeyError:
            raise ValueError(f"message type {name!r} is not in the rosbags typestore") from None
    package, _, cls = name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), cls)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"ROS message type {name!r} is not importable ({exc}): source a ROS 2 install that has "
                          f"{package}, or pip install ros-{package.replace('_', '-')} where PyPI has it") from exc


def _is_rosbags(cls: type) -> bool:
    return hasattr(cls, "__msgtype__")


def with_data(cls: type, buf: np.ndarray | bytes, **fields: Any) -> Any:
    """``cls(**fields)`` with its ``uint8[]`` field ``data`` taken from ``buf`` in a single copy.

    rosbags messages get a numpy view; rclpy messages are built empty and their ``array('B')`` is
    filled in place, because rclpy's constructor and ``data`` setter would each copy a large buffer
    again (three copies of a 7 MB organized cloud cost tens of milliseconds per frame).
    """
    flat = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, bytes) else \
        np.ascontiguousarray(buf).view(np.uint8).reshape(-1)
    if _is_rosbags(cls):
        return cls(**fields, data=flat)
    msg = cls(**fields)
    msg.data.frombytes(memoryview(flat))
    return msg


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (rclpy or rosbags)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def make_stamp(ns: int, typestore: Any = None) -> Any:
    time_cls = message_class("builtin_interfaces/msg/Time", typestore)
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return time_cls(sec=sec, nanosec=nanosec)


def make_header(stamp_ns: int, frame_id: str, typestore: Any = None) -> Any:
    """A ``std_msgs/Header`` with the stamp in nanoseconds."""
    return message_class("std_msgs/msg/Header", typestore)(stamp=make_stamp(stamp_ns, typestore), frame_id=frame_id)


# --------------------------------------------------------------------------------------------------
# images


def image_to_array(msg: Any) -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image`` in the message's own channel order: (H, W) or (H, W, C), native byte order.

    Honours ``step`` (row padding) and ``is_bigendian``. The result is a read-only view of the message
    buffer when no byte swap is needed.
    """
    dtype, channels = encoding_format(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"image is empty ({width}x{height}); the publisher sent no pixels")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"image step {step} is smaller than width*bytes_per_pixel = {row_bytes} "
                         f"({width} px x {channels * dtype.itemsize} B, encoding {msg.encoding}); the message is malformed")
    buf = _buffer(msg.data)
    needed = step * (height - 1) + row_bytes
    if len(buf) < needed:
        raise ValueError(f"image data has {len(buf)} bytes but {width}x{height} {msg.encoding} with step {step} "
                         f"needs {needed}; the message is truncated")
    dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ndarray(shape=(height, width, channels), dtype=dtype, buffer=buf,
                     strides=(step, channels * dtype.itemsize, dtype.itemsize))
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr[..., 0] if channels == 1 else arr


def image_to_numpy(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` as numpy: colour encodings -> (H, W, 3) uint8 RGB; one-channel ones -> (H, W).

    One-channel images keep their dtype (mono8 -> uint8, 16UC1/mono16 -> uint16, 32FC1 -> float32).
    """
    arr = image_to_array(msg)
    encoding = msg.encoding
    if encoding in COLOUR_ENCODINGS:
        # three plane copies into a fresh C-contiguous array: ~10x faster than ascontiguousarray(arr[..., ::-1])
        order = (0, 1, 2) if encoding in ("rgb8", "rgba8") else (2, 1, 0)
        out = np.empty(arr.shape[:2] + (3,), dtype=np.uint8)
        for channel, source in enumerate(order):
            out[..., channel] = arr[..., source]
        return out
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    raise ValueError(f"image encoding {encoding!r} is neither colour ({', '.join(COLOUR_ENCODINGS)}) nor one channel: "
                     f"convert it to one of those, or read its channels with image_to_array")


def image_to_rgb(msg: Any) -> np.ndarray:
    """A camera frame (``Image`` in rgb8/bgr8/rgba8/bgra8/mono8, or ``CompressedImage``) as (H, W, 3) uint8 RGB.

    Grey images are replicated to three channels; anything else (depth, 16-bit) is a ValueError.
    """
    compressed = hasattr(msg, "format") and not hasattr(msg, "encoding")
    if not compressed and msg.encoding not in CAMERA_ENCODINGS:
        raise ValueError(f"image encoding {msg.encoding!r} is not accepted on the camera input: publish "
                         f"{', '.join(CAMERA_ENCODINGS[:-1])} or {CAMERA_ENCODINGS[-1]}"
                         + (" (debayer first, e.g. with image_proc)" if msg.encoding.startswith("bayer") else ""))
    image = compressed_to_numpy(msg) if compressed else image_to_numpy(msg)
    if image.ndim == 2 and image.dtype == np.uint8:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"compressed image (format {msg.format!r}) is not 8-bit colour or grey: publish jpeg or "
                         "8-bit png (rgb8, bgr8 or mono8 before compression)")
    return image


def numpy_to_image(arr: np.ndarray, encoding: str, header: Any, typestore: Any = None) -> Any:
    """A ``sensor_msgs/Image`` holding ``arr`` (H, W) or (H, W, C), which must match ``encoding``'s dtype and channels."""
    dtype, channels = encoding_format(encoding)
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != channels) or (arr.ndim == 2 and channels != 1):
        raise ValueError(f"array of shape {arr.shape} does not fit encoding {encoding!r}, which needs "
                         f"{'(H, W)' if channels == 1 else f'(H, W, {channels})'}")
    if arr.dtype != dtype:
        raise ValueError(f"array dtype {arr.dtype} does not fit encoding {encoding!r}, which needs {dtype}; "
                         f"convert with arr.astype(np.{dtype.name}) first")
    height, width = arr.shape[:2]
    cls = message_class("sensor_msgs/msg/Image", typestore)
    return with_data(cls, arr, header=header, height=height, width=width, encoding=encoding,
                     is_bigendian=int(sys.byteorder == "big" and dtype.itemsize > 1),
                     step=width * channels * dtype.itemsize)


def compressed_to_numpy(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (jpeg / png, and image_transport's ``compressedDepth``) as numpy.

    Colour -> (H, W, 3) uint8 RGB, grey -> (H, W) uint8, 16-bit png -> (H, W) uint16, compressedDepth
    32FC1 -> (H, W) float32 metres (NaN where the depth is missing).
    """
    from PIL import Image as PILImage

    raw = bytes(_buffer(msg.data))
    fmt = str(msg.format)
    depth_header = None
    if "compressedDepth" in fmt:
        if len(raw) < 12:
            raise ValueError(f"compressedDepth image has {len(raw)} bytes, shorter than its 12-byte header")
        depth_header, raw = np.frombuffer(raw[:12], dtype="<f4")[1:], raw[12:]
    try:
        with PILImage.open(io.BytesIO(raw)) as img:
            img.load()
            if img.mode.startswith("I"):
                arr = np.asarray(img).astype(np.uint16)
            elif img.mode in ("L", "1"):
                arr = np.asarray(img.convert("L"))
            else:
                arr = np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"compressed image (format {fmt!r}) cannot be decoded: {exc}") from exc
    if depth_header is not None and fmt.split(";")[0].strip() == "32FC1":
        quant_a, quant_b = float(depth_header[0]), float(depth_header[1])
        values = arr.astype(np.float32)
        with np.errstate(divide="ignore"):
            depth = quant_a / (values - quant_b)
        return np.where(arr > 0, depth, np.nan).astype(np.float32)
    return arr


# --------------------------------------------------------------------------------------------------
# point clouds


def cloud_dtype(fields: Any, point_step: int | None = None, is_bigendian: bool = False) -> np.dtype:
    """Structured numpy dtype of one point from a list of ``PointField`` (any offsets; ``itemsize = point_step``).

    Names follow ``sensor_msgs_py.point_cloud2.dtype_from_fields``: an unnamed field ``i`` becomes
    ``unnamed_field_i`` and a field with ``count > 1`` becomes ``name_0 .. name_{count-1}``.
    """
    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    for i, field in enumerate(fields):
        name = field.name or f"unnamed_field_{i}"
        if field.datatype not in POINTFIELD_DTYPES:
            raise ValueError(f"point field {name!r} has unknown datatype {field.datatype} (valid: 1..8)")
        if field.count <= 0:
            raise ValueError(f"point field {name!r} has count {field.count}; it must be at least 1")
        kind = np.dtype(order + POINTFIELD_DTYPES[field.datatype])
        for a in range(field.count):
            sub = f"{name}_{a}" if field.count > 1 else name
            if sub in names:
                raise ValueError(f"point field {sub!r} appears twice in the cloud's fields")
            names.append(sub)
            formats.append(kind)
            offsets.append(int(field.offset) + a * kind.itemsize)
    spec = {"names": names, "formats": formats, "offsets": offsets}
    if point_step is not None:
        spec["itemsize"] = int(point_step)
    try:
        return np.dtype(spec)
    except ValueError as exc:
        raise ValueError(f"point fields {names} at offsets {offsets} do not fit point_step {point_step}: {exc}") from exc


def cloud_to_structured(msg: Any) -> np.ndarray:
    """The points of a ``sensor_msgs/PointCloud2`` as a (height, width) structured view of its buffer.

    Honours ``point_step``, ``row_step`` padding and ``is_bigendian``; no copy is made.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    dtype = cloud_dtype(msg.fields, point_step, bool(msg.is_bigendian))
    if height == 0 or width == 0:
        return np.empty((height, width), dtype=dtype)
    if point_step <= 0:
        raise ValueError(f"cloud point_step is {point_step}; it must be the byte size of one point")
    if row_step < width * point_step:
        raise ValueError(f"cloud row_step {row_step} is smaller than width*point_step = {width * point_step}; "
                         f"the message is malformed")
    buf = _buffer(msg.data)
    needed = row_step * (height - 1) + width * point_step
    if len(buf) < needed:
        raise ValueError(f"cloud data has {len(buf)} bytes but {height}x{width} points with point_step {point_step}, "
                         f"row_step {row_step} need {needed}; the message is truncated")
    return np.ndarray(shape=(height, width), dtype=dtype, buffer=buf, strides=(row_step, point_step))


def cloud_to_points(msg: Any, names: tuple[str, ...] = ("x", "y", "z"), drop_invalid: bool = True) -> np.ndarray:
    """Fields ``names`` of a ``PointCloud2`` as an (N, len(names)) float32 array.

    With ``drop_invalid`` the points whose x, y or z is NaN or infinite are removed.
    """
    view = cloud_to_structured(msg)
    present = view.dtype.names or ()
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(f"cloud has no field(s) {missing}; its fields are {list(present)}: publish x, y, z "
                         "(float32 or float64) points")
    out = np.empty((view.size, len(names)), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):   # float64 beyond float32's range becomes inf: dropped below
        for column, name in enumerate(names):
            out[:, column] = view[name].reshape(-1)
        if drop_invalid:
            xyz_cols = [names.index(n) for n in ("x", "y", "z") if n in names]
            if xyz_cols:
                # NaN and inf propagate through the sum (one pass instead of an (N, 3) mask); only |coords| > 1e38
                # could overflow, far beyond any sensor (and such a point is dropped too)
                total = out[:, xyz_cols[0]].copy()
                for col in xyz_cols[1:]:
                    total += out[:, col]
                finite = np.isfinite(total)
                if not finite.all():
                    out = out.compress(finite, axis=0)   # 4x faster than boolean indexing on (N, 3)
    return out


def cloud_to_xyz(msg: Any) -> np.ndarray:
    """The finite points of a ``PointCloud2`` as (N, 3) float32 x, y, z (any offsets, extra fields, padding)."""
    return cloud_to_points(msg, ("x", "y", "z"))


def make_point_field(name: str, offset: int, datatype: int, count: int = 1, typestore: Any = None) -> Any:
    return message_class("sensor_msgs/msg/PointField", typestore)(name=name, offset=offset, datatype=datatype, count=count)


def fields_of_dtype(dtype: np.dtype, typestore: Any = None) -> list[Any]:
    """``PointField`` list describing a structured dtype of scalar fields."""
    fields = []
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        code = DTYPE_POINTFIELDS.get(sub.kind + str(sub.itemsize)) if not sub.shape else None
        if code is None:
            raise ValueError(f"field {name!r} has dtype {sub}, which one PointField cannot describe")
        fields.append(make_point_field(name, offset, code, 1, typestore))
    return fields


def structured_to_cloud(points: np.ndarray, header: Any, fields: list[Any] | None = None,
                        is_dense: bool = False, typestore: Any = None) -> Any:
    """A ``PointCloud2`` from a structured array: (N,) unorganized or (H, W) organized.

    ``fields`` defaults to the dtype's own description; pass them to label a field differently
    (e.g. packed ``rgb`` stored as uint32 bits but declared FLOAT32, as depth_image_proc does).
    """
    points = np.ascontiguousarray(points)
    if points.dtype.names is None:
        raise ValueError("structured_to_cloud needs a structured numpy array (one named field per point field)")
    if points.ndim == 1:
        points = points.reshape(1, -1)
    if points.ndim != 2:
        raise ValueError(f"cloud points must be (N,) or (H, W), got shape {points.shape}")
    height, width = points.shape
    is_big = points.dtype.fields[points.dtype.names[0]][0].byteorder == ">" or (
        sys.byteorder == "big" and points.dtype.fields[points.dtype.names[0]][0].byteorder == "=")
    cls = message_class("sensor_msgs/msg/PointCloud2", typestore)
    return with_data(cls, points, header=header, height=height, width=width,
                     fields=fields if fields is not None else fields_of_dtype(points.dtype, typestore),
                     is_bigendian=bool(is_big), point_step=points.dtype.itemsize,
                     row_step=points.dtype.itemsize * width, is_dense=bool(is_dense))


def xyzrgb_to_cloud(xyz: np.ndarray, rgb: np.ndarray, header: Any, typestore: Any = None) -> Any:
    """Organized ``PointCloud2`` (x, y, z float32 + packed ``rgb`` float32, ``is_dense=False``) like depth_image_proc.

    ``xyz`` is (H, W, 3) float with NaN for invalid points, ``rgb`` (H, W, 3) uint8. Points are 16 bytes
    (x, y, z, rgb at offsets 0, 4, 8, 12).
    """
    xyz, rgb = np.asarray(xyz), np.asarray(rgb)
    if xyz.ndim != 3 or xyz.shape[2] != 3:
        raise ValueError(f"xyz must be (H, W, 3), got {xyz.shape}")
    if rgb.shape != xyz.shape:
        raise ValueError(f"rgb {rgb.shape} must have the shape of xyz {xyz.shape} (H, W, 3)")
    points = np.empty(xyz.shape[:2], dtype=XYZRGB)
    points["x"], points["y"], points["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    points["rgb"] = pack_rgb(rgb)
    return structured_to_cloud(points, header, is_dense=False, typestore=typestore)


def xyzi_to_cloud(points: np.ndarray, header: Any, typestore: Any = None) -> Any:
    """Unorganized ``PointCloud2`` with float32 x, y, z, intensity from an (N, 4) array (the KITTI .bin layout)."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 4:
        raise ValueError(f"points must be (N, 4) x, y, z, intensity, got {points.shape}")
    structured = np.ascontiguousarray(points).view(np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                                             ("intensity", "<f4")])).reshape(-1)
    return structured_to_cloud(structured, header, is_dense=bool(np.isfinite(points[:, :3]).all()), typestore=typestore)


# --------------------------------------------------------------------------------------------------
# camera info


def camera_info_to_P(msg: Any) -> np.ndarray:
    """The 3x4 projection matrix of a ``CameraInfo``; ``[K | 0]`` when ``P`` is all zeros (uncalibrated P)."""
    return calibration_from_camera_info(msg).P


def _camera_field(msg: Any, name: str) -> Any:
    """A ``CameraInfo`` array field (ROS 2 lower case, ROS 1 / rosbags ROS 1 upper case)."""
    return getattr(msg, name) if hasattr(msg, name) else getattr(msg, name.upper())


def _set_camera_fields(msg: Any, **values: np.ndarray) -> None:
    """Set ``CameraInfo`` array fields in the representation the message class holds (list or array)."""
    for name, value in values.items():
        attr = name if hasattr(msg, name) else name.upper()
        setattr(msg, attr, value if isinstance(getattr(msg, attr), np.ndarray) else value.tolist())


def camera_info_to_K(msg: Any) -> np.ndarray:
    """The 3x3 intrinsic matrix ``K`` of a ``CameraInfo``."""
    return np.asarray(msg.k, dtype=np.float64).reshape(3, 3)


def make_camera_info(header: Any, width: int, height: int, K: np.ndarray | None = None, P: np.ndarray | None = None,
                     D: np.ndarray | None = None, R: np.ndarray | None = None, distortion_model: str = "plumb_bob",
                     typestore: Any = None) -> Any:
    """A ``CameraInfo`` from ``K`` (3x3) and/or ``P`` (3x4); the missing one is derived (K = P[:, :3], P = [K | 0])."""
    if K is None and P is None:
        raise ValueError("make_camera_info needs K (3x3) or P (3x4)")
    P = np.hstack([np.asarray(K, float).reshape(3, 3), np.zeros((3, 1))]) if P is None else np.asarray(P, float).reshape(3, 4)
    K = P[:, :3] if K is None else np.asarray(K, float).reshape(3, 3)
    D = np.zeros(5) if D is None else np.asarray(D, float).reshape(-1)
    R = np.eye(3) if R is None else np.asarray(R, float).reshape(3, 3)
    cls = message_class("sensor_msgs/msg/CameraInfo", typestore)
    roi = message_class("sensor_msgs/msg/RegionOfInterest", typestore)(x_offset=0, y_offset=0, height=0, width=0,
                                                                       do_rectify=False)
    if _is_rosbags(cls):
        d, k, r, p = D, K.reshape(-1), R.reshape(-1), P.reshape(-1)
    else:
        d, k, r, p = D.tolist(), K.reshape(-1).tolist(), R.reshape(-1).tolist(), P.reshape(-1).tolist()
    return cls(header=header, height=int(height), width=int(width), distortion_model=distortion_model,
               d=d, k=k, r=r, p=p, binning_x=0, binning_y=0, roi=roi)


# --------------------------------------------------------------------------------------------------
# node outputs


def frame_messages(result: Any, header: Any, info: Any, typestore: Any = None,
                   topics: Container[str] | None = None) -> dict[str, Any]:
    """The output messages of one processed frame (a ``pipeline.FrameResult``), keyed by relative topic
    (:func:`iter_frame_messages`, all built)."""
    return dict(iter_frame_messages(result, header, info, typestore, topics))


def iter_frame_messages(result: Any, header: Any, info: Any, typestore: Any = None,
                        topics: Container[str] | None = None) -> Iterator[tuple[str, Any]]:
    """``(relative topic, message)`` of one processed frame (a ``pipeline.FrameResult``), each built when it is
    asked for, the depth image first and the cloud (the costliest to build and to send) last: the node
    publishes each before the next is built.

    ``depth/image`` (32FC1 metres, NaN invalid, REP 118), ``depth/camera_info`` (``info`` restamped
    with ``header``; when a raw image was rectified, ``D`` = 0 and ``K`` = ``P``'s block, the rest
    kept), and when the result holds them ``depth/sparse`` (32FC1), ``depth/confidence`` (32FC1, 0-1),
    ``depth/colored`` (rgb8) and ``depth/points`` (organized XYZRGB, ``is_dense=False``). All carry
    ``header``. ``topics``: build only these (None: all; the node builds none that nobody subscribes to).
    """
    def wanted(topic: str) -> bool:
        return topics is None or topic in topics

    def metres(depth: np.ndarray) -> Any:   # 0 (no depth) published as NaN, REP 118
        return numpy_to_image(np.where(depth > 0, depth, np.float32(np.nan)).astype(np.float32, copy=False), "32FC1",
                              header, typestore)

    if wanted("depth/image"):
        yield "depth/image", metres(result.depth)
    if wanted("depth/camera_info"):
        info = copy.copy(info)
        info.header = header
        if result.rectified:   # the outputs lie on the rectified grid: P's camera, no distortion
            P = np.asarray(_camera_field(info, "p"), dtype=np.float64).reshape(3, 4)
            _set_camera_fields(info, d=np.zeros(len(_camera_field(info, "d"))))
            if P.any():
                _set_camera_fields(info, k=P[:, :3].reshape(-1))
        yield "depth/camera_info", info
    if result.sparse is not None and wanted("depth/sparse"):
        yield "depth/sparse", metres(result.sparse)
    if result.confidence is not None and wanted("depth/confidence"):
        yield "depth/confidence", numpy_to_image(result.confidence.astype(np.float32, copy=False), "32FC1", header,
                                                 typestore)
    if result.colored is not None and wanted("depth/colored"):
        yield "depth/colored", numpy_to_image(result.colored, "rgb8", header, typestore)
    if wanted("depth/points") and result.cloud is not None:
        yield "depth/points", structured_to_cloud(result.cloud, header, is_dense=False, typestore=typestore)
