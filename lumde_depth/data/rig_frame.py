"""``RigFrame``: one camera image of a real sensor rig with its depth, as the rig readers return it.

The readers of real recordings that are not KITTI's (:mod:`lumde_depth.data.ddad`,
:mod:`lumde_depth.data.argoverse`, ...) yield these plain numpy records, ready for
``DepthCompleter.complete(frame.rgb, sparse, frame.K)`` and for the evaluation protocols; numpy
only (no torch), so offline tools and benches read real rigs without a training stack.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RigFrame:
    """One image and its depth.

    - ``rgb``: ``(H, W, 3)`` uint8;
    - ``depth``: ``(H, W)`` float32 metres, 0 = none: the projected LiDAR (sparse) or the set's
      ground truth (see the reader);
    - ``K``: 3x3 float64 intrinsics of ``rgb`` (pinhole, or with ``D`` the raw camera's matrix);
    - ``scene``, ``camera``: ids (a scene groups the frames of one drive, for leave-one-scene-out);
    - ``name``: unique id ``scene/camera/stamp``;
    - ``points``: ``(N, >=3)`` the LiDAR scan in its own frame, or None when the set has no scan;
    - ``T_cam_lidar``: 4x4 LiDAR -> camera optical frame (None without a scan);
    - ``T_world_cam``: 4x4 camera pose in the world (None when the set has no poses);
    - ``stamp_ns``: image time in nanoseconds (-1 when unknown);
    - ``D``, ``distortion_model``: lens distortion of a raw (unrectified) ``rgb`` as in ``CameraInfo``
      (:mod:`lumde_depth.geometry.distortion`; None = pinhole): project and back-project with
      ``project_points(..., D=frame.D, distortion_model=frame.distortion_model)``.
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    scene: str
    camera: str
    name: str
    points: np.ndarray | None = None
    T_cam_lidar: np.ndarray | None = None
    T_world_cam: np.ndarray | None = None
    stamp_ns: int = -1
    D: np.ndarray | None = None
    distortion_model: str = ""
