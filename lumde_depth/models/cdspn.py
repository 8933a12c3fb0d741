"""CDSPN: compact depthwise-separable two-branch depth completion (Tang 2023 thesis, chapter 3).

Backbone: the layer table 3.2 of the thesis. Every layer is the unified block (depthwise kxk +
pointwise 1x1, bilinear x2 upsampling in the decoder layers, see
:class:`~lumde_depth.models.blocks.UnifiedBlock`). Two hourglass branches:

- colour-dominant (CD): RGB + sparse depth -> depth ``D_cd`` and confidence ``C_cd``;
- depth-dominant (DD): sparse depth + ``D_cd`` -> ``D_dd`` and ``C_dd``; its encoder takes the CD
  decoder features by concatenation (table 3.2: "," = concatenation, "+" = addition).

The two are fused by the confidence softmax of eq. 3.1,
``D = (e^C_cd D_cd + e^C_dd D_dd) / (e^C_cd + e^C_dd)`` (``coarse_depth``), then refined by
DA-CSPN++ (PE-Net, kept untouched by the thesis): affinities for 3x3, 5x5 and 7x7 kernels, a
per-pixel softmax over the three kernel sizes and a sparse-depth replacement mask are predicted
from the backbone features at 1/2 and full resolution; 6 propagation steps
``D_i^{t+1} = A_ii D_i^0 + sum_j A_ji D_j^t`` (eq. 2.5) run with dilation 2 (the 1/2-resolution
affinities, upsampled) and then 6 with dilation 1. Propagation multiplies shifted slices
of the depth by the affinities (traced for export: DA-CSPN++'s one-hot convolution, see
:func:`propagate`); the FLOP counter counts the eager form, element-wise, as 0.

``scale`` (32, 64, 96) is the thesis' global width multiplier: channel counts are table 3.2's
times ``scale / 32``. Inputs of any size are padded to a multiple of 16 and cropped back.
Branch depths are made positive with softplus; the refined depth is clamped at 0 (the affinity
normalisation allows a slightly negative value in rare cases).

Output dict: ``depth`` (refined), ``coarse_depth`` (eq. 3.1), ``confidence`` (B x 2: the softmax
weights of the CD and DD branches), ``rgb_depth``, ``dd_depth``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.models.blocks import UnifiedBlock as U
from lumde_depth.models.blocks import conv_bn_relu, pad_to_multiple, scaled
from lumde_depth.models.registry import register

STRIDE = 16
KERNELS = (3, 5, 7)
ITERATIONS = 6


class ColorBranch(nn.Module):
    """Colour-dominant hourglass (table 3.2, upper half)."""

    def __init__(self, c32: int, c64: int, c128: int, c256: int) -> None:
        super().__init__()
        self.init = U(4, c32, kernel=5)
        self.e1, self.e2, self.e2_2 = U(c32, c32, stride=2), U(c32, c32), U(c32, c32)
        self.e3, self.e4, self.e4_2 = U(c32, c64, stride=2), U(c64, c64), U(c64, c64)
        self.e5, self.e6 = U(c64, c128, stride=2), U(c128, c128)
        self.e7, self.e8 = U(c128, c256, stride=2), U(c256, c256)
        self.d1, self.d2 = U(c256, c128, up=True), U(c128, c64, up=True)
        self.d3, self.d4 = U(c64, c32, up=True), U(c32, c32, up=True)
        self.d5 = U(c32, 2, head=True)

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> dict[str, torch.Tensor]:
        f = {"init": self.init(torch.cat((rgb, sparse), 1))}
        f["e2_2"] = self.e2_2(self.e2(self.e1(f["init"])))
        f["e4_2"] = self.e4_2(self.e4(self.e3(f["e2_2"])))
        f["e6"] = self.e6(self.e5(f["e4_2"]))
        e8 = self.e8(self.e7(f["e6"]))
        f["skip1"] = self.d1(e8) + f["e6"]            # 1/8
        f["skip2"] = self.d2(f["skip1"]) + f["e4_2"]  # 1/4
        f["skip3"] = self.d3(f["skip2"]) + f["e2_2"]  # 1/2
        f["skip4"] = self.d4(f["skip3"]) + f["init"]  # full
        f["out"] = self.d5(f["skip4"])
        return f


class DepthBranch(nn.Module):
    """Depth-dominant hourglass (table 3.2, lower half), fed by the colour branch's decoder."""

    def __init__(self, c32: int, c64: int, c128: int) -> None:
        super().__init__()
        self.init = U(2, c32, kernel=5)
        self.e1, self.e2, self.e2_2 = U(c32, c32, stride=2), U(c32, c32), U(c32, c32)
        self.e3, self.e4 = U(2 * c32, c64, stride=2), U(c64, c64)
        self.e5, self.e6 = U(2 * c64, c128, stride=2), U(c128, c128)
        self.d1 = U(2 * c128, c64, up=True)
        self.d2, self.d3 = U(c64, c32, up=True), U(c32, c32, up=True)
        self.d4 = U(c32, 2, head=True)

    def forward(self, sparse: torch.Tensor, rgb_depth: torch.Tensor,
                cd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        e2_2 = self.e2_2(self.e2(self.e1(self.init(torch.cat((sparse, rgb_depth), 1)))))
        e4 = self.e4(self.e3(torch.cat((cd["skip3"], e2_2), 1)))
        e6 = self.e6(self.e5(torch.cat((cd["skip2"], e4), 1)))
        half = self.d2(self.d1(torch.cat((cd["skip1"], e6), 1)) + e4) + e2_2  # 1/2
        full = self.d3(half)
        return {"half": half, "full": full, "out": self.d4(full)}


class AffinityHead(nn.Module):
    """Predicts, at one scale, the DA-CSPN++ inputs from a feature map: kernel-size weights
    (softmax over 3/5/7), the sparse-depth replacement mask, and normalised affinities for each
    kernel size. PE-Net uses one dense 3x3 conv + BN per quantity; here they are one conv with
    all outputs stacked (same parameters and FLOPs, one kernel launch)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.splits = [len(KERNELS), 1, *(k * k - 1 for k in KERNELS)]
        self.conv = conv_bn_relu(channels, sum(self.splits), relu=False)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        conf, mask, *guides = torch.split(self.conv(feature), self.splits, 1)
        affinities = []
        for kernel, g in zip(KERNELS, guides):
            g = g / g.abs().sum(1, keepdim=True).clamp_min(1e-8)  # CSPN normalisation: sum_j |A_ji| = 1
            mid = kernel * kernel // 2
            weights = torch.cat((g[:, :mid], torch.zeros_like(g[:, :1]), g[:, mid:]), 1)  # centre slot: 0
            affinities.append((weights, 1.0 - g.sum(1, keepdim=True)))  # (A_ji in unfold order, A_ii)
        return torch.softmax(conf, 1), torch.sigmoid(mask), affinities


def propagate(depth: torch.Tensor, depth0: torch.Tensor, weights: torch.Tensor, a_ii: torch.Tensor,
              kernel: int, dilation: int) -> torch.Tensor:
    """One CSPN step ``A_ii D0 + sum_j A_ji D_j`` over the (dilated) kxk neighbourhood.

    ``weights`` is B x k^2 x H x W, neighbour offsets in row-major (dy, dx) order (``F.unfold``
    order) with 0 at the centre; ``a_ii`` is B x 1 x H x W.

    Eager: one multiply-add per offset with a shifted slice of the zero-padded depth (the loop
    runs over the k^2 offsets, never over pixels); cache-friendly, ~100x faster on a CPU than
    gathering all neighbours first. Traced (TorchScript / ONNX export): DA-CSPN++'s own
    formulation, the neighbours gathered by a convolution with one-hot kernels, which keeps the
    exported graph small (~5 nodes per step instead of ~4 per offset). Both compute the same sum.
    """
    r = dilation * (kernel // 2)
    if torch.jit.is_tracing():
        one_hot = torch.eye(kernel * kernel, dtype=depth.dtype, device=depth.device).view(-1, 1, kernel, kernel)
        neighbours = F.conv2d(depth, one_hot, padding=r, dilation=dilation)
        return (neighbours * weights).sum(1, keepdim=True) + a_ii * depth0
    padded = F.pad(depth, (r, r, r, r))
    h, w = depth.shape[-2], depth.shape[-1]
    out = a_ii * depth0
    for idx, weight in enumerate(weights.split(1, dim=1)):
        if idx != kernel * kernel // 2:
            y, x = (idx // kernel) * dilation, (idx % kernel) * dilation
            out = torch.addcmul(out, weight, padded[..., y:y + h, x:x + w])
    return out


def min_pool_sparse(sparse: torch.Tensor) -> torch.Tensor:
    """2x2 downsampling of sparse depth keeping the nearest valid point (0 where none)."""
    big = torch.where(sparse > 0, sparse, torch.full_like(sparse, 1e6))
    pooled = -F.max_pool2d(-big, 2)
    return torch.where(pooled < 1e6, pooled, torch.zeros_like(pooled))


def _up2(t: torch.Tensor) -> torch.Tensor:
    """Nearest x2 upsampling (1/2-resolution affinities and masks to full resolution, as PE-Net)."""
    return F.interpolate(t, scale_factor=2.0, mode="nearest")


class DACSPNpp(nn.Module):
    """DA-CSPN++ refinement (PE-Net): dilated (2, then 1), kernel-adaptive (3/5/7) propagation."""

    def __init__(self, half_channels: int, full_channels: int, iterations: int = ITERATIONS) -> None:
        super().__init__()
        self.iterations = iterations
        self.head_half = AffinityHead(half_channels)
        self.head_full = AffinityHead(full_channels)

    def forward(self, coarse: torch.Tensor, sparse: torch.Tensor, feat_half: torch.Tensor,
                feat_full: torch.Tensor) -> torch.Tensor:
        conf_h, mask_h, aff_h = self.head_half(feat_half)
        sparse_h = min_pool_sparse(sparse)
        mask_h = mask_h * (sparse_h > 0).to(mask_h.dtype)
        aff_h = [(_up2(weights), _up2(a_ii)) for weights, a_ii in aff_h]
        depth = self._stage(coarse, _up2(sparse_h), _up2(mask_h), _up2(conf_h), aff_h, 2)
        conf_f, mask_f, aff_f = self.head_full(feat_full)
        return self._stage(depth, sparse, mask_f * (sparse > 0).to(mask_f.dtype), conf_f, aff_f, 1)

    def _stage(self, depth0: torch.Tensor, sparse: torch.Tensor, mask: torch.Tensor, conf: torch.Tensor,
               affinities: list[tuple[torch.Tensor, torch.Tensor]], dilation: int) -> torch.Tensor:
        out = torch.zeros_like(depth0)
        for i, (kernel, (weights, a_ii)) in enumerate(zip(KERNELS, affinities)):
            depth = depth0
            for _ in range(self.iterations):
                depth = propagate(depth, depth0, weights, a_ii, kernel, dilation)
                depth = torch.addcmul(depth, mask, sparse - depth)  # mask*sparse + (1-mask)*depth
            out = out + conf[:, i:i + 1] * depth
        return out


class CDSPN(nn.Module):
    """Two-branch depthwise-separable backbone + confidence fusion (eq. 3.1) + DA-CSPN++."""

    def __init__(self, scale: int = 32, iterations: int = ITERATIONS) -> None:
        super().__init__()
        if scale not in (32, 64, 96):
            raise ValueError(f"cdspn scale must be 32, 64 or 96 (thesis x32/x64/x96), got {scale}")
        c32, c64, c128, c256 = (scaled(c, scale / 32) for c in (32, 64, 128, 256))
        self.cd = ColorBranch(c32, c64, c128, c256)
        self.dd = DepthBranch(c32, c64, c128)
        self.refine = DACSPNpp(2 * c32, 2 * c32, iterations)

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = rgb.shape[-2], rgb.shape[-1]
        rgb = pad_to_multiple(rgb, STRIDE, "replicate")
        sparse = pad_to_multiple(sparse, STRIDE)
        cd = self.cd(rgb, sparse)
        rgb_depth = F.softplus(cd["out"][:, :1])
        dd = self.dd(sparse, rgb_depth, cd)
        dd_depth = F.softplus(dd["out"][:, :1])
        confidence = torch.softmax(torch.cat((cd["out"][:, 1:], dd["out"][:, 1:]), 1), 1)
        coarse = confidence[:, :1] * rgb_depth + confidence[:, 1:] * dd_depth  # eq. 3.1
        refined = self.refine(coarse, sparse, torch.cat((cd["skip3"], dd["half"]), 1),
                              torch.cat((cd["skip4"], dd["full"]), 1)).clamp_min(0.0)
        out = {"depth": refined, "coarse_depth": coarse, "confidence": confidence, "rgb_depth": rgb_depth,
               "dd_depth": dd_depth}
        return {k: v[..., :h, :w] for k, v in out.items()}


@register("cdspn")
def cdspn(scale: int = 32, iterations: int = ITERATIONS) -> CDSPN:
    """CDSPN x``scale`` (32: ~0.4M, 64: ~1.2M, 96: ~2.6M parameters)."""
    return CDSPN(scale=scale, iterations=iterations)
