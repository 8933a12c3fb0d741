"""Synthetic KITTI-like generator: files, determinism, LiDAR density, projection and ground truth."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from lumde_depth.cli.main import main
from lumde_depth.config import ConfigError
from lumde_depth.data.depth_io import read_depth_png, read_intrinsics_txt, read_rgb
from lumde_depth.data.synth import Generator, SynthConfig, generate
from lumde_depth.data.synth.camera import KITTI_HEIGHT, KITTI_WIDTH, P_RECT_02
from lumde_depth.data.synth.scene import GROUND, SKY
from lumde_depth.data.synth.writers import SYNTH_DATE, drive_name
from lumde_depth.geometry import project_points, read_kitti_raw_calib
from lumde_depth.data.depth_io import read_velodyne_bin
from lumde_depth.data import build_dataset
from lumde_depth.data.sample import rgb_array

DRIVE1, DRIVE2 = drive_name(0), drive_name(1)


@pytest.fixture(scope="module")
def kitti_dc(tmp_path_factory) -> Path:
    """Four full-resolution frames: two train (drive 1), two val (drive 2)."""
    out = tmp_path_factory.mktemp("synth_dc")
    generate(SynthConfig(frames=4, sequences=2, seed=7, workers=1), out, progress=False)
    return out


@pytest.fixture(scope="module")
def frame():
    """One full-resolution frame in memory, with its generator (for poses and calibration)."""
    gen = Generator(SynthConfig(frames=1, sequences=1, seed=3), Path("unused"))
    return gen, gen.render(0, 0)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_kitti_dc_layout_files(kitti_dc: Path) -> None:
    date = kitti_dc / "raw" / SYNTH_DATE
    assert (date / "calib_cam_to_cam.txt").is_file() and (date / "calib_velo_to_cam.txt").is_file()
    for drive in (DRIVE1, DRIVE2):
        d = date / drive
        assert sorted(p.name for p in (d / "image_02" / "data").iterdir()) == ["0000000000.png", "0000000001.png"]
        assert sorted(p.name for p in (d / "velodyne_points" / "data").iterdir()) == ["0000000000.bin",
                                                                                       "0000000001.bin"]
        for stamps in ("image_02/timestamps.txt", "velodyne_points/timestamps.txt",
                       "velodyne_points/timestamps_start.txt", "velodyne_points/timestamps_end.txt"):
            lines = (d / stamps).read_text().splitlines()
            assert len(lines) == 2 and all(re.fullmatch(r"2000-01-01 1[12]:\d\d:\d\d\.\d{9}", line) for line in lines)
    for split, drive in (("train", DRIVE1), ("val", DRIVE2)):
        for kind in ("velodyne_raw", "groundtruth"):
            folder = kitti_dc / split / drive / "proj_depth" / kind / "image_02"
            assert sorted(p.name for p in folder.iterdir()) == ["0000000000.png", "0000000001.png"]
    assert not (kitti_dc / "val" / DRIVE1).exists() and not (kitti_dc / "train" / DRIVE2).exists()
    sel = kitti_dc / "depth_selection" / "val_selection_cropped"
    stem = f"{DRIVE2}_{{}}_0000000001_image_02"
    image = read_rgb(sel / "image" / f"{stem.format('image')}.png")
    assert image.shape == (352, 1216, 3)
    assert read_depth_png(sel / "velodyne_raw" / f"{stem.format('velodyne_raw')}.png").shape == (352, 1216)
    assert read_depth_png(sel / "groundtruth_depth" / f"{stem.format('groundtruth_depth')}.png").shape == (352, 1216)
    K = read_intrinsics_txt(sel / "intrinsics" / f"{stem.format('image')}.txt")
    np.testing.assert_allclose(K, [[721.5377, 0, 609.5593 - 13], [0, 721.5377, 172.854 - 23], [0, 0, 1]], atol=1e-3)
    # the crop is the bottom-centre of the full frame
    full = read_rgb(date / DRIVE2 / "image_02" / "data" / "0000000001.png")
    np.testing.assert_array_equal(full[23:, 13:13 + 1216], image)


def test_calibration_is_kittis(kitti_dc: Path) -> None:
    calib = read_kitti_raw_calib(kitti_dc / "raw" / SYNTH_DATE / DRIVE1, camera=2)
    assert (calib.width, calib.height) == (KITTI_WIDTH, KITTI_HEIGHT)
    np.testing.assert_allclose(calib.P, P_RECT_02, atol=1e-6)
    # Velodyne about 0.27 m behind and 0.08 m above the camera, as on the KITTI car
    lidar_in_cam = np.linalg.inv(calib.T_cam_lidar)[:3, 3]
    cam_in_lidar = np.linalg.inv(calib.T_cam_lidar) @ np.array([0, 0, 0, 1.0])
    assert -0.35 < -cam_in_lidar[0] < -0.2 and 0.05 < -cam_in_lidar[2] < 0.12
    assert np.linalg.norm(lidar_in_cam) < 0.4


def test_sparse_png_is_projection_of_written_scan(kitti_dc: Path) -> None:
    """The velodyne_raw PNG equals projecting the written .bin with the written calibration."""
    for split, drive in (("train", DRIVE1), ("val", DRIVE2)):
        calib = read_kitti_raw_calib(kitti_dc / "raw" / SYNTH_DATE / drive, camera=2)
        for name in ("0000000000", "0000000001"):
            scan = read_velodyne_bin(kitti_dc / "raw" / SYNTH_DATE / drive / "velodyne_points" / "data" / f"{name}.bin")
            projected = project_points(scan, calib.T_cam_lidar, calib.P, calib.width, calib.height)
            png = read_depth_png(kitti_dc / split / drive / "proj_depth" / "velodyne_raw" / "image_02" / f"{name}.png")
            np.testing.assert_array_equal(png, (np.rint(projected * 256.0) / 256.0).astype(np.float32))


def test_scan_looks_like_an_hdl64(kitti_dc: Path) -> None:
    scan = read_velodyne_bin(kitti_dc / "raw" / SYNTH_DATE / DRIVE1 / "velodyne_points" / "data" / "0000000000.bin")
    r = np.linalg.norm(scan[:, :3], axis=1)
    elevation = np.degrees(np.arcsin(scan[:, 2] / r))
    assert 80_000 < len(scan) < 128_000                      # KITTI scans: 100k-130k points
    assert r.max() <= 120.1 and r.min() >= 0.9
    assert -25.5 < elevation.min() < -23.5 and 1.0 < elevation.max() < 2.5
    assert 0.0 <= scan[:, 3].min() and scan[:, 3].max() < 1.0
    azimuth = np.degrees(np.arctan2(scan[:, 1], scan[:, 0]))
    assert (azimuth < -90).any() and (azimuth > 90).any()    # a full 360 deg sweep, not just the camera's view


def test_lidar_density_like_kitti(kitti_dc: Path) -> None:
    """4-6% of the pixels of the image's lower two thirds carry a LiDAR return (KITTI: about 5-6%)."""
    for split, drive in (("train", DRIVE1), ("val", DRIVE2)):
        for name in ("0000000000", "0000000001"):
            folder = kitti_dc / split / drive / "proj_depth" / "velodyne_raw" / "image_02"
            sparse = read_depth_png(folder / f"{name}.png")
            density = (sparse[KITTI_HEIGHT // 3:] > 0).mean()
            assert 0.04 <= density <= 0.06, f"{drive}/{name}: {100 * density:.2f}%"
            assert (sparse[: KITTI_HEIGHT // 6] > 0).mean() < 0.005   # nothing above the top beam


def test_ground_truth_sanity(frame) -> None:
    gen, f = frame
    sky = f.material == SKY
    assert sky.any() and (f.depth[sky] == 0).all() and (f.groundtruth[sky] == 0).all()
    assert f.depth.dtype == np.float32 and (f.depth >= 0).all()
    near = (f.depth > 0) & (f.depth <= 80.0)
    np.testing.assert_array_equal(f.groundtruth[near], f.depth[near])
    assert (f.groundtruth[f.depth > 80.0] == 0).all()
    # road pixels: the exact depth of the plane z = 0 seen from the camera's pose
    calib = gen.calib
    T_world_cam = f.T_world_vehicle @ np.linalg.inv(calib.T_cam_lidar)
    rows, cols = np.nonzero(f.material == GROUND)
    assert rows.size > 50_000
    K = calib.K
    rays = np.stack([(cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1], np.ones(rows.size)], axis=1)
    d_world = rays @ T_world_cam[:3, :3].T
    analytic = -T_world_cam[2, 3] / d_world[:, 2]
    kept = analytic <= 250.0                 # the dense range; the far road towards the horizon is 0
    np.testing.assert_allclose(f.depth[rows, cols][kept], analytic[kept], rtol=1e-6)
    assert (f.depth[rows, cols][~kept] == 0).all()
    assert 1.55 < T_world_cam[2, 3] < 1.75   # the camera is about 1.65 m above the road


def test_lidar_coverage_ground_truth_is_kitti_like(frame) -> None:
    """gt_coverage=lidar keeps the dense ground truth only inside the LiDAR's vertical field of view and
    range (nothing above the top ring's row, most LiDAR points covered), thinned to gt_density; the
    default dense frame is unchanged by the option's existence (same random stream)."""
    _, dense = frame
    gen = Generator(SynthConfig(frames=1, sequences=1, seed=3, gt_coverage="lidar", gt_density=0.5), Path("unused"))
    f = gen.render(0, 0)
    np.testing.assert_array_equal(f.depth, dense.depth)
    np.testing.assert_array_equal(f.sparse, dense.sparse)
    kept = f.groundtruth > 0
    np.testing.assert_array_equal(f.groundtruth[kept], dense.groundtruth[kept])
    covered = gen.renderer.lidar_coverage(f.depth) & (dense.groundtruth > 0)
    assert not (kept & ~covered).any()
    assert kept.sum() == pytest.approx(0.5 * covered.sum(), rel=0.02)
    top_ring_row = np.flatnonzero((f.sparse > 0).any(axis=1))[0]
    assert np.flatnonzero(kept.any(axis=1))[0] >= top_ring_row - 3
    assert covered[(f.sparse > 0) & (dense.groundtruth > 0)].mean() > 0.95
    assert 0.25 < kept[-352:].mean() < 0.45  # KITTI: about 30 % of the benchmark crop


def test_lidar_sees_what_the_camera_sees(frame) -> None:
    """Most projected LiDAR depths agree with the exact depth; the rest are KITTI-like parallax
    artifacts (points seen by the LiDAR past an object's edge) or range noise."""
    _, f = frame
    both = (f.sparse > 0) & (f.depth > 0)
    error = np.abs(f.sparse[both] - f.depth[both])
    assert np.median(error) < 0.05
    assert 0.0 < (error > 1.0).mean() < 0.05


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    small = dict(frames=3, sequences=1, camera_scale=0.25, layout="kitti_raw")
    generate(SynthConfig(seed=5, workers=1, **small), tmp_path / "a", progress=False)
    generate(SynthConfig(seed=5, workers=2, **small), tmp_path / "b", progress=False)
    generate(SynthConfig(seed=6, workers=1, **small), tmp_path / "c", progress=False)
    a, b, c = (_tree_digest(tmp_path / x) for x in "abc")
    assert len(a) == 3 * 3 + 5 + 1 + 3 and a == b   # per frame: image, scan, oxts; stamps; oxts format; calib
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k.endswith((".png", ".bin")))


def test_frames_move_at_10hz(tmp_path: Path) -> None:
    gen = Generator(SynthConfig(frames=3, sequences=1, seed=2), tmp_path)
    drive = gen.drive(0)
    steps = np.diff(drive.times)
    assert np.all(np.abs(steps - 0.1) < 0.01)
    poses = [drive.ego.pose(t) for t in drive.times]
    moved = np.linalg.norm(poses[1][:3, 3] - poses[0][:3, 3])
    assert 0.3 < moved < 1.6  # 3-16 m/s


def test_cli_synth_raw_with_preview(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    rc = main(["synth", "--out", str(out), "--frames", "2", "--seed", "1", "--layout", "kitti_raw",
               "--sequences", "1", "--workers", "1", "--set", "camera_scale=0.25", "--preview"])
    assert rc == 0
    drive = out / SYNTH_DATE / DRIVE1
    assert len(list((drive / "image_02" / "data").glob("*.png"))) == 2
    assert len(list((drive / "velodyne_points" / "data").glob("*.bin"))) == 2
    assert not (out / "train").exists()
    rgb = read_rgb(drive / "image_02" / "data" / "0000000000.png")
    assert rgb.shape == (94, 310, 3) and rgb.std() > 10
    preview = read_rgb(out / "preview.png")
    assert preview.shape[0] == 3 * 47 and preview.shape[1] == 155


def test_cli_rejects_bad_settings(tmp_path: Path, capsys) -> None:
    assert main(["synth", "--out", str(tmp_path), "--frames", "1", "--sequences", "2"]) == 2
    assert "--frames >= --sequences" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path), "--set", "lidar.azimuth_stp=0.1"]) == 2
    assert "azimuth_step_deg" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        Generator(SynthConfig(frames=4, sequences=2, val_sequences=3), tmp_path)


def test_kitti_loaders_read_synthetic_data(kitti_dc: Path) -> None:
    """build_dataset reads what the generator writes: crops, depths and intrinsics agree."""
    from lumde_depth.data import build_dataset

    val = build_dataset("kitti_dc", kitti_dc, "val")
    assert len(val) == 2 and len(build_dataset("kitti_dc", kitti_dc, "train")) == 2
    sample = next(s for s in (val[0], val[1]) if s["name"].endswith("0000000001"))
    assert sample["rgb"].shape == (3, 352, 1216) and sample["gt"].shape == (1, 352, 1216)
    sparse = read_depth_png(kitti_dc / "val" / DRIVE2 / "proj_depth" / "velodyne_raw" / "image_02" / "0000000001.png")
    np.testing.assert_array_equal(sample["sparse"][0].numpy(), sparse[23:, 13:13 + 1216])
    selected = build_dataset("kitti_dc", kitti_dc, "val_selection_cropped")
    assert len(selected) == 2
    twin = next(s for s in (selected[0], selected[1]) if "0000000001" in s["name"])
    np.testing.assert_array_equal(twin["sparse"].numpy(), sample["sparse"].numpy())
    np.testing.assert_array_equal(twin["gt"].numpy(), sample["gt"].numpy())
    np.testing.assert_allclose(twin["K"].numpy(), sample["K"].numpy(), atol=1e-3)


def test_oxts_packets_give_back_the_trajectory(kitti_dc: Path) -> None:
    """pykitti's pose-from-OXTS (as lumde kitti2bag uses it) recovers the IMU's path and attitude."""
    from lumde_depth.data.synth.camera import T_vehicle_imu
    from lumde_depth.data.oxts import oxts_poses

    drive_dir = kitti_dc / "raw" / SYNTH_DATE / DRIVE1
    files = sorted((drive_dir / "oxts" / "data").glob("*.txt"))
    packets = np.array([np.array(f.read_text().split(), dtype=np.float64) for f in files])
    assert packets.shape == (2, 30)
    assert len((drive_dir / "oxts" / "dataformat.txt").read_text().splitlines()) == 30
    assert (kitti_dc / "raw" / SYNTH_DATE / "calib_imu_to_velo.txt").is_file()
    drive = Generator(SynthConfig(frames=4, sequences=2, seed=7), kitti_dc).drive(0)
    truth = [drive.ego.pose(t) @ T_vehicle_imu() for t in drive.times]
    poses = oxts_poses(packets)
    np.testing.assert_allclose(poses[1][:3, 3], truth[1][:3, 3] - truth[0][:3, 3], atol=2e-3)
    np.testing.assert_allclose(poses[1][:3, :3], truth[1][:3, :3], atol=1e-6)
    speed = np.linalg.norm(truth[1][:3, 3] - truth[0][:3, 3]) / (drive.times[1] - drive.times[0])
    assert abs(packets[1, 8] - speed) < 0.5 and abs(packets[1, 9]) < 0.5       # vf, vl
    assert abs(packets[1, 13] - 9.81) < 1.2         # az: gravity, plus the suspension bouncing (< 0.9)


def test_kitti_raw_loader_reads_synthetic_sequences(tmp_path: Path) -> None:
    """Triplets for monocular training: the raw loader pairs consecutive frames and projects the scans."""
    from lumde_depth.data import build_dataset

    config = SynthConfig(frames=3, sequences=1, seed=4, camera_scale=0.25, layout="kitti_raw", workers=1)
    generate(config, tmp_path, progress=False)
    dataset = build_dataset("kitti_raw", tmp_path, "all")
    assert len(dataset) == 1
    sample = dataset[0]
    frame = Generator(config, tmp_path).render(0, 1)
    np.testing.assert_array_equal(sample["sparse"][0].numpy(), frame.sparse)
    np.testing.assert_allclose(sample["rgb"].numpy().transpose(1, 2, 0) * 255, frame.rgb, atol=0.5)
    assert not np.array_equal(sample["rgb_prev"].numpy(), sample["rgb"].numpy())   # the car moved


def test_cli_synth_writes_the_benchmark_crop_at_any_camera_scale(tmp_path: Path, capsys) -> None:
    """At camera_scale 0.25 (310x94 images) the selection is KITTI's 1216x352 crop scaled to 304x88."""
    assert main(["synth", "--out", str(tmp_path), "--frames", "2", "--sequences", "2", "--workers", "1",
                 "--layout", "kitti_dc", "--set", "camera_scale=0.25"]) == 0
    sel = tmp_path / "depth_selection" / "val_selection_cropped"
    assert (f"{sel}: 1 frame(s) of the val drives cropped to 304x88, KITTI's 1216x352 scaled by camera_scale 0.25"
            in capsys.readouterr().out)
    (sample,) = list(build_dataset("kitti_dc", tmp_path, "val_selection_cropped"))
    assert sample["rgb"].shape == (3, 88, 304) and sample["sparse"].shape == sample["gt"].shape == (1, 88, 304)
    full = read_rgb(tmp_path / "raw" / SYNTH_DATE / DRIVE2 / "image_02" / "data" / "0000000000.png")
    top, left = full.shape[0] - 88, (full.shape[1] - 304) // 2
    np.testing.assert_array_equal(rgb_array(sample["rgb"]), full[top:, left:left + 304])
    K = read_kitti_raw_calib(tmp_path / "raw" / SYNTH_DATE / DRIVE2, camera=2).K
    np.testing.assert_allclose(sample["K"].numpy(), K - [[0, 0, left], [0, 0, top], [0, 0, 0]], atol=1e-3)
