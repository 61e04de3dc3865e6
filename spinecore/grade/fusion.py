"""Multi-stream grading networks (thesis 6.1.2, 6.2.2): one tower per kind of input, fused.

Streams: ``t2`` (sagittal T2 disc volume, always first), ``t1`` (sagittal T1 disc volume in the
T2 volume's frame) and ``axial`` (axial disc volume). Inputs are a dict ``stream → (N, slices,
rows, columns)`` in [0, 1]: ``(N, 9, 112, 224)`` for the sagittal streams, ``(N, 3, 224, 224)`` for
``axial``. **An all-zero volume means the stream is missing for that disc.**

Towers run Conv1 … FC6; the sagittal streams share one tower (the same weights for T1 and T2, as
the thesis), the axial stream has its own 2-D tower. Fusion, chosen at train time:

* ``fc6-concat``: the streams' FC6 features concatenated, then per task its own FC7 and FC8;
* ``fc6-sum``: the FC6 features summed, then per task FC7 and FC8;
* ``fc8-sum``: every tower has its own per-task FC7 and FC8 (again shared by T1 and T2), and the
  logits are summed (late fusion).

**Missing streams** (and stream dropout in training, :func:`drop_streams`): a missing stream's
features (or logits) are zero and the present ones are scaled by ``streams / present``, as dropout
scales, so a fused model still grades a disc with only its T2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spinecore.extract import AXIAL_SHAPE, DISC_SHAPE
from spinecore.grade.network import LAYERS, GradingNet, NetConfig, fully_connected, glorot, layers
from spinecore.streams import FUSIONS, SAGITTAL, valid_streams

#: Where the towers end: the FC6 layer.
TOWER_END = LAYERS.index("fc6") + 1
#: Each stream's disc volume shape ``(slices, rows, columns)``.
STREAM_SHAPES = {"t2": DISC_SHAPE, "t1": DISC_SHAPE, "axial": AXIAL_SHAPE}
#: Training: the probability that a disc loses one of its present non-T2 streams.
STREAM_DROPOUT = 0.3


@dataclass(frozen=True)
class FusionConfig:
    """``net``: the sagittal tower (and the FC7/FC8 sizes); ``streams``: ``t2`` then any of ``t1``,
    ``axial``; ``fusion``: one of :data:`FUSIONS`."""

    net: NetConfig
    streams: tuple[str, ...]
    fusion: str

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")
        if len(self.streams) < 2 or not valid_streams(self.streams):
            raise ValueError(f"streams must be t2 then one or both of t1, axial, not {','.join(self.streams)}")

    @property
    def axial(self) -> NetConfig:
        """The axial tower: 2-D, 3 slices of 224 × 224, Conv5 pooled to a square grid."""
        grid = self.net.feature_grid and (self.net.feature_grid[1],) * 2
        return NetConfig.from_dict({**self.net.to_dict(), "dims": 2, "slices": AXIAL_SHAPE[0], "input_hw": AXIAL_SHAPE[1:],
                                    "feature_grid": grid})

    def tower_of(self, stream: str) -> str:
        return "sagittal" if stream in SAGITTAL else "axial"

    def to_dict(self) -> dict:
        return {"net": self.net.to_dict(), "streams": list(self.streams), "fusion": self.fusion}

    @classmethod
    def from_dict(cls, d: dict) -> "FusionConfig":
        return cls(NetConfig.from_dict(d["net"]), tuple(d["streams"]), d["fusion"])


def _heads(c: NetConfig, inputs: int) -> nn.ModuleList:
    """Per task: FC7 (``inputs`` → ``c.fc``) and FC8."""
    return nn.ModuleList(nn.Sequential(fully_connected(c, inputs), nn.Linear(c.fc, n)) for n in c.n_classes)


class FusionNet(nn.Module):
    """The multi-stream grader of ``config`` (see the module docstring)."""

    def __init__(self, config: FusionConfig):
        super().__init__()
        self.config = config
        self.streams = config.streams
        tower_configs = {config.tower_of(s): (config.net if s in SAGITTAL else config.axial) for s in config.streams}
        self.towers = nn.ModuleDict({name: nn.Sequential(*layers(c)[:TOWER_END]) for name, c in tower_configs.items()})
        self.dims = {name: c.dims for name, c in tower_configs.items()}
        if config.fusion == "fc8-sum":
            self.heads = nn.ModuleDict({name: _heads(config.net, config.net.fc) for name in self.towers})
        else:
            width = config.net.fc * (len(config.streams) if config.fusion == "fc6-concat" else 1)
            self.heads = nn.ModuleDict({"fused": _heads(config.net, width)})
        self.register_buffer("temperature", torch.ones(len(config.net.n_classes)))
        glorot(self)

    def _features(self, stream: str, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """FC6 features ``(N, fc)`` of one stream: its tower runs on the discs that have it only (a
        missing stream never enters the batch statistics), zero for the others."""
        tower = self.config.tower_of(stream)
        out = torch.zeros(len(x), self.config.net.fc)
        rows = torch.nonzero(present).flatten()
        if len(rows):
            out = out.index_put((rows,), self.towers[tower](x[rows].unsqueeze(1) if self.dims[tower] == 3 else x[rows]))
        return out

    def forward(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per-task logits ``(N, n_classes)`` of the inputs (a missing key is a missing stream)."""
        n = next(iter(inputs.values())).shape[0]
        present = torch.stack([inputs[s].flatten(1).abs().amax(1) > 0 if s in inputs else torch.zeros(n, dtype=torch.bool)
                               for s in self.streams], 1)
        weights = present.float() * len(self.streams) / present.sum(1, keepdim=True).clamp(min=1)
        features = [self._features(s, inputs[s], present[:, k]) * weights[:, k:k + 1] if s in inputs
                    else torch.zeros(n, self.config.net.fc) for k, s in enumerate(self.streams)]
        if self.config.fusion == "fc8-sum":
            per_stream = [[head(f) * (weights[:, k:k + 1] > 0) for head in self.heads[self.config.tower_of(s)]]
                          for k, (s, f) in enumerate(zip(self.streams, features))]
            return [torch.stack(task).sum(0) for task in zip(*per_stream)]
        fused = torch.stack(features).sum(0) if self.config.fusion == "fc6-sum" else torch.cat(features, 1)
        return [head(fused) for head in self.heads["fused"]]

    def probabilities(self, logits: list[torch.Tensor]) -> list[torch.Tensor]:
        """Calibrated class probabilities from this net's ``logits``."""
        return [torch.softmax(l / self.temperature[t], dim=1) for t, l in enumerate(logits)]


def run(net: GradingNet | FusionNet, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Logits of either kind of grading net on stream ``inputs`` (a single-stream net reads ``t2``)."""
    return net(inputs) if isinstance(net, FusionNet) else net(inputs["t2"])


def drop_streams(inputs: dict[str, torch.Tensor], g: torch.Generator,
                 probability: float = STREAM_DROPOUT) -> dict[str, torch.Tensor]:
    """Stream dropout (thesis 6.1.3): with ``probability`` a disc loses one of its present
    non-T2 streams (zeroed). The T2, on which discs are found, is always kept."""
    extra = [s for s in inputs if s != "t2"]
    if not extra:
        return inputs
    out = {s: x.clone() for s, x in inputs.items()}
    present = torch.stack([inputs[s].flatten(1).abs().amax(1) > 0 for s in extra], 1)
    drop = torch.rand(len(present), generator=g) < probability
    choice = torch.rand(present.shape, generator=g) * present
    for i in torch.nonzero(drop & present.any(1)).flatten().tolist():
        out[extra[int(choice[i].argmax())]][i] = 0
    return out

