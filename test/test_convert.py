"""Message <-> numpy conversion on rclpy messages and rosbags messages alike."""
import io
import types

import numpy as np
import pytest
from PIL import Image as PILImage

from lumde_depth.ros import convert as C

rosbags_typesys = pytest.importorskip("rosbags.typesys")
TYPESTORE = rosbags_typesys.get_typestore(rosbags_typesys.Stores.LATEST)


def _stores():
    stores = [pytest.param(TYPESTORE, id="rosbags")]
    try:
        import sensor_msgs.msg  # noqa: F401
        stores.append(pytest.param(None, id="rclpy"))
    except ImportError:
        pass
    return stores


STORES = _stores()


def _msg(**fields):
    """A plain duck-typed message (what a reader sees: only fields)."""
    return types.SimpleNamespace(**fields)


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("encoding,shape,dtype", [
    ("rgb8", (5, 7, 3), np.uint8), ("bgr8", (5, 7, 3), np.uint8), ("rgba8", (5, 7, 4), np.uint8),
    ("bgra8", (5, 7, 4), np.uint8), ("mono8", (5, 7), np.uint8), ("16UC1", (5, 7), np.uint16),
    ("32FC1", (5, 7), np.float32)])
def test_image_roundtrip_every_encoding(store, encoding, shape, dtype):
    rng = np.random.default_rng(0)
    arr = (rng.random(shape) * 250).astype(dtype)
    msg = C.numpy_to_image(arr, encoding, C.make_header(5, "cam", store), store)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    np.testing.assert_array_equal(C.image_to_array(msg), arr)
    out = C.image_to_numpy(msg)
    if encoding in ("rgb8", "rgba8"):
        expected = arr[..., :3]
    elif encoding in ("bgr8", "bgra8"):
        expected = arr[..., 2::-1]
    else:
        expected = arr
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_image_honours_step_padding_and_big_endian():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5
    padded = np.zeros((3, 24), np.uint8)  # 16 bytes of pixels + 8 bytes padding per row
    padded[:, :16] = depth.astype(">f4").view(np.uint8).reshape(3, 16)
    msg = _msg(height=3, width=4, encoding="32FC1", is_bigendian=1, step=24, data=padded.tobytes())
    out = C.image_to_numpy(msg)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, depth)

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rows = np.zeros((2, 12), np.uint8)
    rows[:, :9] = rgb.reshape(2, 9)
    np.testing.assert_array_equal(C.image_to_numpy(_msg(height=2, width=3, encoding="rgb8", is_bigendian=0, step=12,
                                                        data=bytes(rows))), rgb)


def test_image_errors_name_the_problem():
    good = dict(height=2, width=3, encoding="rgb8", is_bigendian=0, step=9, data=bytes(18))
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        C.image_to_numpy(_msg(**{**good, "encoding": "yuv422"}))
    with pytest.raises(ValueError, match="truncated"):
        C.image_to_numpy(_msg(**{**good, "data": bytes(10)}))
    with pytest.raises(ValueError, match="step 6 is smaller"):
        C.image_to_numpy(_msg(**{**good, "step": 6}))
    with pytest.raises(ValueError, match="empty"):
        C.image_to_numpy(_msg(**{**good, "height": 0}))
    with pytest.raises(ValueError, match="dtype float64 does not fit encoding '32FC1'"):
        C.numpy_to_image(np.zeros((2, 2)), "32FC1", C.make_header(0, "", TYPESTORE), TYPESTORE)
    with pytest.raises(ValueError, match=r"does not fit encoding 'rgb8'"):
        C.numpy_to_image(np.zeros((2, 2), np.uint8), "rgb8", C.make_header(0, "", TYPESTORE), TYPESTORE)


@pytest.mark.parametrize("fmt,mode", [("png", "RGB"), ("jpeg", "RGB"), ("png", "L")])
def test_compressed_image(fmt, mode):
    rng = np.random.default_rng(1)
    arr = (rng.random((6, 8, 3) if mode == "RGB" else (6, 8)) * 255).astype(np.uint8)
    if fmt == "jpeg":
        arr[:] = 128  # jpeg is lossy: a flat image decodes exactly
    buf = io.BytesIO()
    PILImage.fromarray(arr, mode).save(buf, format=fmt.upper())
    out = C.compressed_to_numpy(_msg(format=fmt, data=np.frombuffer(buf.getvalue(), np.uint8)))
    np.testing.assert_array_equal(out, arr)
    with pytest.raises(ValueError, match="cannot be decoded"):
        C.compressed_to_numpy(_msg(format=fmt, data=b"not an image"))


def test_compressed_depth_16u():
    depth_mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    buf = io.BytesIO()
    PILImage.fromarray(depth_mm).save(buf, format="PNG")
    header = np.array([0], "<i4").tobytes() + np.array([0, 0], "<f4").tobytes()
    out = C.compressed_to_numpy(_msg(format="16UC1; compressedDepth png", data=header + buf.getvalue()))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, depth_mm)


def _cloud_msg(points: np.ndarray, row_pad: int = 0, height: int = 1, big: bool = False):
    """A duck-typed PointCloud2 over a structured array with optional row padding."""
    dt = points.dtype
    width = points.size // height
    rows = points.reshape(height, width)
    if big:
        rows = rows.astype(dt.newbyteorder(">"))
    raw = np.zeros((height, width * dt.itemsize + row_pad), np.uint8)
    raw[:, :width * dt.itemsize] = rows.view(np.uint8).reshape(height, -1)
    fields = []
    for name in dt.names:
        sub, off = dt.fields[name][:2]
        fields.append(_msg(name=name, offset=off, datatype=C.DTYPE_POINTFIELDS[sub.kind + str(sub.itemsize)], count=1))
    return _msg(height=height, width=width, fields=fields, is_bigendian=big, point_step=dt.itemsize,
                row_step=width * dt.itemsize + row_pad, data=raw.tobytes(), is_dense=False)


@pytest.mark.parametrize("big", [False, True])
def test_cloud_any_offsets_extra_fields_padding(big):
    # Ouster-like layout: t first, x/y/z not at 0, extra fields, padded point_step, padded rows
    dt = np.dtype({"names": ["t", "intensity", "x", "y", "z", "ring"], "formats": ["<u4", "<f4", "<f4", "<f4", "<f4", "<u2"],
                   "offsets": [0, 4, 16, 20, 24, 28], "itemsize": 48})
    rng = np.random.default_rng(2)
    pts = np.zeros(24, dt)
    xyz = rng.normal(size=(24, 3)).astype(np.float32)
    pts["x"], pts["y"], pts["z"] = xyz.T
    pts["intensity"] = rng.random(24)
    pts["x"][3] = np.nan
    pts["z"][7] = np.inf
    msg = _cloud_msg(pts, row_pad=20, height=4, big=big)
    out = C.cloud_to_xyz(msg)
    keep = np.ones(24, bool)
    keep[[3, 7]] = False
    assert out.dtype == np.float32 and out.shape == (22, 3)
    np.testing.assert_array_equal(out, xyz[keep])
    xyzi = C.cloud_to_points(msg, ("x", "y", "z", "intensity"), drop_invalid=False)
    np.testing.assert_array_equal(xyzi[:, 3], pts["intensity"])


def test_cloud_errors():
    pts = np.zeros(4, [("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    msg = _cloud_msg(pts)
    with pytest.raises(ValueError, match=r"no field\(s\) \['z'\]"):
        C.cloud_to_xyz(_msg(**{**vars(msg), "fields": msg.fields[:2]}))
    with pytest.raises(ValueError, match="truncated"):
        C.cloud_to_xyz(_msg(**{**vars(msg), "data": msg.data[:-1]}))
    with pytest.raises(ValueError, match="row_step"):
        C.cloud_to_xyz(_msg(**{**vars(msg), "row_step": 4}))
    empty = C.cloud_to_xyz(_msg(**{**vars(msg), "width": 0, "row_step": 0, "data": b""}))
    assert empty.shape == (0, 3)


@pytest.mark.parametrize("store", STORES)
def test_xyzrgb_cloud_like_depth_image_proc(store):
    xyz = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    xyz[1, 2] = np.nan
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[1, 2, 3], [10, 20, 30], [0, 0, 0]]], np.uint8)
    msg = C.xyzrgb_to_cloud(xyz, rgb, C.make_header(7, "cam", store), store)
    assert (msg.height, msg.width, msg.is_dense) == (2, 3, False)
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7)]
    np.testing.assert_array_equal(C.cloud_to_xyz(msg), xyz.reshape(-1, 3)[:5])
    packed = C.cloud_to_structured(msg)["rgb"].view(np.uint32)
    assert packed[0, 0] == 0xFF0000 and packed[0, 1] == 0x00FF00 and packed[0, 2] == 0x0000FF
    assert packed[1, 0] == 0x010203


@pytest.mark.parametrize("store", STORES)
def test_xyzi_cloud_and_cdr_roundtrip(store):
    pts = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    msg = C.xyzi_to_cloud(pts, C.make_header(1_317_000_000_123_456_789, "velo_link", store), store)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity"] and msg.point_step == 16
    assert C.stamp_to_ns(msg.header.stamp) == 1_317_000_000_123_456_789
    np.testing.assert_array_equal(C.cloud_to_points(msg, ("x", "y", "z", "intensity")), pts)
    if store is not None:  # rosbags -> CDR -> rosbags keeps every point
        back = TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2"),
                                         "sensor_msgs/msg/PointCloud2")
        np.testing.assert_array_equal(C.cloud_to_points(back, ("x", "y", "z", "intensity")), pts)


def test_rosbags_cdr_bytes_read_by_rclpy():
    serialization = pytest.importorskip("rclpy.serialization")
    from sensor_msgs.msg import Image

    arr = np.random.default_rng(4).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    msg = C.numpy_to_image(arr, "bgr8", C.make_header(42, "cam", TYPESTORE), TYPESTORE)
    raw = TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image")
    back = serialization.deserialize_message(bytes(raw), Image)
    np.testing.assert_array_equal(C.image_to_numpy(back), arr[..., ::-1])


@pytest.mark.parametrize("store", STORES)
def test_camera_info(store):
    K = np.array([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]])
    P = np.hstack([K, [[44.9], [0.2], [0.003]]])
    header = C.make_header(0, "cam", store)
    info = C.make_camera_info(header, 1242, 375, P=P, typestore=store)
    np.testing.assert_allclose(C.camera_info_to_P(info), P)
    np.testing.assert_allclose(C.camera_info_to_K(info), K)
    assert (info.width, info.height) == (1242, 375)
    only_k = C.make_camera_info(header, 1242, 375, K=K, typestore=store)
    np.testing.assert_allclose(C.camera_info_to_P(only_k), np.hstack([K, np.zeros((3, 1))]))
    uncal = _msg(k=[0.0] * 9, p=[0.0] * 12, width=1242, height=375)
    with pytest.raises(ValueError, match="uncalibrated"):
        C.camera_info_to_P(uncal)
    p_unset = _msg(k=K.reshape(-1).tolist(), p=[0.0] * 12, width=1242, height=375)
    np.testing.assert_allclose(C.camera_info_to_P(p_unset)[:, :3], K)


@pytest.mark.parametrize("store", STORES)
def test_frame_messages_builds_only_the_topics_asked_for(store):
    """The node builds no message nobody subscribes to (a DDAD camera's unpublished depth/sparse is 9 MB of
    copying); without ``topics`` every output the result holds is built, 0 depth as NaN."""
    from lumde_depth.ros.pipeline import FrameResult
    depth = np.array([[0.0, 2.5], [7.0, 0.0]], np.float32)
    result = FrameResult(sparse=np.array([[0.0, 2.0], [0.0, 0.0]], np.float32), depth=depth,
                         colored=np.zeros((2, 2, 3), np.uint8), K=np.eye(3), confidence=np.full((2, 2), 0.5, np.float32))
    header = C.make_header(5, "cam", store)
    info = C.make_camera_info(header, 2, 2, K=np.eye(3), typestore=store)
    everything = C.frame_messages(result, header, info, store)
    assert set(everything) == {"depth/image", "depth/camera_info", "depth/sparse", "depth/confidence", "depth/colored"}
    np.testing.assert_array_equal(C.image_to_numpy(everything["depth/image"]), [[np.nan, 2.5], [7.0, np.nan]])
    np.testing.assert_array_equal(C.image_to_numpy(everything["depth/sparse"]), [[np.nan, 2.0], [np.nan, np.nan]])
    some = C.frame_messages(result, header, info, store, topics={"depth/image", "depth/points", "depth/colored"})
    assert set(some) == {"depth/image", "depth/colored"}
    assert bytes(some["depth/image"].data) == bytes(everything["depth/image"].data)
