"""Starting a grader from a pretrained Siamese tower (thesis 7.4.2).

The Siamese network (:mod:`spinecore.grade.siamese`) and the grading nets build Conv1 … Conv5 with
one function (:func:`spinecore.grade.network.layers`), so the tower's convolutions (weights and batch
normalisation) copy straight into a grader's: the single-stream net's trunk, or the sagittal tower of
a multi-stream net. With ``freeze`` they stay fixed in training (no gradient, not in the optimiser,
batch statistics not updated) and only the fully connected layers learn, as the thesis did.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from spinecore.errors import SpineCoreError
from spinecore.grade.fusion import FusionConfig, FusionNet
from spinecore.grade.network import LAYERS, GradingNet, NetConfig
from spinecore.grade.siamese import CONVOLUTIONS, SiameseNet, load_siamese

#: What the transferred convolutions must share with the grader's for their shapes to match.
TOWER_FIELDS = ("dims", "slices", "widths")


def _describe(config: NetConfig) -> str:
    return f"{config.dims}-D, {config.slices} slices, widths {','.join(map(str, config.widths))}"


def pretrained(path: Path, config: NetConfig | FusionConfig) -> tuple[SiameseNet, dict]:
    """The Siamese model at ``path`` and its metadata, once its convolutions are known to fit the
    grader of ``config``; raises :class:`SpineCoreError` naming the file when they do not."""
    siamese, metadata = load_siamese(path)
    grader = config.net if isinstance(config, FusionConfig) else config
    if LAYERS.index(grader.branch) < CONVOLUTIONS - 1:
        raise SpineCoreError(path, f"the grader branches at {grader.branch}, inside the convolutions: "
                                   "transfer needs a branch at conv5 or later")
    if any(getattr(siamese.config, f) != getattr(grader, f) for f in TOWER_FIELDS):
        raise SpineCoreError(path, f"its convolutions ({_describe(siamese.config)}) do not fit this grader's "
                                   f"({_describe(grader)})")
    return siamese, metadata


def convolutions(net: GradingNet | FusionNet) -> nn.Sequential:
    """Conv1 … Conv5 of ``net`` (of the sagittal tower for a multi-stream net), sharing its modules."""
    tower = net.towers["sagittal"] if isinstance(net, FusionNet) else net.trunk
    return tower[:CONVOLUTIONS]


def transfer(net: GradingNet | FusionNet, path: Path, freeze: bool) -> dict:
    """Copy the Siamese model's convolutions at ``path`` into ``net`` (frozen when ``freeze``);
    returns what the grader's metadata records about it."""
    siamese, metadata = pretrained(path, net.config)
    target = convolutions(net)
    target.load_state_dict(siamese.convolutions.state_dict())
    for parameter in target.parameters():
        parameter.requires_grad_(not freeze)
    return {"from": str(path), "siamese_model_id": metadata.get("model_id"), "layers": list(LAYERS[:CONVOLUTIONS]),
            "frozen": freeze}


def set_training(net: GradingNet | FusionNet) -> None:
    """Training mode, except frozen convolutions, whose batch statistics must not move."""
    net.train()
    frozen = convolutions(net)
    if not any(p.requires_grad for p in frozen.parameters()):
        frozen.eval()
