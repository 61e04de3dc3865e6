"""The multi-task grading CNN (thesis 4.2.2): VGG-M-style trunk, one head per task.

Input ``(N, 9, 112, 224)`` = (batch, slices, rows, columns), values in [0, 1]. The 2-D form treats
the 9 slices as input channels; the 3-D form gives every convolution a slice extent of 3 except
Conv4, whose extent of 9 (no slice padding) collapses the slice axis, so later layers match the 2-D
net (thesis 4.2.2.1). Layers up to and including ``branch`` are shared; each task gets its own copy of
every later layer. Output: one logits tensor ``(N, n_classes)`` per task, in the scheme's order.
Deviation from the thesis: batch normalisation after each convolution (training from scratch on
hundreds, not thousands, of patients).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from spinecore.pooling import Halve

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


@dataclass(frozen=True)
class NetConfig:
    """``widths``: Conv1..Conv5 channels; ``fc``: FC6/FC7 units; ``branch``: last shared layer;
    ``feature_grid``: average-pool the Conv5 map to this (rows, cols) before FC6 (``None``: the
    thesis' full 7×14 map)."""

    n_classes: tuple[int, ...]
    dims: int = 2
    widths: tuple[int, ...] = (16, 32, 64, 64, 64)
    fc: int = 128
    branch: str = "fc6"
    dropout: float = 0.5
    slices: int = 9
    input_hw: tuple[int, int] = (112, 224)
    feature_grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.dims not in (2, 3) or self.branch not in LAYERS or len(self.widths) != 5:
            raise ValueError(f"bad network config: dims {self.dims}, branch {self.branch!r}, widths {self.widths}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        d = dict(d)
        for key in ("n_classes", "widths", "input_hw", "feature_grid"):
            d[key] = tuple(d[key]) if d.get(key) is not None else None
        return cls(**d)


def compact(n_classes, dims: int = 2) -> NetConfig:
    """The shipped size: about 0.5 M parameters (2 MB), branch after FC6 (thesis Fig. 4.4), Conv5
    pooled to a 4×8 grid, light dropout (0.5 on 128 units kept the net from fitting our data)."""
    return NetConfig(tuple(n_classes), dims, dropout=0.1, feature_grid=(4, 8))


def wide(n_classes, dims: int = 2) -> NetConfig:
    """The compact net with twice the channels and units: about 2 M parameters (8 MB), for the
    capacity arm of the accuracy study."""
    narrow = compact(n_classes, dims)
    return replace(narrow, widths=tuple(2 * w for w in narrow.widths), fc=2 * narrow.fc)


def thesis(n_classes, dims: int = 2) -> NetConfig:
    """The thesis' VGG-M 1024 net with the branch after Conv5 (≈ 430 M parameters for 8 tasks)."""
    return NetConfig(tuple(n_classes), dims, (96, 256, 512, 512, 512), 1024, "conv5")


class _Squeeze(nn.Module):
    def forward(self, x):
        return x.squeeze(2)


def _conv_block(c: NetConfig, layer: int, cin: int, cout: int) -> nn.Sequential:
    kernel, stride = ((7, 2), (5, 1), (3, 1), (3, 1), (3, 1))[layer]
    pool = layer in (0, 1, 4)
    three_d = c.dims == 3 and layer < 4
    if three_d and layer == 3:  # Conv4: slice extent 9, no padding → slice axis collapses
        parts = [nn.Conv3d(cin, cout, (c.slices, 3, 3), padding=(0, 1, 1), bias=False), _Squeeze(), nn.BatchNorm2d(cout)]
    elif three_d:
        parts = [nn.Conv3d(cin, cout, (3, kernel, kernel), stride=(1, stride, stride), padding=(1, kernel // 2, kernel // 2),
                           bias=False), nn.BatchNorm3d(cout)]
    else:
        parts = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    parts.append(nn.ReLU(inplace=True))
    if pool:
        parts.append(Halve())  # 2×2 in-plane max pooling, the slice axis kept in 3-D
    return nn.Sequential(*parts)


def layers(c: NetConfig) -> list[nn.Module]:
    """Conv1 … FC7 of ``c`` (one module per name of :data:`LAYERS`)."""
    first = 1 if c.dims == 3 else c.slices
    channels = (first, *c.widths)
    convs = [_conv_block(c, n, channels[n], channels[n + 1]) for n in range(5)]
    grid = c.feature_grid or (c.input_hw[0] // 16, c.input_hw[1] // 16)
    pool = [nn.AdaptiveAvgPool2d(grid)] if c.feature_grid else []
    fc6 = nn.Sequential(*pool, nn.Flatten(), *fully_connected(c, c.widths[-1] * grid[0] * grid[1]))
    return [*convs, fc6, fully_connected(c, c.fc)]


def fully_connected(c: NetConfig, inputs: int) -> nn.Sequential:
    """An FC6/FC7 layer of ``c``: ``inputs`` → ``c.fc`` units, ReLU, dropout."""
    return nn.Sequential(nn.Linear(inputs, c.fc), nn.ReLU(inplace=True), nn.Dropout(c.dropout))


def glorot(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every convolution and linear layer (as the thesis)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GradingNet(nn.Module):
    #: The one input stream of a single-stream net (see :mod:`spinecore.grade.fusion`).
    streams = ("t2",)

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        built = layers(config)
        split = LAYERS.index(config.branch) + 1
        self.trunk = nn.Sequential(*built[:split])
        tail = nn.Sequential(*built[split:])
        self.heads = nn.ModuleList(
            nn.Sequential(copy.deepcopy(tail), nn.Linear(config.fc, n)) for n in config.n_classes)
        # Per-task softmax temperature, fitted after training (spinecore.grade.calibration).
        self.register_buffer("temperature", torch.ones(len(config.n_classes)))
        glorot(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.config.dims == 3:
            x = x.unsqueeze(1)
        shared = self.trunk(x)
        return [head(shared) for head in self.heads]

    def probabilities(self, logits: list[torch.Tensor]) -> list[torch.Tensor]:
        """Calibrated class probabilities from this net's ``logits``."""
        return [torch.softmax(l / self.temperature[t], dim=1) for t, l in enumerate(logits)]
