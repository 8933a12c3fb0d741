"""Writers for the KITTI raw drive layout and the KITTI depth-completion layout.

KITTI raw (what ``lumde kitti2bag`` and the ``kitti_raw`` loader read)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<date>_drive_<NNNN>_sync/image_02/data/<frame:010d>.png
    <root>/<date>/<date>_drive_<NNNN>_sync/image_02/timestamps.txt
    <root>/<date>/<date>_drive_<NNNN>_sync/velodyne_points/data/<frame:010d>.bin   (float32 x, y, z, intensity)
    <root>/<date>/<date>_drive_<NNNN>_sync/velodyne_points/timestamps{,_start,_end}.txt
    <root>/<date>/<date>_drive_<NNNN>_sync/oxts/data/<frame:010d>.txt, timestamps.txt, dataformat.txt
    <root>/<date>/calib_imu_to_velo.txt

KITTI depth completion, flattened (what the ``kitti_dc`` loader reads; raw drives as above under
``<root>/raw``)::

    <root>/{train,val}/<drive>/proj_depth/velodyne_raw/image_02/<frame:010d>.png   (uint16, metres x 256)
    <root>/{train,val}/<drive>/proj_depth/groundtruth/image_02/<frame:010d>.png
    <root>/depth_selection/val_selection_cropped/{image,velodyne_raw,groundtruth_depth,intrinsics}/
        <drive>_{image,velodyne_raw,groundtruth_depth}_<frame:010d>_image_02.png, <drive>_image_<frame>_image_02.txt
"""
from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from lumde_depth.data.depth_io import write_depth_png
from lumde_depth.data.synth.camera import IMU_TO_VELO_R, IMU_TO_VELO_T, R_RECT_00
from lumde_depth.data.synth.frame import Frame
from lumde_depth.data.synth.sequence import kitti_timestamp
from lumde_depth.geometry.calibration import Calibration, read_kitti_raw_calib, write_kitti_raw_calib
from lumde_depth.geometry.intrinsics import bottom_center_box, crop

SYNTH_DATE = "2000_01_01"
"""Recording date of synthetic drives: plainly not a real KITTI day, so names never clash."""
SELECTION_SIZE = (352, 1216)
"""(height, width) of KITTI's ``val_selection_cropped`` frames: the bottom rows, centred columns."""


def drive_name(sequence: int, date: str = SYNTH_DATE) -> str:
    """``2000_01_01_drive_0001_sync`` for sequence 0."""
    return f"{date}_drive_{sequence + 1:04d}_sync"


def raw_drive_dir(root: Path, sequence: int, date: str = SYNTH_DATE) -> Path:
    return Path(root) / date / drive_name(sequence, date)


def written_calibration(calib: Calibration) -> Calibration:
    """``calib`` as a reader gets it back from the files :func:`write_raw_meta` writes.

    The text files round the numbers; rendering with the round-tripped calibration (and writing
    the original ``calib``) makes the projected LiDAR PNGs equal, bit for bit, to projecting the
    written scans with the written files.
    """
    with tempfile.TemporaryDirectory() as folder:
        write_kitti_raw_calib(folder, calib, R_rect_00=R_RECT_00)
        return read_kitti_raw_calib(folder, camera=2)


def write_raw_frame(root: Path, sequence: int, index: int, frame: Frame, date: str = SYNTH_DATE) -> None:
    """The camera image and the Velodyne scan of one frame, in a KITTI raw drive."""
    drive = raw_drive_dir(root, sequence, date)
    image = drive / "image_02" / "data" / f"{index:010d}.png"
    scan = drive / "velodyne_points" / "data" / f"{index:010d}.bin"
    image.parent.mkdir(parents=True, exist_ok=True)
    scan.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame.rgb).save(image, format="PNG", compress_level=1)
    np.ascontiguousarray(frame.points, dtype="<f4").tofile(scan)


OXTS_FORMAT = (
    "lat: latitude of the oxts-unit (deg)", "lon: longitude of the oxts-unit (deg)",
    "alt: altitude of the oxts-unit (m)",
    "roll: roll angle (rad), 0 = level, positive = left side up, range: -pi .. +pi",
    "pitch: pitch angle (rad), 0 = level, positive = front down, range: -pi/2 .. +pi/2",
    "yaw: heading (rad), 0 = east, positive = counter clockwise, range: -pi .. +pi",
    "vn: velocity towards north (m/s)", "ve: velocity towards east (m/s)",
    "vf: forward velocity, i.e. parallel to earth-surface (m/s)",
    "vl: leftward velocity, i.e. parallel to earth-surface (m/s)",
    "vu: upward velocity, i.e. perpendicular to earth-surface (m/s)",
    "ax: acceleration in x, i.e. in direction of vehicle front (m/s^2)",
    "ay: acceleration in y, i.e. in direction of vehicle left (m/s^2)",
    "az: acceleration in z, i.e. in direction of vehicle top (m/s^2)",
    "af: forward acceleration (m/s^2)", "al: leftward acceleration (m/s^2)", "au: upward acceleration (m/s^2)",
    "wx: angular rate around x (rad/s)", "wy: angular rate around y (rad/s)", "wz: angular rate around z (rad/s)",
    "wf: angular rate around forward axis (rad/s)", "wl: angular rate around leftward axis (rad/s)",
    "wu: angular rate around upward axis (rad/s)",
    "pos_accuracy: velocity accuracy (north/east in m)", "vel_accuracy: velocity accuracy (north/east in m/s)",
    "navstat: navigation status", "numsats: number of satellites tracked by primary GPS receiver",
    "posmode: position mode of primary GPS receiver", "velmode: velocity mode of primary GPS receiver",
    "orimode: orientation mode of primary GPS receiver")
"""``oxts/dataformat.txt`` as KITTI ships it: one field per line, in packet order."""


def write_raw_meta(root: Path, sequence: int, calib: Calibration, times: np.ndarray, start: datetime,
                   oxts: np.ndarray, scan_period: float = 0.1, date: str = SYNTH_DATE) -> None:
    """Calibration of the date folder, the drive's timestamp files and its OXTS packets.

    The camera is triggered when the spinning LiDAR faces forward, half-way through its scan, as on
    the KITTI car: a scan starts ``scan_period / 2`` before the image and ends as long after it.
    ``date`` is the recording-day folder, which holds the calibration (one rig per day).
    """
    root = Path(root)
    write_kitti_raw_calib(root / date, calib, R_rect_00=R_RECT_00)
    (root / date / "calib_imu_to_velo.txt").write_text(
        "calib_time: written by lumde_depth\n" + "R: " + " ".join(f"{v:.12e}" for v in IMU_TO_VELO_R.ravel())
        + "\nT: " + " ".join(f"{v:.12e}" for v in IMU_TO_VELO_T) + "\n")
    drive = raw_drive_dir(root, sequence, date)
    files = {drive / "image_02" / "timestamps.txt": times,
             drive / "velodyne_points" / "timestamps.txt": times,
             drive / "velodyne_points" / "timestamps_start.txt": times - scan_period / 2,
             drive / "velodyne_points" / "timestamps_end.txt": times + scan_period / 2,
             drive / "oxts" / "timestamps.txt": times}
    for path, stamps in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(kitti_timestamp(start, s) + "\n" for s in stamps))
    (drive / "oxts" / "dataformat.txt").write_text("".join(f"{line}\n" for line in OXTS_FORMAT))
    (drive / "oxts" / "data").mkdir(parents=True, exist_ok=True)
    for index, packet in enumerate(oxts):
        text = " ".join(f"{v:.14g}" for v in packet[:25]) + " " + " ".join(str(int(v)) for v in packet[25:])
        (drive / "oxts" / "data" / f"{index:010d}.txt").write_text(text + "\n")


def write_dc_frame(root: Path, split: str, sequence: int, index: int, frame: Frame, date: str = SYNTH_DATE) -> None:
    """Projected LiDAR depth and ground truth of one frame, in the depth-completion layout."""
    proj = Path(root) / split / drive_name(sequence, date) / "proj_depth"
    name = f"{index:010d}.png"
    write_depth_png(proj / "velodyne_raw" / "image_02" / name, frame.sparse)
    write_depth_png(proj / "groundtruth" / "image_02" / name, frame.groundtruth)


def selection_size(camera_scale: float = 1.0) -> tuple[int, int]:
    """(height, width) of the ``val_selection_cropped`` crop of a camera scaled by ``camera_scale``:
    KITTI's 352x1216 scaled with the image, so it fits any reduced-resolution camera."""
    return int(round(SELECTION_SIZE[0] * camera_scale)), int(round(SELECTION_SIZE[1] * camera_scale))


def write_selection_frame(root: Path, sequence: int, index: int, frame: Frame, calib: Calibration,
                          size: tuple[int, int] = SELECTION_SIZE, date: str = SYNTH_DATE) -> None:
    """A ``val_selection_cropped`` frame: the bottom-centre crop of ``size`` (KITTI's 1216x352 at full
    resolution, :func:`selection_size`) and its shifted intrinsics. A camera smaller than the crop
    (another rig's) has no selection frame."""
    try:
        box = bottom_center_box(*frame.rgb.shape[:2], *size)
    except ValueError:
        return
    folder = Path(root) / "depth_selection" / "val_selection_cropped"
    stem = f"{drive_name(sequence, date)}_{{}}_{index:010d}_image_02"
    for sub in ("image", "velodyne_raw", "groundtruth_depth", "intrinsics"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rgb, K = crop(frame.rgb, calib.K, *box)
    top, left, height, width = box
    window = np.s_[top:top + height, left:left + width]
    Image.fromarray(np.ascontiguousarray(rgb)).save(folder / "image" / f"{stem.format('image')}.png", compress_level=1)
    write_depth_png(folder / "velodyne_raw" / f"{stem.format('velodyne_raw')}.png", frame.sparse[window])
    write_depth_png(folder / "groundtruth_depth" / f"{stem.format('groundtruth_depth')}.png", frame.groundtruth[window])
    (folder / "intrinsics" / f"{stem.format('image')}.txt").write_text(" ".join(f"{v:.6e}" for v in K.ravel()) + "\n")
