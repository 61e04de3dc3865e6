"""The Siamese network of thesis 7.3: does a pair of vertebral bodies (or discs) of one level come
from the same person?

One tower maps a structure volume to its FC7 embedding: Conv1..Conv5 shared by vertebral bodies
``(N, 9, 224, 224)`` and discs ``(N, 9, 112, 224)``, FC6–FC7 one copy per kind (thesis Fig. 7.6),
values in [0, 1] as :mod:`spinecore.extract` cuts them. The Euclidean distance of two embeddings
(eq. 7.2) is small for the same subject. Level heads on FC7 (FC8: seven bodies T12..S1, six discs
T12-L1..L5-S1, eq. 7.3–7.4) add the auxiliary supervision. The convolutions are the grading net's
(:mod:`spinecore.grade.network`, same config), so a grader can start from them (thesis 7.4.2).
"""
from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn

from spinecore.grade.network import LAYERS, NetConfig, compact, layers
from spinecore.levels import LUMBAR_DISCS, VERTEBRAE

#: The levels the auxiliary heads predict (thesis 7.3.3).
BODY_LEVELS = VERTEBRAE[VERTEBRAE.index("T12"):]
DISC_LEVELS = LUMBAR_DISCS
CONVOLUTIONS = LAYERS.index("conv5") + 1


class Kind(str, Enum):
    BODY = "body"
    DISC = "disc"


def siamese_config(dims: int = 2) -> NetConfig:
    """The compact grading net's config; ``n_classes`` holds the two level heads' sizes."""
    return compact((len(BODY_LEVELS), len(DISC_LEVELS)), dims)


#: Entries of a body's identity vector after its embedding: log height, log depth in mm
#: (:func:`spinecore.grade.identity.body_vector`); of a disc's: log depth in mm
#: (:func:`spinecore.grade.identity.disc_vector`).
SIZE_DIMS = 2
DISC_SIZE_DIMS = 1
#: FC6's own layers (linear map, ReLU, dropout), after the pooling and flattening of Conv5's output.
FC6_LAYERS = 3


class SiameseNet(nn.Module):
    """``embed(x, kind)`` → unit-length FC7 embedding ``(N, fc)``; ``levels(features(x, kind), kind)``
    → level logits; ``references``: the identity vectors of the reference scans' bodies a distance is
    judged against (:mod:`spinecore.grade.identity`; set after training, saved with the weights)."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.convolutions = nn.Sequential(*layers(config)[:CONVOLUTIONS])
        # FC6 and FC7's linear map per kind: the embedding is FC7 before its ReLU, so it can point anywhere
        self.fully_connected = nn.ModuleDict({k.value: nn.Sequential(*self._fully_connected(config)) for k in Kind})
        self.level_heads = nn.ModuleDict({k.value: nn.Linear(config.fc, n) for k, n in zip(Kind, config.n_classes)})
        self.register_buffer("references", torch.zeros(len(BODY_LEVELS), 0, config.fc + SIZE_DIMS))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @staticmethod
    def _fully_connected(config: NetConfig) -> list[nn.Module]:
        fc6, fc7 = layers(config)[CONVOLUTIONS:]
        return [fc6, fc7[0]]

    def features(self, x: torch.Tensor, kind: Kind) -> torch.Tensor:
        """FC7 before its ReLU, ``(N, fc)``."""
        return self.head(self.pooled(x, kind), kind)

    def pooled(self, x: torch.Tensor, kind: Kind) -> torch.Tensor:
        """What FC6's linear map takes in: Conv5's output pooled and flattened, ``(N, inputs)``."""
        if self.config.dims == 3:
            x = x.unsqueeze(1)
        return self.fully_connected[Kind(kind).value][0][:-FC6_LAYERS](self.convolutions(x))

    def head(self, pooled: torch.Tensor, kind: Kind) -> torch.Tensor:
        """FC7 before its ReLU from :meth:`pooled`, ``(N, fc)``: the part a head stage trains."""
        fc6, fc7 = self.fully_connected[Kind(kind).value]
        return fc7(fc6[-FC6_LAYERS:](pooled))

    def embed(self, x: torch.Tensor, kind: Kind) -> torch.Tensor:
        """The FC7 embedding scaled to unit length, so distances lie in [0, 2] and one margin fits
        every run (the thesis used the raw FC7)."""
        return F.normalize(self.features(x, kind), dim=1)

    def levels(self, features: torch.Tensor, kind: Kind) -> torch.Tensor:
        """Level logits from :meth:`features` (FC8 on the rectified FC7, thesis 7.3.3)."""
        return self.level_heads[Kind(kind).value](F.relu(features))


def pair_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """d = ‖a − b‖₂ per pair (eq. 7.2), ``(N,)``."""
    return torch.linalg.vector_norm(a - b, dim=1)


def contrastive_loss(distance: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over pairs of y d² + (1 − y) max(0, m − d)² (eq. 7.1, Chopra et al. 2005); ``same`` is 1
    for pairs of one subject."""
    same = same.float()
    return (same * distance**2 + (1 - same) * torch.clamp(margin - distance, min=0) ** 2).mean()


KIND = "siamese"


def load_siamese(path=None) -> tuple[SiameseNet, dict]:
    """The network and metadata of a Siamese model file (default: the bundled one)."""
    from spinecore.errors import ModelError
    from spinecore.models import default_model_path, load_model

    path = path if path is not None else default_model_path(KIND)
    checkpoint = load_model(path, KIND)
    try:
        net = SiameseNet(NetConfig.from_dict(checkpoint["config"]["net"]))
        # as many reference scans as the file holds; none in a file made before they were kept, or
        # before they held the bodies' sizes (embeddings only: they cannot be judged against)
        references = checkpoint["state_dict"].get("references", net.references)
        if not isinstance(references, torch.Tensor) or references.shape[::2] not in (
                net.references.shape[::2], (len(BODY_LEVELS), net.config.fc)):
            raise ValueError("references")
        if references.shape[2] != net.references.shape[2]:
            references = net.references
        net.references = references
        net.load_state_dict({**checkpoint["state_dict"], "references": references})
        metadata = dict(checkpoint["metadata"])
        float(metadata["same_subject_below"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise ModelError(path, "Siamese model file is damaged or from another spinecore version") from None
    return net.eval(), metadata


@torch.inference_mode()
def embeddings(net: SiameseNet, volumes: torch.Tensor, kind: Kind, batch: int = 32) -> torch.Tensor:
    """FC7 embeddings ``(N, fc)`` of volumes ``(N, 9, rows, cols)`` in [0, 1]."""
    return torch.cat([net.embed(volumes[i:i + batch], kind) for i in range(0, len(volumes), batch)])
