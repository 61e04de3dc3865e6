"""The networks' 2×2 max pooling as two element-wise maxima.

The same values as ``max_pool2d(x, 2)`` (floor mode: an odd last row or column is dropped) and
``MaxPool3d((1, 2, 2))``, several times faster on CPU, where PyTorch's pooling kernels also find
the argmax indices that only their backward pass needs.
"""
from __future__ import annotations

import torch
from torch import nn


def halve(x: torch.Tensor) -> torch.Tensor:
    """The maximum of each 2×2 block of the last two axes: ``(..., rows, columns)`` →
    ``(..., rows // 2, columns // 2)``."""
    x = x[..., :x.shape[-2] // 2 * 2, :x.shape[-1] // 2 * 2]
    rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class Halve(nn.Module):
    """:func:`halve` as a layer (no parameters: model files are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return halve(x)
