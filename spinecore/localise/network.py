"""The localiser network: a compact 2-D U-Net applied to each sagittal slice.

Input ``(batch, 1, rows, columns)`` on the working grid (:mod:`spinecore.localise.grid`);
output logits ``(batch, 3, rows, columns)`` for the channels of :data:`CHANNELS`.
"""
from __future__ import annotations

import torch
from torch import nn

from spinecore.pooling import halve

#: Output channels (independent sigmoids): every vertebral body (S1 included); every disc;
#: the L5-S1 disc only, which anchors the level labels.
CHANNELS = ("body", "disc", "l5s1")


def _double_conv(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
    )


class LocaliserNet(nn.Module):
    """U-Net with ``widths[i]`` channels at resolution level ``i`` (four poolings for five widths)."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64, 128)):
        super().__init__()
        self.widths = tuple(widths)
        self.encoders = nn.ModuleList(
            _double_conv(1 if i == 0 else widths[i - 1], w) for i, w in enumerate(widths))
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(len(widths) - 1))
        self.decoders = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], len(CHANNELS), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else halve(x))
            skips.append(x)
        x = skips.pop()
        for level in reversed(range(len(self.decoders))):
            x = self.decoders[level](torch.cat([self.upsamplers[level](x), skips[level]], dim=1))
        return self.head(x)
