"""LUMDE monocular networks: teacher and light student depth nets, pose nets, Transformer critic.

The depth nets follow the Monodepth2 recipe (Godard et al. 2019): an encoder with five stages
(E0 at H/2 ... E4 at H/32), a decoder that upsamples with skip connections and predicts a sigmoid
disparity at four scales, turned into depth in ``[min_depth, max_depth]``. The teacher uses a
ResNet34 encoder and dense 3x3 convolutions; the student uses depthwise-separable blocks
(:class:`~lumde_depth.models.blocks.UnifiedBlock`) everywhere, chosen for speed.

Outputs of a depth net: ``depth`` (B x 1 x H x W metres, scale 0), ``disp_0`` ... ``disp_3``
(sigmoid disparities at H/2**s), and the encoder / decoder features ``E0``-``E4``, ``D0``-``D4``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import axis_angle_to_rotation_matrix
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from lumde_depth.models.blocks import UnifiedBlock, pad_to_multiple, resnet_stage, scaled
from lumde_depth.models.registry import register

RGB_MEAN, RGB_STD = 0.45, 0.225
SCALES = (0, 1, 2, 3)
STRIDE = 32  # of the coarsest encoder stage (E4)


def pad_input(rgb: torch.Tensor) -> torch.Tensor:
    """Normalise and replicate-pad the bottom/right to a multiple of :data:`STRIDE`, and to at least
    ``2 * STRIDE``: E4 then has at least 2 x 2 pixels, which the decoder's reflection padding and
    BatchNorm in training need, so any input size works (outputs are cropped back)."""
    x = pad_to_multiple((rgb - RGB_MEAN) / RGB_STD, STRIDE, mode="replicate")
    short_h, short_w = max(0, 2 * STRIDE - x.shape[-2]), max(0, 2 * STRIDE - x.shape[-1])
    return F.pad(x, (0, short_w, 0, short_h), mode="replicate")


def disp_to_depth(disp: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Sigmoid disparity in [0, 1] -> depth in [min_depth, max_depth] (Monodepth2's mapping)."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return 1.0 / (min_disp + (max_disp - min_disp) * disp)


class ResNetEncoder(nn.Module):
    """ResNet encoder (basic blocks) returning the five stage outputs E0..E4."""

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        ch = [scaled(c, width) for c in (64, 64, 128, 256, 512)]
        self.channels = tuple(ch)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, ch[0], 7, 2, 3, bias=False), nn.BatchNorm2d(ch[0]),
                                  nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList(
            resnet_stage(ch[i], ch[i + 1], n, 1 if i == 0 else 2) for i, n in enumerate(layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        x = self.pool(feats[0])
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class SeparableEncoder(nn.Module):
    """Depthwise-separable encoder: a 3x3 stem at H/2, then stages of unified blocks (stride 2 first)."""

    def __init__(self, channels: Sequence[int] = (16, 24, 32, 64, 96), blocks: Sequence[int] = (1, 2, 2, 2),
                 in_channels: int = 3) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList(
            nn.Sequential(UnifiedBlock(channels[i], channels[i + 1], stride=2),
                          *(UnifiedBlock(channels[i + 1], channels[i + 1]) for _ in range(n - 1)))
            for i, n in enumerate(blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


def _dense_conv(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ELU(inplace=True))


def _dense_head(cin: int) -> nn.Module:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, 1, 3))


def _separable_conv(cin: int, cout: int) -> nn.Module:
    return UnifiedBlock(cin, cout)


def _separable_head(cin: int) -> nn.Module:
    return UnifiedBlock(cin, 1, head=True)


class DispDecoder(nn.Module):
    """Monodepth2 decoder: for i = 4..0, conv, x2 upsampling, skip concat with E(i-1), conv;
    sigmoid disparity heads at :data:`SCALES`. ``separable`` swaps the dense 3x3 convolutions for
    depthwise-separable blocks."""

    def __init__(self, enc_channels: Sequence[int], dec_channels: Sequence[int] = (16, 32, 64, 128, 256),
                 separable: bool = False) -> None:
        super().__init__()
        conv, head = (_separable_conv, _separable_head) if separable else (_dense_conv, _dense_head)
        self.up0 = nn.ModuleList()
        self.up1 = nn.ModuleList()
        for i in range(4, -1, -1):
            cin = enc_channels[4] if i == 4 else dec_channels[i + 1]
            self.up0.append(conv(cin, dec_channels[i]))
            skip = enc_channels[i - 1] if i > 0 else 0
            self.up1.append(conv(dec_channels[i] + skip, dec_channels[i]))
        self.heads = nn.ModuleDict({str(s): head(dec_channels[s]) for s in SCALES})

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[dict[int, torch.Tensor], list[torch.Tensor]]:
        x = feats[4]
        disps: dict[int, torch.Tensor] = {}
        dec: list[torch.Tensor] = []
        for step, i in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.up0[step](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], dim=1)
            x = self.up1[step](x)
            dec.append(x)
            if i in SCALES:
                disps[i] = torch.sigmoid(self.heads[str(i)](x))
        return disps, dec[::-1]


class MonoDepthNet(nn.Module):
    """Encoder + disparity decoder; ``forward(rgb)`` -> dict (see module docstring); any input size."""

    def __init__(self, encoder: nn.Module, decoder: DispDecoder, min_depth: float = 0.1,
                 max_depth: float = 100.0) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = rgb.shape[-2:]
        feats = self.encoder(pad_input(rgb))
        disps, dec = self.decoder(feats)
        out: dict[str, torch.Tensor] = {}
        for s, disp in disps.items():
            out[f"disp_{s}"] = disp[..., : -(-h // 2 ** s), : -(-w // 2 ** s)]
        out["depth"] = disp_to_depth(out["disp_0"], self.min_depth, self.max_depth)
        out.update({f"E{i}": f for i, f in enumerate(feats)})
        out.update({f"D{i}": f for i, f in enumerate(dec)})
        return out


class PoseNet(nn.Module):
    """Relative camera motion between two frames (Monodepth2's separate pose encoder + decoder).

    ``forward(rgb_a, rgb_b)`` -> B x 4 x 4 transform taking points of frame a to frame b
    (axis-angle and translation regressed, scaled by 0.01 for a stable start).
    """

    def __init__(self, encoder: nn.Module, channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 6, 1))

    def forward(self, rgb_a: torch.Tensor, rgb_b: torch.Tensor) -> torch.Tensor:
        x = pad_input(torch.cat([rgb_a, rgb_b], dim=1))
        params = 0.01 * self.decoder(self.encoder(x)[-1]).mean(dim=(2, 3))
        return pose_matrix(params[:, :3], params[:, 3:])


def pose_matrix(axis_angle: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """B x 3 axis-angle and B x 3 translation -> B x 4 x 4 rigid transform."""
    T = torch.zeros(axis_angle.shape[0], 4, 4, dtype=axis_angle.dtype, device=axis_angle.device)
    T[:, :3, :3] = axis_angle_to_rotation_matrix(axis_angle)
    T[:, :3, 3] = translation
    T[:, 3, 3] = 1.0
    return T


class PatchTransformerCritic(nn.Module):
    """A small Vision-Transformer critic over depth-map patches (LUMDE's GAN discriminator).

    The depth map is turned into mean-normalised disparity (scale-free, as the student's depth
    scale is unknown in self-supervision), resized to ``grid`` and cut into ``patch`` x ``patch``
    patches; a class token after ``layers`` Transformer encoder layers gives one unbounded score
    per image (a WGAN critic: higher = more like the teacher).
    """

    def __init__(self, grid: Sequence[int] = (96, 320), patch: int = 16, dim: int = 64, layers: int = 2,
                 heads: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        if self.grid[0] % patch or self.grid[1] % patch:
            raise ValueError(f"grid {self.grid} must be a multiple of patch {patch}")
        tokens = (self.grid[0] // patch) * (self.grid[1] // patch)
        self.embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1)

    def forward(self, depth: torch.Tensor, rgb: torch.Tensor | None = None) -> torch.Tensor:
        disp = 1.0 / depth.clamp_min(1e-3)
        disp = disp / disp.mean(dim=(1, 2, 3), keepdim=True)
        x = disp if rgb is None else torch.cat([disp, rgb], dim=1)
        x = F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos
        with sdpa_kernel(SDPBackend.MATH):  # the gradient penalty needs a double backward
            encoded = self.encoder(tokens)
        return self.score(self.norm(encoded[:, 0]))


@register("lumde_teacher")
def lumde_teacher(min_depth: float = 0.1, max_depth: float = 100.0, layers: Sequence[int] = (3, 4, 6, 3)) -> MonoDepthNet:
    """Monocular teacher: ResNet34 encoder + dense Monodepth2 decoder."""
    encoder = ResNetEncoder(layers)
    return MonoDepthNet(encoder, DispDecoder(encoder.channels), min_depth, max_depth)


@register("lumde_student")
def lumde_student(min_depth: float = 0.1, max_depth: float = 100.0, width: float = 1.5) -> MonoDepthNet:
    """Monocular student: depthwise-separable encoder and decoder, capacity kept at low
    resolution where it is cheap (see bench/models for its cost against the teacher)."""
    enc = [scaled(c, width) for c in (16, 24, 48, 96, 192)]
    dec = [scaled(c, width) for c in (8, 16, 24, 48, 96)]
    encoder = SeparableEncoder(enc, blocks=(1, 2, 3, 3))
    return MonoDepthNet(encoder, DispDecoder(encoder.channels, dec, separable=True), min_depth, max_depth)


@register("lumde_pose")
def lumde_pose(encoder: str = "resnet18") -> PoseNet:
    """Pose net on two stacked frames: ``resnet18`` (the teacher's) or ``separable`` (the student's)."""
    if encoder == "resnet18":
        enc: nn.Module = ResNetEncoder((2, 2, 2, 2), in_channels=6)
        return PoseNet(enc, enc.channels[-1])
    if encoder == "separable":
        enc = SeparableEncoder(in_channels=6)
        return PoseNet(enc, enc.channels[-1], hidden=64)
    raise ValueError(f"lumde_pose: unknown encoder '{encoder}' (use 'resnet18' or 'separable')")


@register("lumde_discriminator")
def lumde_discriminator(grid: Sequence[int] = (96, 320), patch: int = 16, dim: int = 64, layers: int = 2,
                        heads: int = 4) -> PatchTransformerCritic:
    """The Transformer critic of LUMDE's adversarial distillation."""
    return PatchTransformerCritic(grid, patch, dim, layers, heads)
