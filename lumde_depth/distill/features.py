"""Picking named features out of model outputs and pairing student with teacher layers."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

#: The layers LSPKD distils by default (the paper's mid-level choice, Table 3).
DEFAULT_LAYERS: tuple[str, ...] = ("E1", "E2", "E3", "D1", "D2", "D3")

#: What to do when a student feature's H x W differs from the teacher's.
SIZE_MISMATCH = ("error", "interpolate")


def feature(out: Mapping[str, torch.Tensor], layer: str, who: str) -> torch.Tensor:
    """``out[layer]`` as a B x C x H x W tensor, or an error naming the features that exist."""
    if layer not in out:
        have = sorted(k for k, v in out.items() if isinstance(v, torch.Tensor) and v.dim() == 4 and k != "depth")
        raise KeyError(f"the {who} output has no feature '{layer}' (it has: {', '.join(have) or 'none'}); "
                       "pick layers the model returns in the loss config's `layers`")
    value = out[layer]
    if not isinstance(value, torch.Tensor) or value.dim() != 4:
        raise ValueError(f"{who} feature '{layer}' must be a B x C x H x W tensor, got "
                         f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
    return value


def pair(student_out: Mapping[str, torch.Tensor], teacher_out: Mapping[str, torch.Tensor], layer: str,
         size_mismatch: str = "error") -> tuple[torch.Tensor, torch.Tensor]:
    """(student feature, detached teacher feature) of ``layer`` with the same B, H and W.

    When the spatial sizes differ, ``size_mismatch="interpolate"`` resizes the student feature to
    the teacher's H x W (bilinear, align_corners=False) and ``"error"`` raises.
    """
    fs = feature(student_out, layer, "student")
    ft = feature(teacher_out, layer, "teacher").detach()
    if fs.shape[0] != ft.shape[0]:
        raise ValueError(f"layer {layer}: student batch {fs.shape[0]} != teacher batch {ft.shape[0]}")
    if fs.shape[-2:] != ft.shape[-2:]:
        if size_mismatch == "error":
            raise ValueError(f"layer {layer}: student feature is {tuple(fs.shape[-2:])} but the teacher's is "
                             f"{tuple(ft.shape[-2:])}; feed both the same input size, or set "
                             "size_mismatch: interpolate in the loss term")
        fs = F.interpolate(fs, size=ft.shape[-2:], mode="bilinear", align_corners=False)
    return fs, ft
