"""Self-supervised monocular loss (the Monodepth2 recipe used by LUMDE).

For a target frame t with sources s in {t-1, t+1}: warp each source into t through the predicted
depth of t and the predicted relative pose, and score the warp photometrically with
``0.85 * (1 - SSIM) / 2 + 0.15 * L1``; take the per-pixel minimum over the sources (occlusions);
auto-mask pixels where the unwarped source already matches better (static camera, objects moving
with it); add an edge-aware smoothness term on mean-normalised disparity; average over scales,
each upsampled to full resolution before warping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.config import field
from lumde_depth.models.mono import SCALES, disp_to_depth


@dataclass
class SelfSupConfig:
    ssim_weight: float = field(0.85, low=0.0, high=1.0, doc="weight of (1 - SSIM) / 2 against L1")
    smoothness: float = field(1e-3, low=0.0, doc="edge-aware smoothness weight")
    automask: bool = field(True, doc="mask pixels the unwarped source explains better (Monodepth2)")
    scales: list[int] = field(default_factory=lambda: list(SCALES), doc="disparity scales used")


def photometric_error(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.85) -> torch.Tensor:
    """Per-pixel ``w * (1 - SSIM) / 2 + (1 - w) * L1`` averaged over channels: B x 1 x H x W."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    ssim = kornia.metrics.ssim(pred, target, window_size=3, padding="same").mean(1, keepdim=True)
    return ssim_weight * (1.0 - ssim).clamp(0.0, 2.0) / 2.0 + (1.0 - ssim_weight) * l1


def smoothness(disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised disparity (scale-free), weighted by image edges."""
    norm = disp / disp.mean(dim=(2, 3), keepdim=True).clamp_min(1e-7)
    return kornia.losses.inverse_depth_smoothness_loss(norm, image)


def warp(source: torch.Tensor, depth: torch.Tensor, source_from_target: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Resample ``source`` onto the target's pixel grid through the target depth and pose."""
    return kornia.geometry.depth.warp_frame_depth(source, depth, source_from_target, K)


def photometric_errors(target: torch.Tensor, images: torch.Tensor, ssim_weight: float = 0.85) -> torch.Tensor:
    """:func:`photometric_error` of each of S images ``B x S x C x H x W`` against ``target`` (B x C x H x W):
    B x S x H x W."""
    b, s = images.shape[:2]
    error = photometric_error(images.flatten(0, 1), target[:, None].expand_as(images).flatten(0, 1), ssim_weight)
    return error.view(b, s, *error.shape[-2:])


def warp_sources(sources: torch.Tensor, depth: torch.Tensor, source_from_target: torch.Tensor, K: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each of S source images ``B x S x C x H x W`` resampled onto the target's grid (:func:`warp`) through
    the target's depth (B x 1 x H x W), the poses ``B x S x 4 x 4`` (target-frame points into each source
    frame) and the intrinsics ``K`` (B x 3 x 3, shared by target and sources); and ``B x S x H x W`` bool:
    the target pixels that land inside each source image."""
    b, s, c = sources.shape[:3]
    flat = lambda x: x[:, None].expand(b, s, *x.shape[1:]).flatten(0, 1)   # noqa: E731
    with_ones = torch.cat([sources, torch.ones_like(sources[:, :, :1])], 2).flatten(0, 1)   # 1 inside the image
    warped = warp(with_ones, flat(depth), source_from_target.flatten(0, 1).to(depth.dtype), flat(K).to(depth.dtype))
    warped = warped.view(b, s, c + 1, *depth.shape[-2:])
    return warped[:, :, :c], warped[:, :, c] > 0.999


def min_reprojection(reprojection: torch.Tensor, identity: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Monodepth2's per-pixel minimum over the sources, with auto-masking.

    ``reprojection``: ``B x S x H x W`` photometric errors of the warped sources (:func:`photometric_errors`
    of :func:`warp_sources`), +inf where a source cannot explain a pixel (out of its view, or no such
    source); ``identity``: the same for the *unwarped* sources, or None (no auto-masking). Returns the
    per-pixel minimum over all of them (``B x 1 x H x W``; +inf where nothing is valid) and where an
    identity error was the smallest (ties go to the identity): pixels the camera's motion does not explain
    better than no motion at all (a static camera, objects moving with it), which then add a constant and
    pull no depth.
    """
    errors = reprojection if identity is None else torch.cat([identity, reprojection], 1)
    best, index = errors.min(dim=1, keepdim=True)
    automasked = index < (0 if identity is None else identity.shape[1])
    return best, automasked


class SelfSupervisedLoss(nn.Module):
    """``forward(out, batch, poses)`` -> (loss, parts).

    ``out`` holds ``disp_s`` at the configured scales (a monocular depth net's output); ``batch``
    holds ``rgb`` (target), ``rgb_prev``, ``rgb_next`` and ``K``; ``poses`` maps ``"prev"`` /
    ``"next"`` to B x 4 x 4 transforms taking target-frame points into that source frame.
    """

    def __init__(self, cfg: SelfSupConfig | None = None, min_depth: float = 0.1, max_depth: float = 100.0) -> None:
        super().__init__()
        self.cfg = cfg or SelfSupConfig()
        self.min_depth, self.max_depth = min_depth, max_depth

    def forward(self, out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                poses: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        target, K = batch["rgb"], batch["K"]
        sources = torch.stack([batch["rgb_prev"], batch["rgb_next"]], 1)
        source_from_target = torch.stack([poses["prev"], poses["next"]], 1)
        identity = None
        if self.cfg.automask:
            identity = photometric_errors(target, sources, self.cfg.ssim_weight)
            identity = identity + 1e-5 * torch.randn_like(identity)
        photo_total = target.new_zeros(())
        smooth_total = target.new_zeros(())
        masked_share = target.new_zeros(())
        for scale in self.cfg.scales:
            disp = out[f"disp_{scale}"]
            full = F.interpolate(disp, size=target.shape[-2:], mode="bilinear", align_corners=False)
            depth = disp_to_depth(full, self.min_depth, self.max_depth)
            warped, _ = warp_sources(sources, depth, source_from_target, K.expand(len(target), 3, 3))
            best, automasked = min_reprojection(photometric_errors(target, warped, self.cfg.ssim_weight), identity)
            photo_total = photo_total + best.mean()
            masked_share = masked_share + automasked.float().mean()
            small = F.interpolate(target, size=disp.shape[-2:], mode="bilinear", align_corners=False)
            smooth_total = smooth_total + smoothness(disp, small) / (2 ** scale)
        n = len(self.cfg.scales)
        photo, smooth = photo_total / n, self.cfg.smoothness * smooth_total / n
        total = photo + smooth
        return total, {"photometric": float(photo.detach()), "smoothness": float(smooth.detach()),
                       "automasked": float(masked_share.detach()) / n, "total": float(total.detach())}
