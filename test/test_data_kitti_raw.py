"""KITTI raw triplet loader: on the real KITTI_tiny drive (7 frames, projected LiDAR npz) and on a
drive with .bin scans made from it, whose projection must reproduce the official npz depth."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumde_depth.data import DataError, KittiRaw, build_dataset
from lumde_depth.data.kitti_raw import read_timestamps
from lumde_depth.geometry import read_kitti_raw_calib

DRIVE = "2011_09_26/2011_09_26_drive_0023_sync"


@pytest.fixture(scope="module")
def tiny(shared_data) -> Path:
    root = shared_data / "kitti_raw_tiny"
    if not (root / DRIVE).is_dir():
        pytest.skip(f"{root / DRIVE} absent")
    return root


def test_tiny_drive_gives_five_triplets_with_consistent_k(tiny):
    ds = build_dataset("kitti_raw", tiny, "all")
    assert len(ds) == 5
    assert [s.split("/")[-1] for s in (f.name for f in ds.frames)] == [f"{i:010d}" for i in range(1, 6)]
    s = ds[0]
    assert s["name"] == "2011_09_26_drive_0023_sync/image_02/0000000001"
    assert s["rgb"].shape == s["rgb_prev"].shape == s["rgb_next"].shape == (3, 375, 1242)
    assert s["sparse"].shape == (1, 375, 1242) and "gt" not in s
    image = lambda i: torch.from_numpy(np.array(Image.open(tiny / DRIVE / "image_02" / "data" / f"{i:010d}.png")))
    assert torch.equal((s["rgb_prev"] * 255).round().byte().permute(1, 2, 0), image(0))
    assert torch.equal((s["rgb_next"] * 255).round().byte().permute(1, 2, 0), image(2))
    # K: P_rect_02 of the calibration, equal to the drive's cam.txt, principal point inside the image
    cam_txt = np.loadtxt(tiny / DRIVE / "image_02" / "cam.txt")
    np.testing.assert_allclose(s["K"].numpy(), cam_txt, rtol=1e-6)
    assert 0 < s["K"][0, 2] < 1242 and 0 < s["K"][1, 2] < 375 and s["K"].dtype == torch.float32
    # sparse: the official projection (npz), ~4 % of pixels, KITTI range
    npz = np.load(tiny / DRIVE / "proj_depth" / "velodyne" / "image_02" / "0000000001.npz")["velodyne_depth"]
    assert torch.equal(s["sparse"][0], torch.from_numpy(npz))
    valid = s["sparse"][s["sparse"] > 0]
    assert 0.02 < valid.numel() / s["sparse"].numel() < 0.08 and 1.0 < float(valid.min()) and float(valid.max()) < 90
    # timestamps: 10 Hz
    stamps = torch.stack([ds[i]["stamp"] for i in range(2)])
    assert s["stamp"].dtype == torch.float64 and 0.09 < float(stamps[1] - stamps[0]) < 0.11


def test_split_file_and_no_triplets(tiny):
    listed = build_dataset("kitti_raw", tiny, str(tiny / "kitti_tiny.txt"))
    assert [f.name for f in listed.frames] == [f.name for f in KittiRaw(tiny, "all").frames]
    singles = KittiRaw(tiny, "all", triplets=False, cameras=("image_02", "image_03"))
    assert len(singles) == 14 and "rgb_prev" not in singles[0]
    right = singles[7]
    assert right["name"].split("/")[1] == "image_03"
    np.testing.assert_allclose(right["K"].numpy(), read_kitti_raw_calib(tiny / "2011_09_26", 3).K, rtol=1e-6)
    stride2 = KittiRaw(tiny, "all", stride=2)
    assert len(stride2) == 3 and stride2.frames[0].name.endswith("0000000002")


def test_timestamps_keep_nanoseconds(tmp_path):
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:17:59.287203584\n2011-09-26 13:17:59.390968064\n")
    stamps = read_timestamps(path)
    assert stamps[0] == pytest.approx(1317043079.287203584, abs=1e-6)
    assert stamps[1] - stamps[0] == pytest.approx(0.10376448, abs=1e-6)
    path.write_text("yesterday\n")
    with pytest.raises(DataError, match="timestamps.txt: malformed timestamp"):
        read_timestamps(path)


def _drive_with_scans(tiny: Path, out: Path) -> Path:
    """A copy of the tiny drive whose LiDAR is .bin scans: the official npz depth lifted back to 3D
    through the camera and moved into the LiDAR frame with the drive calibration."""
    date = out / "2011_09_26"
    shutil.copytree(tiny / "2011_09_26", date, ignore=shutil.ignore_patterns("proj_depth", "image_03", "oxts"))
    calib = read_kitti_raw_calib(date, 2)
    K = calib.K
    for i in range(3):
        depth = np.load(tiny / DRIVE / "proj_depth" / "velodyne" / "image_02" / f"{i:010d}.npz")["velodyne_depth"]
        v, u = np.nonzero(depth)
        z = depth[v, u].astype(np.float64)
        cam = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z, np.ones_like(z)])
        lidar = (np.linalg.inv(calib.T_cam_lidar) @ cam)[:3].T
        scan = np.hstack([lidar, np.full((len(z), 1), 0.5)]).astype(np.float32)
        (date / DRIVE.split("/")[1] / "velodyne_points" / "data").mkdir(parents=True, exist_ok=True)
        scan.tofile(date / DRIVE.split("/")[1] / "velodyne_points" / "data" / f"{i:010d}.bin")
    return out


def test_bin_scans_are_projected_with_the_drive_calibration(tiny, tmp_path):
    root = _drive_with_scans(tiny, tmp_path / "raw")
    ds = KittiRaw(root, "all", sparse_source="bin")
    assert ds.frames[0].name.endswith("0000000001")  # scans exist for frames 0-2: frame 1 is a centre frame
    sparse = ds[0]["sparse"][0].numpy()
    official = np.load(tiny / DRIVE / "proj_depth" / "velodyne" / "image_02" / "0000000001.npz")["velodyne_depth"]
    assert np.array_equal(sparse > 0, official > 0)
    np.testing.assert_allclose(sparse, official, atol=1e-3)
    capped = KittiRaw(root, "all", sparse_source="bin", max_depth=20.0)[0]["sparse"]
    assert 0 < float(capped.max()) <= 20.0


def test_errors_name_paths(tiny, tmp_path):
    with pytest.raises(DataError, match="no split file .* use split='all'"):
        KittiRaw(tiny, "train")
    with pytest.raises(DataError, match=r"velodyne_points/data/0000000001.bin: LiDAR scan not found"):
        KittiRaw(tiny, "all", sparse_source="bin")[0]
    drive = tmp_path / "2011_09_26" / "2011_09_26_drive_0001_sync"
    (drive / "image_02" / "data").mkdir(parents=True)
    with pytest.raises(DataError, match=r"image_02/data: no files matching '\*.png'"):
        KittiRaw(tmp_path, "all")
    split = tmp_path / "bad.txt"
    split.write_text("2011_09_26/2011_09_26_drive_0001_sync 5 x\n")
    with pytest.raises(DataError, match=r"bad.txt:1: side must be 'l' or 'r'"):
        KittiRaw(tmp_path, str(split))
    split.write_text("2011_09_26/2011_09_26_drive_0001_sync 5 l\n")
    for i in (5, 6):
        Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(drive / "image_02" / "data" / f"{i:010d}.png")
    with pytest.raises(DataError, match=r"0000000004.png: image listed by the split \(or needed as a neighbour"):
        KittiRaw(tmp_path, str(split))
