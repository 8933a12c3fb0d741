"""The camera of one image as a ROS ``CameraInfo`` describes it: what projection and back-projection use.

A ``CameraInfo`` describes two images of one camera (REP 104, ``image_geometry``):

- the *raw* image (``image_raw``, as the driver publishes it): matrix ``K`` and lens distortion
  ``D`` / ``distortion_model``, in the camera's optical frame;
- the *rectified* image (``image_rect``): projection matrix ``P`` (3x4), in the frame rotated by the
  rectification ``R`` (identity for a monocular camera).

With ``D`` = 0 the two coincide and, as before, ``P`` is used (KITTI's rectified images work
unchanged). With ``D`` != 0 the image on the topic is the raw one: :class:`CameraModel` then projects
through ``K`` and ``D`` onto it, and back-projects along its undistorted rays; :meth:`rectified` gives
the rectified image's model (and :meth:`rectifier` the resampling of the raw image onto it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumde_depth.geometry.cloud import organized_cloud
from lumde_depth.geometry.distortion import coefficients
from lumde_depth.geometry.projection import intrinsic_matrix, project_points
from lumde_depth.geometry.rectify import Rectifier, cached_rectifier


@dataclass(frozen=True, eq=False)
class CameraModel:
    """One image's camera.

    ``K`` 3x3 matrix of the image (the raw ``K`` when ``D`` is set, else the left block of ``P``);
    ``D`` distortion coefficients (None = none) of ``distortion_model``; ``R`` the rotation from the
    camera's optical frame to the image's frame (a rectified stereo image; None = identity);
    ``P`` 3x4 rectified projection matrix and ``R_rect`` rectification rotation of the ``CameraInfo``,
    kept to rectify a raw image (None: ``[K | 0]`` and identity).
    """

    K: np.ndarray
    width: int
    height: int
    D: np.ndarray | None = None
    distortion_model: str = ""
    R: np.ndarray | None = None
    P: np.ndarray | None = None
    R_rect: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", intrinsic_matrix(self.K).copy())
        object.__setattr__(self, "D", coefficients(self.D, self.distortion_model))
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        for name, shape in (("R", (3, 3)), ("P", (3, 4)), ("R_rect", (3, 3))):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64).reshape(shape)
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"camera {name} contains NaN or inf")
                object.__setattr__(self, name, value)

    @classmethod
    def pinhole(cls, P: np.ndarray, width: int, height: int) -> "CameraModel":
        """An undistorted camera with the 3x3 ``K`` or 3x4 ``P`` (its left block is used)."""
        return cls(K=intrinsic_matrix(P), width=int(width), height=int(height))

    @property
    def distorted(self) -> bool:
        """True for a raw image with lens distortion."""
        return self.D is not None

    def _T(self, T_cam_lidar: np.ndarray) -> np.ndarray:
        if self.R is None:
            return T_cam_lidar
        rotate = np.eye(4)
        rotate[:3, :3] = self.R
        return rotate @ np.asarray(T_cam_lidar, dtype=np.float64)

    def project(self, points: np.ndarray, T_cam_lidar: np.ndarray, min_depth: float = 0.1,
                max_depth: float = np.inf) -> np.ndarray:
        """Sparse ``(height, width)`` depth of LiDAR ``points`` on this image (see ``project_points``);
        the depth is ``z`` in the image's frame."""
        return project_points(points, self._T(T_cam_lidar), self.K, self.width, self.height, min_depth,
                              max_depth, D=self.D, distortion_model=self.distortion_model)

    def cloud(self, depth: np.ndarray, rgb: np.ndarray | None = None, decimation: int = 1) -> np.ndarray:
        """Organized cloud of a z-depth image on this camera, in the camera's optical frame
        (see ``organized_cloud``)."""
        return organized_cloud(depth, self.K, rgb, decimation, D=self.D, distortion_model=self.distortion_model,
                               R=self.R)

    def rectified(self) -> "CameraModel":
        """The model of the rectified image: ``P``'s matrix, no distortion, frame rotated by ``R_rect``."""
        P = np.hstack([self.K, np.zeros((3, 1))]) if self.P is None else self.P
        R = None if self.R_rect is None or np.allclose(self.R_rect, np.eye(3), atol=1e-12) else self.R_rect
        return CameraModel(K=P[:, :3], width=self.width, height=self.height, R=R)

    def rectifier(self) -> Rectifier:
        """Resampling of this (raw) camera's images onto :meth:`rectified`'s grid; cached per calibration."""
        return cached_rectifier(self.K, self.D, self.distortion_model, self.width, self.height, self.P, self.R_rect)
