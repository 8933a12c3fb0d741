"""Synthetic drives written by ``lumde synth`` load back through the loaders unchanged: depth within
PNG quantisation (1/512 m), exact colour, the written intrinsics, and triplets with 10 Hz stamps."""
from pathlib import Path

import numpy as np
import pytest
import torch

from lumde_depth.cli.main import main
from lumde_depth.config import load
from lumde_depth.data import build_dataset
from lumde_depth.data.sample import rgb_array
from lumde_depth.data.synth.generate import Generator, SynthConfig

QUANTUM = 0.5 / 256 + 1e-6


def _synth(out: Path, layout: str, frames: int, sequences: int) -> Generator:
    overrides = ["camera_scale=0.25", f"layout={layout}", f"frames={frames}", f"sequences={sequences}",
                 "seed=3", "workers=1"]
    argv = ["synth", "--out", str(out), "--frames", str(frames), "--seed", "3", "--layout", layout,
            "--sequences", str(sequences), "--workers", "1", "--set", "camera_scale=0.25"]
    assert main(argv) == 0
    return Generator(load(SynthConfig, None, overrides), out)


@pytest.fixture(scope="module")
def dc(tmp_path_factory) -> tuple[Path, Generator]:
    out = tmp_path_factory.mktemp("synth_dc")
    return out, _synth(out, "kitti_dc", frames=4, sequences=2)


def test_kitti_dc_layout_round_trip(dc):
    out, gen = dc
    train = build_dataset("kitti_dc", out, "train", size=None, augment=False)
    val = build_dataset("kitti_dc", out, "val", size=None)
    assert len(train) == 2 and len(val) == 2
    for ds, sequence in ((train, 0), (val, 1)):
        for index in range(2):
            sample, frame = ds[index], gen.render(sequence, index)
            assert sample["name"] == f"2000_01_01_drive_{sequence + 1:04d}_sync/image_02/{index:010d}"
            assert np.array_equal(rgb_array(sample["rgb"]), frame.rgb)
            for key, truth in (("sparse", frame.sparse), ("gt", frame.groundtruth)):
                loaded = sample[key][0].numpy()
                assert np.array_equal(loaded > 0, truth > 0) and (truth > 0).any()
                assert np.abs(loaded - truth).max() <= QUANTUM
            np.testing.assert_allclose(sample["K"].numpy(), gen.calib.K, rtol=1e-6)


def test_kitti_dc_training_crops_and_flips_keep_k_consistent(dc):
    """Where K says the random crop lies (and whether it is mirrored), the depth is exactly that."""
    out, gen = dc
    ds = build_dataset("kitti_dc", out, "train", size=(64, 256), crop=(48, 160))
    frame, K0 = gen.render(0, 0), gen.calib.K
    torch.manual_seed(0)
    mirrored = set()
    for _ in range(8):
        s = ds[0]
        loaded, K = s["sparse"][0].numpy(), s["K"].numpy()
        top = int(round(K0[1, 2] - K[1, 2]))
        assert frame.sparse.shape[0] - 64 <= top <= frame.sparse.shape[0] - 48  # inside the bottom crop
        left = int(round(K0[0, 2] - K[0, 2]))
        left_if_flipped = int(round(K0[0, 2] - (160 - 1 - K[0, 2])))
        candidates = {False: frame.sparse[top:top + 48, left:left + 160] if left >= 0 else None,
                      True: frame.sparse[top:top + 48, left_if_flipped:left_if_flipped + 160][:, ::-1]}
        matches = [flip for flip, ref in candidates.items()
                   if ref is not None and ref.shape == loaded.shape and np.abs(loaded - ref).max() <= QUANTUM]
        assert len(matches) == 1
        mirrored.add(matches[0])
    assert mirrored == {False, True}


def test_kitti_raw_layout_round_trip(tmp_path):
    gen = _synth(tmp_path, "kitti_raw", frames=3, sequences=1)
    ds = build_dataset("kitti_raw", tmp_path, "all")
    assert len(ds) == 1
    sample, frames = ds[0], [gen.render(0, i) for i in range(3)]
    assert sample["name"] == "2000_01_01_drive_0001_sync/image_02/0000000001"
    # the scan projected with the written calibration is exactly the generator's sparse depth
    assert np.array_equal(sample["sparse"][0].numpy(), frames[1].sparse)
    for key, frame in (("rgb_prev", frames[0]), ("rgb", frames[1]), ("rgb_next", frames[2])):
        assert np.array_equal(rgb_array(sample[key]), frame.rgb)
    stamps = [float(build_dataset("kitti_raw", tmp_path, "all", triplets=False)[i]["stamp"]) for i in (0, 1)]
    assert stamps[1] - stamps[0] == pytest.approx(frames[1].time - frames[0].time, abs=1e-6)
    np.testing.assert_allclose(sample["K"].numpy(), gen.calib.K, rtol=1e-6)
