"""Tiny KITTI raw drives and bag reading, shared by the bag tool tests."""
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from lumde_depth.geometry import Calibration, write_kitti_raw_calib

W, H, N = 24, 10, 3
START_NS = 1_317_043_079_286_718_464 + 123  # nanosecond digits must survive


def _stamp_line(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"


def make_drive(root: Path, frames: int = N, oxts: bool = True) -> tuple[Path, dict]:
    """A tiny KITTI raw drive: colour images, scans, timestamps, calib, (oxts)."""
    rng = np.random.default_rng(0)
    K = np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]])
    P = np.hstack([K, K @ np.array([[0.06], [0.0], [0.0]])])
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]  # velo x forward, y left, z up -> camera optical
    T[:3, 3] = [0.02, -0.08, -0.27]
    date = root / "2011_09_26"
    drive = date / "2011_09_26_drive_0001_sync"
    write_kitti_raw_calib(date, Calibration(P=P, T_cam_lidar=T, width=W, height=H))
    (date / "calib_imu_to_velo.txt").write_text("R: 1 0 0 0 1 0 0 0 1\nT: -0.8 0.3 -0.8\n")
    truth = {"images": [], "scans": [], "stamps": {}}
    for sensor, ext in (("image_02", "png"), ("velodyne_points", "bin")) + ((("oxts", "txt"),) if oxts else ()):
        (drive / sensor / "data").mkdir(parents=True)
        offset = {"image_02": 0, "velodyne_points": -13_000_000, "oxts": -3_000_000}[sensor]
        stamps = [START_NS + offset + k * 103_762_560 for k in range(frames)]
        truth["stamps"][sensor] = stamps
        (drive / sensor / "timestamps.txt").write_text("\n".join(map(_stamp_line, stamps)) + "\n")
        for k in range(frames):
            path = drive / sensor / "data" / f"{k:010d}.{ext}"
            if sensor == "image_02":
                img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
                PILImage.fromarray(img).save(path)
                truth["images"].append(img)
            elif sensor == "velodyne_points":
                n = 200 + k
                scan = np.stack([rng.uniform(2, 20, n), rng.uniform(-5, 5, n), rng.uniform(-1, 1, n),
                                 rng.uniform(0, 1, n)], axis=1).astype(np.float32)
                scan.tofile(path)
                truth["scans"].append(scan)
            else:
                packet = np.zeros(30)
                packet[:6] = [49.0 + 1e-5 * k, 8.4 + 2e-5 * k, 110.0, 0.01, -0.02, 0.3 + 0.01 * k]
                packet[14:17] = [0.1, 0.2, 9.8]
                packet[20:23] = [0.01, 0.02, 0.03]
                path.write_text(" ".join(f"{v:.10f}" for v in packet))
    return drive, truth


def read_bag(path: Path) -> tuple[dict, dict]:
    """topic -> [(bag time, message)], and topic -> connection."""
    from rosbags.highlevel import AnyReader

    out, conns = {}, {}
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
            conns[conn.topic] = conn
    return out, conns
