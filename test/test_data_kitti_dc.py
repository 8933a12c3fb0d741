"""KITTI depth completion loaders on tiny layouts written here (official, flattened, selected sets)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumde_depth.data import DataError, KittiDepthCompletion, build_dataset, write_depth_png
from lumde_depth.data.kitti_calib import drive_calibration
from lumde_depth.geometry import Calibration, write_kitti_raw_calib

H, W = 40, 64
DATE = "2011_09_26"
DRIVES = (f"{DATE}_drive_0001_sync", f"{DATE}_drive_0002_sync")
P2 = np.array([[60.0, 0, 31.5, 4.5], [0, 60.0, 18.25, 0.02], [0, 0, 1, 0.003]])


def _depth(seed: int, density: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth = np.round(rng.uniform(1, 80, (H, W)) * 256) / 256
    return np.where(rng.random((H, W)) < density, depth, 0).astype(np.float32)


def _write_layout(velodyne: Path, annotated: Path | None, raw: Path, split: str = "train",
                  frames: int = 3, cameras=("image_02",)) -> None:
    T = np.eye(4)
    T[:3, 3] = [0.1, -0.08, -0.27]
    write_kitti_raw_calib(raw / DATE, Calibration(P=P2, T_cam_lidar=T, width=W, height=H))
    for d, drive in enumerate(DRIVES):
        for camera in cameras:
            for i in range(5, 5 + frames):
                seed = 100 * d + 10 * i + int(camera[-1])
                write_depth_png(velodyne / split / drive / "proj_depth" / "velodyne_raw" / camera / f"{i:010d}.png",
                                _depth(seed, 0.05))
                if annotated is not None:
                    write_depth_png(annotated / split / drive / "proj_depth" / "groundtruth" / camera / f"{i:010d}.png",
                                    _depth(seed + 1, 0.3))
                image = raw / DATE / drive / camera / "data" / f"{i:010d}.png"
                image.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W, 3), np.uint8)).save(image)


@pytest.fixture
def official(tmp_path) -> Path:
    _write_layout(tmp_path / "data_depth_velodyne", tmp_path / "data_depth_annotated", tmp_path / "kitti_raw",
                  split="val", cameras=("image_02", "image_03"))
    return tmp_path


def test_official_layout_loads_exact_depth_and_bottom_crop_shifts_k(official):
    ds = build_dataset("kitti_dc", official, "val", raw_root=official / "kitti_raw", size=(32, 48))
    assert len(ds) == 2 * 2 * 3
    s = ds[0]
    drive, camera, frame = DRIVES[0], "image_02", "0000000005"
    assert s["name"] == f"{drive}/{camera}/{frame}"
    assert s["rgb"].shape == (3, 32, 48) and s["sparse"].shape == s["gt"].shape == (1, 32, 48)
    top, left = H - 32, (W - 48) // 2
    seed = 10 * 5 + 2
    assert torch.equal(s["sparse"][0], torch.from_numpy(_depth(seed, 0.05)[top:, left:left + 48]))
    assert torch.equal(s["gt"][0], torch.from_numpy(_depth(seed + 1, 0.3)[top:, left:left + 48]))
    rgb = np.array(Image.open(official / "kitti_raw" / DATE / drive / camera / "data" / f"{frame}.png"))
    assert torch.equal((s["rgb"] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(rgb[top:, left:left + 48]))
    np.testing.assert_allclose(s["K"].numpy(), [[60, 0, 31.5 - left], [0, 60, 18.25 - top], [0, 0, 1]], rtol=1e-6)
    assert s["K"].dtype == torch.float32
    # image_03 frames get camera 3's intrinsics and their own files
    right = ds[3]
    assert right["name"] == f"{drive}/image_03/{frame}"
    assert torch.equal(right["sparse"][0], torch.from_numpy(_depth(10 * 5 + 3, 0.05)[top:, left:left + 48]))
    # evaluation: no augmentation, identical every time
    assert torch.equal(ds[1]["rgb"], ds[1]["rgb"])
    only_left = KittiDepthCompletion(official, "val", raw_root=official / "kitti_raw", cameras=("image_02",), size=None)
    assert len(only_left) == 6 and only_left[0]["rgb"].shape == (3, H, W)


def test_flattened_layout_with_raw_subfolder_and_training_augmentation(tmp_path):
    _write_layout(tmp_path, tmp_path, tmp_path / "raw", split="train")
    ds = build_dataset("kitti_dc", tmp_path, "train", size=(32, 48), crop=(24, 40))
    assert len(ds) == 6
    torch.manual_seed(0)
    samples = [ds[0] for _ in range(12)]
    assert {s["rgb"].shape for s in samples} == {(3, 24, 40)}
    principal = {tuple(s["K"][:2, 2].tolist()) for s in samples}
    assert len(principal) > 1, "random crops / flips must vary between epochs"
    # every variant keeps sparse and K consistent: the depth values present come from the frame
    full = _depth(10 * 5 + 2, 0.05)
    for s in samples:
        values = s["sparse"][s["sparse"] > 0]
        assert torch.isin(values, torch.from_numpy(full[full > 0])).all()
    torch.manual_seed(0)
    assert torch.equal(ds[0]["rgb"], samples[0]["rgb"])


def test_missing_ground_truth_folder_means_no_gt(tmp_path):
    _write_layout(tmp_path, None, tmp_path / "raw", split="val")
    s = KittiDepthCompletion(tmp_path, "val", size=None)[0]
    assert "gt" not in s and s["sparse"].shape == (1, H, W)


def test_errors_name_the_paths(tmp_path):
    _write_layout(tmp_path, tmp_path, tmp_path / "elsewhere", split="val")
    with pytest.raises(DataError, match=r"raw images of 2011_09_26_drive_0001_sync not found.*pass raw_root="):
        KittiDepthCompletion(tmp_path, "val")
    with pytest.raises(DataError, match=r"no train split found .*data_depth_velodyne/train"):
        KittiDepthCompletion(tmp_path, "train", raw_root=tmp_path / "elsewhere")
    gt = tmp_path / "val" / DRIVES[1] / "proj_depth" / "groundtruth" / "image_02" / "0000000006.png"
    gt.unlink()
    missing = r"0000000006.png: ground truth missing for .*velodyne_raw/image_02/0000000006.png"
    with pytest.raises(DataError, match=missing):
        KittiDepthCompletion(tmp_path, "val", raw_root=tmp_path / "elsewhere")
    write_depth_png(gt, np.ones((H + 1, W), np.float32))
    ds = KittiDepthCompletion(tmp_path, "val", raw_root=tmp_path / "elsewhere", size=None)
    mismatch = r"size mismatch: .*groundtruth/image_02/0000000006.png is 64x41 but .*0000000006.png is 64x40"
    with pytest.raises(DataError, match=mismatch):
        ds[4]
    sparse = tmp_path / "val" / DRIVES[0] / "proj_depth" / "velodyne_raw" / "image_02" / "0000000005.png"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(sparse)
    with pytest.raises(DataError, match=r"velodyne_raw/image_02/0000000005.png: depth PNG must be 16-bit"):
        ds[0]
    with pytest.raises(DataError, match="split 'test' unknown"):
        KittiDepthCompletion(tmp_path, "test")


def _write_selection(folder: Path, with_gt: bool) -> list[np.ndarray]:
    Ks = []
    for i, drive in enumerate(DRIVES):
        stem = f"{drive}_{{}}_{i:010d}_image_02" if with_gt else f"{i:010d}"
        K = np.array([[700.0 + i, 0, 600.5], [0, 700.0 + i, 150.25], [0, 0, 1]])
        Ks.append(K)
        write_depth_png(folder / "velodyne_raw" / f"{stem.format('velodyne_raw')}.png", _depth(i, 0.05))
        if with_gt:
            gt = folder / "groundtruth_depth" / f"{stem.format('groundtruth_depth')}.png"
            write_depth_png(gt, _depth(i + 7, 0.3))
        (folder / "image").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W, 3), 30 * i, np.uint8)).save(folder / "image" / f"{stem.format('image')}.png")
        (folder / "intrinsics").mkdir(parents=True, exist_ok=True)
        (folder / "intrinsics" / f"{stem.format('image')}.txt").write_text(" ".join(f"{v:.6f}" for v in K.ravel()))
    return Ks


def test_val_selection_cropped_reads_per_frame_intrinsics(tmp_path):
    folder = tmp_path / "depth_selection" / "val_selection_cropped"
    Ks = _write_selection(folder, with_gt=True)
    for root in (tmp_path, tmp_path / "depth_selection", folder):
        ds = build_dataset("kitti_dc", root, "val_selection_cropped")
        assert len(ds) == 2
    s = ds[1]
    assert s["name"] == f"{DRIVES[1]}_image_0000000001_image_02"
    np.testing.assert_allclose(s["K"].numpy(), Ks[1], rtol=1e-6)
    assert torch.equal(s["sparse"][0], torch.from_numpy(_depth(1, 0.05)))
    assert torch.equal(s["gt"][0], torch.from_numpy(_depth(8, 0.3)))
    assert float(s["rgb"].mean()) == pytest.approx(30 / 255)
    (folder / "intrinsics" / f"{DRIVES[0]}_image_0000000000_image_02.txt").unlink()
    missing = r"intrinsics/2011_09_26_drive_0001_sync_image_0000000000_image_02.txt: file not found"
    with pytest.raises(DataError, match=missing):
        ds[0]


def test_test_set_without_ground_truth(tmp_path):
    folder = tmp_path / "test_depth_completion_anonymous"
    _write_selection(folder, with_gt=False)
    s = build_dataset("kitti_dc", tmp_path, "test_depth_completion_anonymous")[0]
    assert "gt" not in s and s["name"] == "0000000000"


def test_build_dataset_names_closest_kind_and_option(tmp_path):
    with pytest.raises(DataError, match="dataset kind 'kitti_cd' unknown; did you mean 'kitti_dc'"):
        build_dataset("kitti_cd", tmp_path, "train")
    with pytest.raises(DataError, match="has no option 'raw_rot'; did you mean 'raw_root'"):
        build_dataset("kitti_dc", tmp_path, "train", raw_rot=tmp_path)


def test_image_size_must_match_calibration(tmp_path):
    _write_layout(tmp_path, tmp_path, tmp_path / "raw", split="val")
    write_kitti_raw_calib(tmp_path / "raw" / DATE, Calibration(P=P2, T_cam_lidar=np.eye(4), width=W + 2, height=H))
    drive_calibration.cache_clear()
    mismatch = r"size mismatch: .*0000000005.png is 64x40 but the calibration in .* states 66x40"
    with pytest.raises(DataError, match=mismatch):
        KittiDepthCompletion(tmp_path, "val", size=None)[0]


def test_batches_collate_through_a_dataloader(tmp_path):
    _write_layout(tmp_path, tmp_path, tmp_path / "raw", split="train")
    ds = build_dataset("kitti_dc", tmp_path, "train", size=(32, 48))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["rgb"].shape == (4, 3, 32, 48) and batch["sparse"].shape == batch["gt"].shape == (4, 1, 32, 48)
    assert batch["K"].shape == (4, 3, 3) and len(batch["name"]) == 4


def test_raw_drives_are_read_only_from_inside_the_root_or_raw_root(tmp_path):
    """A folder beside the root may hold other drives of the same name (synthetic names repeat): never read."""
    _write_layout(tmp_path / "dc", tmp_path / "dc", tmp_path / "raw", split="train")
    with pytest.raises(DataError, match=rf"looked for {DATE}/{DRIVES[0]} in {tmp_path}/dc/raw, {tmp_path}/dc; "
                                        r"pass raw_root="):
        KittiDepthCompletion(tmp_path / "dc", "train")
    ds = KittiDepthCompletion(tmp_path / "dc", "train", raw_root=tmp_path / "raw", size=None)
    assert ds.sources["images and calibration"] == str(tmp_path / "raw")
    assert f"images and calibration from {tmp_path / 'raw'}" in ds.describe() and "inside the root" not in ds.describe()
    # the flattened layout of `lumde synth`: <root>/raw, said so
    _write_layout(tmp_path / "synth", tmp_path / "synth", tmp_path / "synth" / "raw", split="train")
    ds = KittiDepthCompletion(tmp_path / "synth", "train", size=None)
    line = ds.describe()
    assert line.startswith("6 frames; sparse depth from ") and f"ground truth from {tmp_path / 'synth' / 'train'}" in line
    assert f"images and calibration from {tmp_path / 'synth' / 'raw'} (found inside the root" in line


def test_a_crop_without_augmentation_is_refused(tmp_path):
    _write_layout(tmp_path, tmp_path, tmp_path / "raw", split="val")
    _write_layout(tmp_path, tmp_path, tmp_path / "raw", split="train")
    for split, augment in (("train", False), ("val", None)):
        with pytest.raises(DataError, match=r"crop=\[24, 40\] has no effect: it is the random training crop"):
            build_dataset("kitti_dc", tmp_path, split, size=(32, 48), crop=(24, 40), augment=augment)
    assert build_dataset("kitti_dc", tmp_path, "val", size=(32, 48), crop=(24, 40), augment=True)[0]["rgb"].shape == \
        (3, 24, 40)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_damaged_files_are_named_and_found_up_front(tmp_path):
    from lumde_depth.data.check import file_problem, find_damaged
    from lumde_depth.data.depth_io import read_depth_png
    _write_layout(tmp_path, tmp_path, tmp_path / "raw", split="val")
    ds = KittiDepthCompletion(tmp_path, "val", size=None)
    assert find_damaged(ds) == [] and find_damaged(ds, full=True) == []
    gt = tmp_path / "val" / DRIVES[1] / "proj_depth" / "groundtruth" / "image_02" / "0000000006.png"
    _truncate(gt)
    # reading it names the file (no bare Pillow traceback) ...
    with pytest.raises(DataError, match=rf"{gt}: cannot read the depth PNG, the file is damaged"):
        read_depth_png(gt)
    with pytest.raises(DataError, match=str(gt)):
        ds[4]
    # ... and the quick check finds it from its last bytes, with the frame's index
    assert file_problem(gt) == "truncated (the PNG end marker is missing)"
    assert find_damaged(ds) == [(4, f"{gt}: truncated (the PNG end marker is missing)")]
    # through a Subset: local indices; a missing image and a foreign file too
    image = tmp_path / "raw" / DATE / DRIVES[0] / "image_02" / "data" / "0000000005.png"
    image.unlink()
    sparse = tmp_path / "val" / DRIVES[0] / "proj_depth" / "velodyne_raw" / "image_02" / "0000000007.png"
    sparse.write_text("not a png")
    damaged = find_damaged(torch.utils.data.Subset(ds, [4, 0, 2, 1]))
    assert damaged == [(0, f"{gt}: truncated (the PNG end marker is missing)"), (1, f"{image}: missing"),
                       (2, f"{sparse}: not a PNG file (it does not start like one)")]
    # damage inside a complete-looking PNG is found only by reading it (full)
    other = tmp_path / "val" / DRIVES[1] / "proj_depth" / "velodyne_raw" / "image_02" / "0000000005.png"
    data = bytearray(other.read_bytes())
    data[60:90] = bytes(30)
    other.write_bytes(bytes(data))
    assert [i for i, _ in find_damaged(ds)] == [0, 2, 4]
    full = find_damaged(ds, full=True)
    assert [i for i, _ in full] == [0, 2, 3, 4] and str(other) in full[2][1]
