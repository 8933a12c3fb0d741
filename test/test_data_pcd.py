"""PCD reader (ascii, binary, LZF binary_compressed) and the OpenCalib (PJLab) frame reader."""
import lzf
import numpy as np
import pytest

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.opencalib import find_frames, opencalib_frames, read_frame
from lumde_depth.data.pcd import pcd_xyz, read_pcd

PJLAB = "pjlab_lidar2camera"


def _points(n=257, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("ring", "<u2"),
                      ("timestamp", "<f8")])
    pts = np.zeros(n, dtype)
    for name in ("x", "y", "z", "intensity"):
        pts[name] = rng.normal(0, 20, n).astype(np.float32)
    pts["ring"] = rng.integers(0, 64, n)
    pts["timestamp"] = 1.6e9 + rng.uniform(0, 0.1, n)
    return pts


HEADER = ("# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z intensity ring timestamp\n"
          "SIZE 4 4 4 4 2 8\nTYPE F F F F U F\nCOUNT 1 1 1 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
          "POINTS {n}\nDATA {kind}\n")


def _write(path, pts, kind):
    head = HEADER.format(n=len(pts), kind=kind).encode()
    if kind == "ascii":
        body = "".join(" ".join(repr(v) for v in row) + "\n" for row in pts.tolist()).encode()
    elif kind == "binary":
        body = pts.tobytes()
    else:   # PCL's layout: field by field, LZF, prefixed by the two sizes
        raw = b"".join(np.ascontiguousarray(pts[name]).tobytes() for name in pts.dtype.names)
        comp = lzf.compress(raw)
        body = np.array([len(comp), len(raw)], "<u4").tobytes() + comp
    path.write_bytes(head + body)


@pytest.mark.parametrize("kind", ["ascii", "binary", "binary_compressed"])
def test_round_trip_each_encoding(tmp_path, kind):
    pts = _points()
    path = tmp_path / f"{kind}.pcd"
    _write(path, pts, kind)
    got = read_pcd(path)
    assert got.dtype.names == pts.dtype.names and got.shape == pts.shape
    for name in pts.dtype.names:
        np.testing.assert_array_equal(got[name], pts[name])
    np.testing.assert_array_equal(pcd_xyz(path), np.stack([pts[c] for c in "xyz"], -1))


def test_padding_fields_and_counts(tmp_path):
    head = ("VERSION 0.7\nFIELDS x y z _ normal\nSIZE 4 4 4 1 4\nTYPE F F F U F\nCOUNT 1 1 1 4 3\nWIDTH 2\nHEIGHT 1\n"
            "POINTS 2\nDATA ascii\n")
    (tmp_path / "a.pcd").write_text(head + "1 2 3 0 0 0 0 0.1 0.2 0.3\n4 5 nan 0 0 0 0 1 0 0\n")
    got = read_pcd(tmp_path / "a.pcd")
    assert got.dtype.names == ("x", "y", "z", "normal")
    np.testing.assert_allclose(got["normal"][0], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(pcd_xyz(tmp_path / "a.pcd"), [[1, 2, 3]])   # the NaN row dropped
    assert pcd_xyz(tmp_path / "a.pcd", drop_invalid=False).shape == (2, 3)


def test_corrupt_files_name_the_problem(tmp_path):
    pts = _points(50)
    _write(tmp_path / "c.pcd", pts, "binary_compressed")
    data = (tmp_path / "c.pcd").read_bytes()
    (tmp_path / "cut.pcd").write_bytes(data[:-40])
    with pytest.raises(DataError, match="truncated"):
        read_pcd(tmp_path / "cut.pcd")
    (tmp_path / "more.pcd").write_bytes(data.replace(b"POINTS 50", b"POINTS 60"))
    with pytest.raises(DataError, match="POINTS need"):
        read_pcd(tmp_path / "more.pcd")
    (tmp_path / "txt.pcd").write_text("hello\n")
    with pytest.raises(DataError, match="not a PCD file"):
        read_pcd(tmp_path / "txt.pcd")
    with pytest.raises(DataError, match="not found"):
        read_pcd(tmp_path / "missing.pcd")


def test_pjlab_files(shared_data):
    root = shared_data / PJLAB
    frames = {f.name: f for f in find_frames(root)}
    # 4 distinct frames (auto_calib/data is a byte copy of ours/3 and is listed once)
    assert sorted(frames) == ["lidar2camera/auto_calib_v2.0/data/ours/1", "lidar2camera/auto_calib_v2.0/data/ours/2",
                              "lidar2camera/auto_calib_v2.0/data/ours/3", "lidar2camera/manual_calib/data"]
    ours3 = frames["lidar2camera/auto_calib_v2.0/data/ours/3"]
    pts = ours3.points()   # LZF binary_compressed
    assert pts.shape == (85546,) and pts.dtype.names == ("x", "y", "z", "intensity", "ring", "timestamp")
    xyz = ours3.xyz()
    assert xyz.shape[0] > 80000 and np.abs(xyz).max() < 300   # metres around the car, no garbage
    assert np.unique(pts["ring"]).size in (32, 40, 64, 128)   # a multi-beam spinning LiDAR's rings
    assert np.ptp(pts["timestamp"][np.isfinite(pts["timestamp"])]) < 0.2   # one sweep (10 Hz)
    np.testing.assert_allclose(ours3.K, [[2117.31, 0, 924.681], [0, 2113.29, 656.457], [0, 0, 1]])
    np.testing.assert_allclose(ours3.D, [-0.102933, -0.040925, 0.00057951, -0.00419933, 0.429959])
    # the JSON layout of the same frame gives the same calibration
    same = read_frame(root / "lidar2camera" / "auto_calib" / "data")
    np.testing.assert_allclose(same.K, ours3.K)
    np.testing.assert_allclose(same.D, ours3.D)
    np.testing.assert_allclose(same.T_cam_lidar, ours3.T_cam_lidar)
    np.testing.assert_array_equal(same.xyz(), xyz)
    manual = frames["lidar2camera/manual_calib/data"]   # ascii
    first = (root / "lidar2camera/manual_calib/data/0.pcd").read_text().split("DATA ascii\n")[1].split("\n")[0]
    np.testing.assert_allclose(manual.points()[0].tolist(), np.array(first.split(), float), rtol=1e-6)
    assert manual.xyz().shape == (78238, 3) and manual.rgb().shape == (1200, 1920, 3)


def test_pjlab_rig_frames(shared_data):
    frames = opencalib_frames(shared_data / PJLAB)
    assert len(frames) == 4
    for f in frames:
        assert f.rgb.shape == (1200, 1920, 3) and f.depth.shape == (1200, 1920) and f.D is not None
        assert f.distortion_model == "plumb_bob" and f.points.shape[1] == 3
        n = np.count_nonzero(f.depth)   # PROVENANCE.md: 10.0k-12.7k points in the image, 6.6-129 m
        assert 9500 < n < 13000 and 6.0 < f.depth[f.depth > 0].min() and f.depth.max() < 130
