"""Training augmentation of disc volumes (thesis 4.2.3.2), on batches ``(N, slices, rows, cols)``."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms; each sample draws its own."""

    rotation_deg: float = 15.0
    shift_cols: int = 32
    shift_rows: int = 24
    shift_slices: int = 2
    scale: tuple[float, float] = (0.9, 1.1)
    intensity: float = 0.1
    flip_probability: float = 0.5


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def augment(x: torch.Tensor, g: torch.Generator, a: Augmentation = Augmentation()) -> torch.Tensor:
    """Rotate, scale and shift in-plane (bilinear, zero outside), shift and reflect the slice
    order, and add an intensity offset to the slices that hold data. A single-slice volume (a
    mid-sagittal image) keeps its slice in the middle: moving it to another input channel only
    teaches the 2-D net a position it never meets when grading (see :mod:`spinecore.grade.tta`)."""
    n, s, h, w = x.shape
    angle = _uniform(n, -a.rotation_deg, a.rotation_deg, g) * math.pi / 180
    scale = _uniform(n, *a.scale, g)
    dx = torch.randint(-a.shift_cols, a.shift_cols + 1, (n,), generator=g).float()
    dy = torch.randint(-a.shift_rows, a.shift_rows + 1, (n,), generator=g).float()
    # Output pixel → input pixel (about the centre), in pixel units, then to affine_grid's [-1, 1] units.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    theta[:, 0, 2], theta[:, 1, 2] = -2 * dx / w, -2 * dy / h
    grid = F.affine_grid(theta, (n, s, h, w), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    shifts = torch.randint(-a.shift_slices, a.shift_slices + 1, (n,), generator=g)
    shifts[(x.flatten(2).abs().amax(2) > 0).sum(1) <= 1] = 0
    flips = torch.rand(n, generator=g) < a.flip_probability
    offsets = _uniform(n, -a.intensity, a.intensity, g)
    for i in range(n):
        volume = out[i]
        k = int(shifts[i])
        if k:
            moved = torch.zeros_like(volume)
            if k > 0:
                moved[k:] = volume[:-k]
            else:
                moved[:k] = volume[-k:]
            volume = moved
        if flips[i]:
            volume = volume.flip(0)
        has_data = volume.flatten(1).abs().amax(1) > 0
        out[i] = volume + offsets[i] * has_data[:, None, None]
    return out
