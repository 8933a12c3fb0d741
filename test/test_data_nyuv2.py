"""NYUv2 sparse-to-dense h5 loader, on h5 files made from real indoor RGB-D frames (Redwood)."""
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.nyuv2 import NYU_K, NYUv2, read_nyu_h5
from lumde_depth.geometry import resize_image


def _write_h5(path: Path, rgb: np.ndarray, depth: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("rgb", data=rgb.transpose(2, 0, 1))
        f.create_dataset("depth", data=depth.astype(np.float32))


@pytest.fixture(scope="module")
def nyu_root(shared_data, tmp_path_factory) -> Path:
    redwood = shared_data / "redwood_livingroom"
    if not redwood.is_dir():
        pytest.skip(f"{redwood} absent")
    root = tmp_path_factory.mktemp("nyu") / "nyudepthv2"
    for i, stem in enumerate(("00000", "00040", "00080")):
        rgb = np.asarray(Image.open(redwood / "image" / f"{stem}.jpg").convert("RGB"))
        depth = np.asarray(Image.open(redwood / "depth" / f"{stem}.png")).astype(np.float32) / 1000.0
        split = "val/official" if i < 2 else "train/living_room_0001"
        _write_h5(root / split / f"{stem}.h5", rgb, depth)
    return root


def test_val_protocol_crop_sampling_and_intrinsics(nyu_root):
    ds = NYUv2(nyu_root.parent, "val")  # the parent holding nyudepthv2/ is accepted too
    assert len(ds) == 2
    s = ds[0]
    assert s["name"] == "official/00000"
    assert s["rgb"].shape == (3, 228, 304) and s["rgb"].dtype == torch.float32
    assert s["gt"].shape == s["sparse"].shape == (1, 228, 304)
    assert 0 <= s["rgb"].min() and s["rgb"].max() <= 1
    assert int((s["sparse"] > 0).sum()) == 500
    assert torch.equal(s["sparse"][s["sparse"] > 0], s["gt"][s["sparse"] > 0])
    assert 0.5 < float(s["gt"][s["gt"] > 0].median()) < 4.0
    # K: halve (pixel centres aligned) then shift by the centre crop (8, 6)
    assert s["K"][0, 0] == pytest.approx(NYU_K[0, 0] / 2)
    assert s["K"][0, 2] == pytest.approx((NYU_K[0, 2] + 0.5) / 2 - 0.5 - 8)
    assert s["K"][1, 2] == pytest.approx((NYU_K[1, 2] + 0.5) / 2 - 0.5 - 6)
    # evaluation sampling is fixed per item
    assert torch.equal(ds[0]["sparse"], s["sparse"]) and not torch.equal(ds[1]["sparse"][0, :10], s["sparse"][0, :10])


def test_rgb_matches_halved_centre_crop(nyu_root, shared_data):
    s = NYUv2(nyu_root, "val")[0]
    rgb = np.asarray(Image.open(shared_data / "redwood_livingroom" / "image" / "00000.jpg").convert("RGB"))
    halved, _ = resize_image(rgb.astype(np.float32) / 255, NYU_K, (240, 320))
    np.testing.assert_allclose(s["rgb"].permute(1, 2, 0).numpy(), halved[6:234, 8:312], atol=1e-6)
    depth = np.asarray(Image.open(shared_data / "redwood_livingroom" / "depth" / "00000.png")) / np.float32(1000)
    np.testing.assert_array_equal(s["gt"][0].numpy(), depth[1::2, 1::2][6:234, 8:312])


def test_train_sampling_is_random_but_torch_seeded(nyu_root):
    ds = NYUv2(nyu_root, "train")
    torch.manual_seed(0)
    a, b = ds[0], ds[0]
    assert not torch.equal(a["sparse"], b["sparse"])
    torch.manual_seed(0)
    again = ds[0]
    assert torch.equal(again["sparse"], a["sparse"]) and torch.equal(again["rgb"], a["rgb"])


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        NYUv2(tmp_path, "val")
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match=r"val: no files matching '\*\*/\*.h5'"):
        NYUv2(tmp_path, "val")
    with pytest.raises(DataError, match="split 'test' unknown"):
        NYUv2(tmp_path, "test")
    bad = tmp_path / "val" / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("rgb", data=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DataError, match="bad.h5: h5 file lacks depth"):
        read_nyu_h5(bad)
    _write_h5(bad, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.float32))
    with pytest.raises(DataError, match="bad.h5: expected rgb 3xHxW and depth HxW of the same size"):
        read_nyu_h5(bad)
