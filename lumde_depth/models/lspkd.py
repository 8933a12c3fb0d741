"""LSPKD depth-completion networks (Jeong et al., Sensors 2022, section 3.1 and figure 1).

Teacher (``lspkd_teacher``): two ResNet34 encoders, one for the RGB image and one for the sparse
LiDAR depth. Each encoder is an input convolution, 16 basic blocks in four stages (3, 4, 6, 3) and
a last strided convolution. The two bottlenecks are concatenated and decoded by 6 transposed
convolutions; before each decoder layer its input is concatenated with the RGB and the LiDAR
encoder features of the same resolution (skip connections from both encoders).

Student (``lspkd_student``): the same design with ResNet18 encoders (8 basic blocks, 2 per stage)
and every channel count multiplied by ``width`` (0.5 for KITTI, 0.125 for NYUv2).

Resolutions (H x W input): E0 full, E1 1/2, E2 1/4, E3 1/8, E4 1/16, bottleneck 1/32; the decoder
goes back D0 1/16, D1 1/8, D2 1/4, D3 1/2, D4 full, then the depth head. This progressive
downsampling is why the teacher needs fewer operations than Self-S2D (paper, table 1) although it
has twice its encoders. Inputs of any size are padded (bottom/right) to a multiple of 32 and the
depth is cropped back; the features keep the padded size.

Output dict: ``depth`` (B x 1 x H x W metres, positive: softplus of the last layer, which is
linear above a few metres and keeps a gradient everywhere, unlike a ReLU), ``E0``..``E4``
(RGB and LiDAR encoder stage outputs concatenated on channels) and ``D0``..``D4`` (decoder
layer outputs), the features LSPKD distills (E1-E3, D1-D3 by default).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.models.blocks import conv_bn_relu, deconv_bn_relu, pad_to_multiple, resnet_stage, scaled
from lumde_depth.models.fill import nearest_surface_fill
from lumde_depth.models.registry import register

STAGE_CHANNELS = (64, 128, 256, 512)
DECODER_CHANNELS = (256, 128, 64, 64, 64)
BLOCKS = {34: (3, 4, 6, 3), 18: (2, 2, 2, 2)}
STRIDE = 32
GUIDE_MAX_DEPTH = 100.0   # m: default of guide_max_depth (points beyond it are ignored by the guided prefill)
GUIDE_MIN_DEPTH = 0.5     # m: where the prefill is empty (a frame without points), 0.5 m x exp(residual)
GUIDE_LOG_RANGE = 4.0     # the residual's log factor is clamped to +-4 (x0.02 .. x55)


def feature_channels(width: float) -> dict[str, int]:
    """Channels of the named features at ``width``: E0..E4 (RGB and LiDAR encoders concatenated),
    D0..D4. ``feature_channels(1.0)`` is the teacher's: what the distillation adapters map to."""
    enc = [2 * scaled(c, width) for c in (STAGE_CHANNELS[0], *STAGE_CHANNELS)]
    dec = [scaled(c, width) for c in DECODER_CHANNELS]
    return {**{f"E{i}": c for i, c in enumerate(enc)}, **{f"D{i}": c for i, c in enumerate(dec)}}


class ResNetEncoder(nn.Module):
    """Input conv (E0, full resolution), four stride-2 ResNet stages (E1..E4), last stride-2 conv."""

    def __init__(self, in_channels: int, depth: int, width: float) -> None:
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(BLOCKS)}, got {depth}")
        ch = [scaled(c, width) for c in STAGE_CHANNELS]
        self.stem = conv_bn_relu(in_channels, ch[0])
        cins = [ch[0], *ch[:-1]]
        self.stages = nn.ModuleList(resnet_stage(cin, cout, n, 2) for cin, cout, n in zip(cins, ch, BLOCKS[depth]))
        self.last = conv_bn_relu(ch[-1], ch[-1], stride=2)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats, self.last(feats[-1])


class LSPKDNet(nn.Module):
    """Dual-encoder (RGB, LiDAR) ResNet depth completion network with a 6-layer deconv decoder."""

    def __init__(self, depth: int = 34, width: float = 1.0, adapters: bool = False, guided: bool = False,
                 guide_max_depth: float = GUIDE_MAX_DEPTH) -> None:
        super().__init__()
        if not 0.0 < width <= 4.0:
            raise ValueError(f"width multiplier must be in (0, 4], got {width}")
        if guide_max_depth <= GUIDE_MIN_DEPTH:
            raise ValueError(f"guide_max_depth must be above {GUIDE_MIN_DEPTH} m, got {guide_max_depth}")
        self.guided, self.guide_max_depth = guided, float(guide_max_depth)
        self.rgb_encoder = ResNetEncoder(3, depth, width)
        self.depth_encoder = ResNetEncoder(2 if guided else 1, depth, width)
        self.feature_channels = feature_channels(width)
        enc = [self.feature_channels[f"E{i}"] for i in range(5)]
        dec = [self.feature_channels[f"D{i}"] for i in range(5)]
        cins = [enc[4]] + [dec[i] + enc[4 - i] for i in range(4)]
        self.decoder = nn.ModuleList(deconv_bn_relu(cin, cout) for cin, cout in zip(cins, dec))
        self.head = nn.ConvTranspose2d(dec[4] + enc[0], 1, 3, 1, padding=1)
        if guided:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.adapters = nn.ModuleDict()
        if adapters:
            teacher = feature_channels(1.0)
            self.adapters.update({name: nn.Conv2d(c, teacher[name], 1) for name, c in self.feature_channels.items()})

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = rgb.shape[-2], rgb.shape[-1]
        if self.guided:
            prefill = nearest_surface_fill(sparse, self.guide_max_depth)
            sparse = torch.cat((sparse, prefill), 1)
        rgb_feats, rgb_last = self.rgb_encoder(pad_to_multiple(rgb, STRIDE, "replicate"))
        depth_feats, depth_last = self.depth_encoder(pad_to_multiple(sparse, STRIDE))
        out: dict[str, torch.Tensor] = {f"E{i}": torch.cat((r, d), 1)
                                        for i, (r, d) in enumerate(zip(rgb_feats, depth_feats))}
        x = torch.cat((rgb_last, depth_last), 1)
        for i, layer in enumerate(self.decoder):
            x = layer(x if i == 0 else torch.cat((x, out[f"E{5 - i}"]), 1))
            out[f"D{i}"] = x
        x = self.head(torch.cat((x, out["E0"]), 1))
        x = x[..., :h, :w]
        if self.guided:
            out["prefill"] = prefill
            out["depth"] = prefill.clamp_min(GUIDE_MIN_DEPTH) * torch.exp(x.clamp(-GUIDE_LOG_RANGE, GUIDE_LOG_RANGE))
        else:
            out["depth"] = F.softplus(x)
        return out


@register("lspkd_teacher")
def lspkd_teacher() -> LSPKDNet:
    """LSPKD teacher: two ResNet34 encoders + 6-layer deconv decoder (~51.8M parameters)."""
    return LSPKDNet(depth=34, width=1.0)


@register("lspkd_student")
def lspkd_student(width: float = 0.5, adapters: bool = False, guided: bool = False,
                  guide_max_depth: float = GUIDE_MAX_DEPTH) -> LSPKDNet:
    """LSPKD student: ResNet18 encoders, all channels x ``width``.

    ``adapters=True`` adds the distillation's dimension-matching 1x1 convs phi (student width ->
    teacher width) for every named feature, as ``model.adapters[name]``. The paper's parameter
    counts (8.56M at 0.5, 0.66M at 0.125) match the network *with* them (8.65M, 0.68M); the
    inference network alone has 7.90M / 0.50M. They are not used by ``forward``.

    ``guided=True`` (the shipped student): the network refines a classical completion instead of
    predicting depth from scratch. The sparse depth's :func:`~lumde_depth.models.fill.nearest_surface_fill`
    is a second input channel of the LiDAR encoder, and the output is that prefill times
    ``exp(residual)``, the head zero-initialised so that an untrained network returns the prefill.
    Why: the classical fill is already good where the LiDAR is dense and carries no domain gap;
    the network only learns the corrections (edges from the image, the region above the LiDAR),
    which transfer from synthetic training data to real sensors far better than absolute depth.
    ``guide_max_depth``: LiDAR points at or beyond it are left out of the prefill (a long-range
    LiDAR's far points need it above their range).
    """
    return LSPKDNet(depth=18, width=width, adapters=adapters, guided=guided, guide_max_depth=guide_max_depth)
