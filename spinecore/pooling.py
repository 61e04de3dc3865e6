"""The networks' 2×2 max pooling: at inference two element-wise maxima, in training PyTorch's own.

Both give the values of ``max_pool2d(x, 2)`` (floor mode: an odd last row or column is dropped) and
``MaxPool3d((1, 2, 2))``. The element-wise maxima are several times faster on CPU, where PyTorch's
pooling kernels also find the argmax indices that only their backward pass needs; but on a tie they
would share the gradient between the tied elements where PyTorch gives it to one, so whenever a
gradient is wanted (training, saliency) PyTorch's pooling runs and training stays what it was.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def halve(x: torch.Tensor) -> torch.Tensor:
    """The maximum of each 2×2 block of the last two axes: ``(..., rows, columns)`` →
    ``(..., rows // 2, columns // 2)`` for ``(N, C, H, W)`` or ``(N, C, D, H, W)`` inputs."""
    if x.requires_grad:
        return F.max_pool3d(x, (1, 2, 2)) if x.dim() == 5 else F.max_pool2d(x, 2)
    x = x[..., :x.shape[-2] // 2 * 2, :x.shape[-1] // 2 * 2]
    rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class Halve(nn.Module):
    """:func:`halve` as a layer (no parameters: model files are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return halve(x)
