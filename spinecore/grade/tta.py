"""Test-time augmentation over 54 views (thesis 4.2.3.2).

A view of a volume ``(slices, rows, cols)`` is the same-size window moved by ``rows``/``cols``
pixels (the centre patch and the 8 patches ±16 pixels around it), optionally reflected slice-wise,
and slid ``slice_shift`` slices along the volume: 9 × 2 × 3 = 54. Outside the volume is zero.
A single-slice volume has nothing to slide over: it gets the 18 views with ``slice_shift`` 0.
``view[s', r, c] = volume[s, r + rows, c + cols]`` with ``s = (S-1-s' if flip else s') + slice_shift``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

PATCH_SHIFT = 16


@dataclass(frozen=True)
class View:
    rows: int
    cols: int
    flip: bool
    slice_shift: int


VIEWS: tuple[View, ...] = tuple(
    View(dr, dc, flip, shift)
    for shift in (-1, 0, 1) for flip in (False, True)
    for dr in (-PATCH_SHIFT, 0, PATCH_SHIFT) for dc in (-PATCH_SHIFT, 0, PATCH_SHIFT))
CENTRE_VIEW = View(0, 0, False, 0)
IN_PLACE_VIEWS: tuple[View, ...] = tuple(v for v in VIEWS if v.slice_shift == 0)


def views_for(volume: torch.Tensor) -> tuple[View, ...]:
    """The TTA views of one volume ``(S, H, W)``: all 54, or the 18 in-place ones when only one
    slice holds data."""
    return VIEWS if int((volume.flatten(1).abs().amax(1) > 0).sum()) > 1 else IN_PLACE_VIEWS


def make_views(x: torch.Tensor, views: tuple[View, ...] = VIEWS) -> torch.Tensor:
    """``x`` ``(N, S, H, W)`` → ``(N, len(views), S, H, W)``."""
    n, s, h, w = x.shape
    pad_s = max(abs(v.slice_shift) for v in views)
    pad = max(max(abs(v.rows), abs(v.cols)) for v in views)
    padded = torch.zeros(n, s + 2 * pad_s, h + 2 * pad, w + 2 * pad, dtype=x.dtype)
    padded[:, pad_s:pad_s + s, pad:pad + h, pad:pad + w] = x
    out = []
    for v in views:
        window = padded[:, pad_s + v.slice_shift:pad_s + v.slice_shift + s,
                        pad + v.rows:pad + v.rows + h, pad + v.cols:pad + v.cols + w]
        out.append(window.flip(1) if v.flip else window)
    return torch.stack(out, dim=1)
