"""Training augmentation of disc volumes (thesis 4.2.3.2), on batches ``(N, slices, rows, cols)``.

Every random transform is drawn as :class:`Transforms` first, so it can be applied and undone
(test-time-augmented hotspots map each saliency map back through the inverse).
"""
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


#: The axial stream's augmentation (thesis 6.1.3): rotation, ±24-pixel shifts, scale, intensity; its
#: slices are neither shifted nor reflected.
AXIAL = Augmentation(shift_cols=24, shift_rows=24, shift_slices=0, flip_probability=0.0)


@dataclass(frozen=True)
class Transforms:
    """Per-sample draws: in-plane ``angle`` (radians), ``scale``, content shift ``dx``/``dy``
    (pixels), slice ``shifts``, slice-order ``flips`` and intensity ``offsets``."""

    angle: torch.Tensor
    scale: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor
    shifts: torch.Tensor
    flips: torch.Tensor
    offsets: torch.Tensor


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def draw(x: torch.Tensor, g: torch.Generator, a: Augmentation = Augmentation()) -> Transforms:
    """Random transforms for the volumes ``x``. A single-slice volume (a mid-sagittal image) keeps
    its slice in the middle: moving it to another input channel only teaches the 2-D net a
    position it never meets when grading (see :mod:`spinecore.grade.tta`)."""
    n = x.shape[0]
    angle = _uniform(n, -a.rotation_deg, a.rotation_deg, g) * math.pi / 180
    scale = _uniform(n, *a.scale, g)
    dx = torch.randint(-a.shift_cols, a.shift_cols + 1, (n,), generator=g).float()
    dy = torch.randint(-a.shift_rows, a.shift_rows + 1, (n,), generator=g).float()
    shifts = torch.randint(-a.shift_slices, a.shift_slices + 1, (n,), generator=g)
    shifts[(x.flatten(2).abs().amax(2) > 0).sum(1) <= 1] = 0
    flips = torch.rand(n, generator=g) < a.flip_probability
    offsets = _uniform(n, -a.intensity, a.intensity, g)
    return Transforms(angle, scale, dx, dy, shifts, flips, offsets)


def _in_plane(x: torch.Tensor, t: Transforms, inverse: bool) -> torch.Tensor:
    """Rotate by ``angle``, scale and move the content by (dx, dy) about the centre (bilinear,
    zero outside); ``inverse`` undoes it."""
    n, s, h, w = x.shape
    # output → input position in affine_grid's [-1, 1] units, for pixel-space rotation of a h×w image
    cos, sin = torch.cos(t.angle) / t.scale, torch.sin(t.angle) / t.scale
    theta = torch.zeros(n, 3, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    theta[:, 0, 2], theta[:, 1, 2] = -2 * t.dx / w, -2 * t.dy / h
    theta[:, 2, 2] = 1.0
    if inverse:
        theta = torch.linalg.inv(theta)
    grid = F.affine_grid(theta[:, :2], (n, s, h, w), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _slices(volume: torch.Tensor, shift: int, flip: bool, inverse: bool) -> torch.Tensor:
    if inverse and flip:
        volume = volume.flip(0)
    k = -shift if inverse else shift
    if k:
        moved = torch.zeros_like(volume)
        if k > 0:
            moved[k:] = volume[:-k]
        else:
            moved[:k] = volume[-k:]
        volume = moved
    if not inverse and flip:
        volume = volume.flip(0)
    return volume


def apply(x: torch.Tensor, t: Transforms) -> torch.Tensor:
    """The transformed volumes, with the intensity offset added to the slices that hold data."""
    out = _in_plane(x, t, inverse=False)
    for i in range(len(out)):
        volume = _slices(out[i], int(t.shifts[i]), bool(t.flips[i]), inverse=False)
        has_data = volume.flatten(1).abs().amax(1) > 0
        out[i] = volume + t.offsets[i] * has_data[:, None, None]
    return out


def invert(maps: torch.Tensor, t: Transforms) -> torch.Tensor:
    """Per-voxel maps of transformed volumes (e.g. saliency) back in the original volumes' voxels
    (no intensity offset; voxels the transform did not show are 0)."""
    out = torch.stack([_slices(m, int(t.shifts[i]), bool(t.flips[i]), inverse=True) for i, m in enumerate(maps)])
    return _in_plane(out, t, inverse=True)


def augment(x: torch.Tensor, g: torch.Generator, a: Augmentation = Augmentation()) -> torch.Tensor:
    """Rotate, scale and shift in-plane, shift and reflect the slice order, and offset the
    intensity: one random draw per volume (see :func:`draw`)."""
    return apply(x, draw(x, g, a))
