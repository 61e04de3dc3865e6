"""The raw-volume baseline (thesis 6.3): every lumbar disc's grades from the whole sagittal scan.

The net is the disc grader's (:class:`~spinecore.grade.network.GradingNet`, the ``compact`` 2-D preset)
on the whole-scan volume of :mod:`spinecore.extract.scan`, input ``(N, 9, 256, 256)`` = (batch, slices,
rows, columns), values in [0, 1], with one head per (disc level, task): :data:`LEVELS` × the scheme's
tasks, level-major (head ``l * tasks + t`` grades task ``t`` of disc ``LEVELS[l]``), so a scheme of 8
tasks gives 48 heads. As a :class:`~spinecore.grade.grader.Grader` it grades the :func:`per_level`
scheme, whose tasks are those heads. Not a default model: the baseline the disc-volume pipeline
must beat (the thesis' lost 12.4 points of average per-class accuracy).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from spinecore.errors import ModelError
from spinecore.extract.scan import SCAN_SHAPE
from spinecore.grade.grader import Grader
from spinecore.grade.network import GradingNet, NetConfig, compact
from spinecore.grade.schemes import GradingScheme, Task
from spinecore.levels import LUMBAR_DISCS
from spinecore.models import load_model

KIND = "raw_volume"
#: The discs graded, T12-L1 … L5-S1 (the thesis' six).
LEVELS = LUMBAR_DISCS
#: Conv5's 16 × 16 map average-pooled to 8 × 8 before FC6: a cell spans about one vertebral level,
#: so FC6 still knows which disc it looks at, with 0.5 M weights.
FEATURE_GRID = (8, 8)


def raw_volume_config(scheme: GradingScheme) -> NetConfig:
    """The ``compact`` 2-D grading net on the whole-scan input, one head per (level, task)."""
    return replace(compact([t.n_classes for t in scheme.tasks] * len(LEVELS), dims=2),
                   input_hw=SCAN_SHAPE[1:], feature_grid=FEATURE_GRID)


def per_level(scheme: GradingScheme) -> GradingScheme:
    """The scheme of the heads: task ``<level>/<task>`` for every level of :data:`LEVELS` and task of
    ``scheme``, level-major."""
    return GradingScheme(f"{scheme.name}-per-level", tuple(
        Task(f"{level}/{t.name}", t.values, t.ordinal, t.description) for level in LEVELS for t in scheme.tasks))


def load_raw_volume(path: Path) -> tuple[Grader, GradingScheme]:
    """The raw-volume model at ``path`` as a :class:`Grader` of the :func:`per_level` scheme, and the
    scheme it grades each disc on; raises :class:`ModelError` naming the file when it is not one."""
    checkpoint = load_model(path, KIND)
    try:
        scheme = GradingScheme.from_dict(checkpoint["config"]["scheme"])
        net = GradingNet(NetConfig.from_dict(checkpoint["config"]["net"]))
        net.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise ModelError(path, "raw-volume model file is damaged or from another spinecore version") from None
    if net.config != raw_volume_config(scheme):
        raise ModelError(path, "raw-volume model's network does not match its scheme")
    return Grader(net, per_level(scheme), dict(checkpoint.get("metadata", {}))), scheme
