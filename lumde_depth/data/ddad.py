"""DDAD / DGP scenes (Toyota Research Institute's rig): surround cameras around a 360-degree LiDAR.

Layout (the DGP ``SceneDataset`` format, e.g. ``../shared/data/ddad_testscene``)::

    scene_XX/scene_<hash>.json              samples[i].datum_keys -> data[] (one datum per sensor)
    scene_XX/calibration/<hash>.json        names, intrinsics (fx, fy, cx, cy, skew), extrinsics
    scene_XX/rgb/CAMERA_YY/<stamp_us>.jpg   1936x1216 colour
    scene_XX/point_cloud/LIDAR/<stamp_us>.npz   key ``data``: (N, 4) X, Y, Z, INTENSITY, LiDAR frame

Each datum carries its sensor's pose in the world (quaternion ``qw, qx, qy, qz`` + translation,
metres). The LiDAR is projected into a camera through the two world poses,
``T_cam_lidar = inv(T_world_cam) @ T_world_lidar`` (as DGP does), which also accounts for the car's
motion between the LiDAR and the camera stamps (up to ~0.2 s apart here). The DDAD LiDAR is not a
scanning-line sensor: 40-50k points per sweep, 0.2-0.5 % of a camera's pixels, out to ~230 m.
Caveat: in the side cameras some ground points land on the ego car's body (bottom of the image);
DDAD ships self-occlusion masks for that, which this reader does not apply.
"""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import transforms3d

from lumde_depth.data.depth_io import DataError, _require_file, read_rgb
from lumde_depth.data.rig_frame import RigFrame
from lumde_depth.geometry.projection import project_points

LIDAR = "LIDAR"


def pose_matrix(pose: dict[str, Any]) -> np.ndarray:
    """A DGP pose (``rotation`` qw, qx, qy, qz; ``translation`` x, y, z) as a 4x4 float64 matrix."""
    try:
        r, t = pose["rotation"], pose["translation"]
        T = np.eye(4)
        T[:3, :3] = transforms3d.quaternions.quat2mat([r["qw"], r["qx"], r["qy"], r["qz"]])
        T[:3, 3] = [t["x"], t["y"], t["z"]]
    except (KeyError, TypeError) as exc:
        raise DataError(f"malformed DGP pose {pose!r}: expected rotation qw/qx/qy/qz and translation x/y/z") from exc
    return T


def read_ddad_scan(path: str | Path) -> np.ndarray:
    """A DGP point cloud ``.npz`` as ``(N, 4)`` float32 X, Y, Z, intensity in the LiDAR frame."""
    path = Path(path)
    _require_file(path)
    with np.load(path) as npz:
        if "data" not in npz.files:
            raise DataError(f"{path}: no 'data' array (found {npz.files}); a DGP point cloud stores (N, 4) in 'data'")
        data = npz["data"]
    if data.ndim != 2 or data.shape[1] < 3:
        raise DataError(f"{path}: point cloud must be (N, >=3), got {data.shape}")
    return data.astype(np.float32)


class DDADScene:
    """One DGP scene: ``len(scene)`` samples (time steps), each with a LiDAR sweep and ``cameras``.

    ``scene.frame(i, "CAMERA_01")`` is the :class:`RigFrame` of sample ``i`` seen by that camera,
    its ``depth`` the sweep projected into the image (z-buffered, 0 = no point).
    """

    def __init__(self, scene_json: str | Path) -> None:
        self.path = Path(scene_json)
        _require_file(self.path)
        try:
            scene = json.loads(self.path.read_text())
            data = {d["key"]: d for d in scene["data"]}
            samples = sorted(scene["samples"], key=lambda s: s["id"]["timestamp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{self.path}: not a DGP scene json (needs 'data' with 'key's and 'samples' with "
                            f"'datum_keys'): {exc}") from exc
        self.name = self.path.parent.name
        self.samples: list[dict[str, dict[str, Any]]] = []
        for sample in samples:
            datums = {data[k]["id"]["name"]: data[k] for k in sample["datum_keys"] if k in data}
            if LIDAR not in datums:
                raise DataError(f"{self.path}: sample {sample['id']} has no {LIDAR} datum")
            self.samples.append(datums)
        self.cameras: list[str] = sorted(name for name in self.samples[0] if name != LIDAR) if samples else []
        self.calibration_key: str | None = samples[0].get("calibration_key") if samples else None

    def __len__(self) -> int:
        return len(self.samples)

    @cached_property
    def intrinsics(self) -> dict[str, np.ndarray]:
        """3x3 K per camera, from ``calibration/<calibration_key>.json``."""
        path = self.path.parent / "calibration" / f"{self.calibration_key}.json"
        _require_file(path)
        calib = json.loads(path.read_text())
        out = {}
        for name, k in zip(calib["names"], calib["intrinsics"]):
            if name != LIDAR:
                out[name] = np.array([[k["fx"], k.get("skew", 0.0), k["cx"]], [0, k["fy"], k["cy"]], [0, 0, 1]])
        return out

    def scan(self, index: int) -> np.ndarray:
        """The LiDAR sweep of sample ``index``: ``(N, 4)`` float32 x, y, z, intensity."""
        return read_ddad_scan(self.path.parent / self.samples[index][LIDAR]["datum"]["point_cloud"]["filename"])

    def frame(self, index: int, camera: str) -> RigFrame:
        """Sample ``index`` seen by ``camera``, with the sweep projected into it."""
        datums = self.samples[index]
        if camera not in datums:
            raise DataError(f"{self.path}: sample {index} has no camera {camera!r} (cameras: {self.cameras})")
        image = datums[camera]["datum"]["image"]
        rgb = read_rgb(self.path.parent / image["filename"])
        h, w = rgb.shape[:2]
        if (w, h) != (image.get("width", w), image.get("height", h)):
            raise DataError(f"{self.path.parent / image['filename']}: image is {w}x{h}, the scene says "
                            f"{image['width']}x{image['height']}")
        T_world_cam = pose_matrix(image["pose"])
        T_cam_lidar = np.linalg.inv(T_world_cam) @ pose_matrix(datums[LIDAR]["datum"]["point_cloud"]["pose"])
        K = self.intrinsics[camera]
        points = self.scan(index)
        stamp = Path(image["filename"]).stem
        return RigFrame(rgb=rgb, depth=project_points(points, T_cam_lidar, K, w, h), K=K, scene=self.name,
                        camera=camera, name=f"{self.name}/{camera}/{stamp}", points=points,
                        T_cam_lidar=T_cam_lidar, T_world_cam=T_world_cam,
                        stamp_ns=int(stamp) * 1000 if stamp.isdigit() else -1)

    def frames(self, cameras: Iterable[str] | None = None) -> Iterator[RigFrame]:
        """Every (sample, camera) frame, in time order, then camera order."""
        cameras = self.cameras if cameras is None else [c for c in cameras if c in self.cameras]
        for index in range(len(self)):
            for camera in cameras:
                yield self.frame(index, camera)


def ddad_scenes(root: str | Path) -> list[DDADScene]:
    """Every DGP scene under ``root`` (the ``scene_<hash>.json`` files found below it; the dataset
    index ``scene_dataset*.json`` is not a scene), sorted by folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected a DDAD / DGP dataset with scene_*/scene_*.json)")
    paths = sorted((p for p in root.rglob("scene_*.json") if not p.name.startswith("scene_dataset")),
                   key=lambda p: (p.parent.name, p.name))
    if not paths:
        raise DataError(f"{root}: no DGP scene json (<scene>/scene_<hash>.json) found below it")
    return [DDADScene(p) for p in paths]


def ddad_frames(root: str | Path, cameras: Iterable[str] | None = None) -> Iterator[RigFrame]:
    """Every frame of every scene under ``root`` (optionally only some cameras)."""
    for scene in ddad_scenes(root):
        yield from scene.frames(cameras)
