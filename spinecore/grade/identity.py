"""Are two scans one subject? The Siamese distance of their vertebral bodies, judged against the
model's reference scans (cohort normalisation, as speaker verification's S-norm).

A raw distance means different things at different sites and sequences: on held-out subjects the
best cut-off was 0.18 for phantoms, 0.24 for Sudirman and 0.32 for SPIDER. So each scan's distance
``d`` to the other is set against its distances to the :data:`COHORT_SIZE` reference scans that
look most like the other scan (people of the same site and sequence, as a rule):
``z = (d − mean) / sd`` of those, from both sides, averaged. Below the model's threshold (fitted on
held-out subjects) the two are called one subject.

A body is compared by its identity vector (:func:`body_vector`): the network sees every body scaled
to one size (:func:`~spinecore.extract.volumes.vertebra_volume`), so the size it throws away, which
differs between people, is added back beside the FC7 embedding, and the distance of two bodies is
their appearance distance plus :data:`SIZE_WEIGHT` times their size distance (:func:`body_distance`).
A disc is compared the same way by its depth alone (:func:`disc_vector`, :func:`disc_distance`): its
volume is scaled to its depth too, and its height changes as it degenerates.

Array layout: a body's identity vector is ``(fc + SIZE_DIMS,)``: the unit FC7 embedding, then the log of
the body's height and depth in mm on its mid slice; a disc's ``(fc + DISC_SIZE_DIMS,)``: the embedding,
then the log of its depth in mm; a model's reference bodies are
``(len(BODY_LEVELS), scans, fc + SIZE_DIMS)`` identity vectors, NaN where a reference scan lacks that
body; a scan's distances to them ``(len(BODY_LEVELS), scans)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from spinecore.errors import SpineCoreError
from spinecore.grade.siamese import BODY_LEVELS, DISC_SIZE_DIMS, SIZE_DIMS

#: Reference scans most like the other scan that a distance is judged against.
COHORT_SIZE = 20
#: Fewest reference scans sharing a compared body for a verdict (a spread needs two).
MIN_COHORT = 2
#: Floor of a cohort's distance spread, so a tight cohort cannot blow a score up.
MIN_SPREAD = 1e-3
#: Weight of the size distance (the norm of the log-size difference, ~ the relative difference) in a
#: body's or disc's distance. Chosen with the bundled tower's FC7 on the 76 training subjects held out of
#: its training: the best mean per-pair AUC over their real bodies and discs (SPIDER and Sudirman, weights
#: 0 / 0.5 / 1 / 2 / 4: 96.0 / 96.05 / 95.85 / 95.45 / 94.7 %; phantoms would take 2 to 4). The tower sees
#: every structure scaled to one size, yet its FC7 from the InfoNCE head stage tells subjects apart so
#: well that sizes add little (before that stage, 2 was best: SPIDER bodies 84.4 → 88.9 % against 0).
SIZE_WEIGHT = 0.5


class Identity(NamedTuple):
    """``distances``: the two scans' body distance per compared level; ``score``: their mean
    (:attr:`distance`) in spreads of the reference distances (negative: closer than other people are)."""

    distances: dict[str, float]
    score: float

    @property
    def distance(self) -> float:
        return float(np.mean(list(self.distances.values())))


def body_vector(embedding: torch.Tensor, size_mm) -> torch.Tensor:
    """The identity vector of a body: its FC7 ``embedding`` ``(..., fc)`` and its ``(height, depth)``
    in mm ``(..., 2)`` (:func:`~spinecore.localise.body_size`)."""
    return torch.cat([embedding, torch.log(torch.as_tensor(size_mm, dtype=embedding.dtype))], dim=-1)


def disc_vector(embedding: torch.Tensor, depth_mm) -> torch.Tensor:
    """The identity vector of a disc: its FC7 ``embedding`` ``(..., fc)`` and its depth in mm ``(...)``
    (:func:`~spinecore.localise.disc_depth`)."""
    return torch.cat([embedding, torch.log(torch.as_tensor(depth_mm, dtype=embedding.dtype))[..., None]], dim=-1)


def body_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance of body identity vectors over their last axis (broadcast): ‖appearance difference‖ +
    :data:`SIZE_WEIGHT` ‖log-size difference‖."""
    return _appearance_and_size(a - b, SIZE_DIMS)


def disc_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance of disc identity vectors, as :func:`body_distance` with the depth as the size."""
    return _appearance_and_size(a - b, DISC_SIZE_DIMS)


def _appearance_and_size(difference: torch.Tensor, size_dims: int) -> torch.Tensor:
    return (torch.linalg.vector_norm(difference[..., :-size_dims], dim=-1)
            + SIZE_WEIGHT * torch.linalg.vector_norm(difference[..., -size_dims:], dim=-1))


def reference_bodies(scans: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """The reference array of ``scans`` (each level → identity vector)."""
    width = next(iter(scans[0].values())).shape[-1] if scans else 0
    bodies = torch.full((len(BODY_LEVELS), len(scans), width), float("nan"))
    for column, scan in enumerate(scans):
        for level, vector in scan.items():
            bodies[BODY_LEVELS.index(level), column] = vector
    return bodies


def reference_distances(references: torch.Tensor, scan: dict[str, torch.Tensor]) -> np.ndarray:
    """``(len(BODY_LEVELS), scans)``: distance of each of ``scan``'s bodies to every reference scan's
    body of that level; NaN where either lacks it."""
    distances = np.full(references.shape[:2], np.nan)
    for level, vector in scan.items():
        row = BODY_LEVELS.index(level)
        distances[row] = body_distance(references[row], vector).numpy()
    return distances


def compared_levels(shared: list[str], whole: set[str]) -> list[str]:
    """The bodies two scans are compared on: those of ``shared`` both show ``whole``, else all of them."""
    return [level for level in shared if level in whole] or shared


def identity(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], levels: list[str],
             first_to_references: np.ndarray, second_to_references: np.ndarray) -> Identity:
    """The :class:`Identity` of two scans' bodies (level → identity vector) over ``levels``; each scan's
    :func:`reference_distances` given. Raises :class:`SpineCoreError` where fewer than
    :data:`MIN_COHORT` reference scans show any of ``levels``."""
    distances = {level: body_distance(first[level], second[level]).item() for level in levels}
    distance = float(np.mean(list(distances.values())))
    rows = [BODY_LEVELS.index(level) for level in levels]
    first_mean, second_mean = (_level_mean(d[rows]) for d in (first_to_references, second_to_references))
    usable = ~np.isnan(first_mean) & ~np.isnan(second_mean)
    if usable.sum() < MIN_COHORT:
        raise _too_few_references("with these vertebral bodies ")
    first_mean, second_mean = first_mean[usable], second_mean[usable]
    like_first, like_second = (np.argsort(m, kind="stable")[:COHORT_SIZE] for m in (first_mean, second_mean))
    score = (_z(distance, first_mean[like_second]) + _z(distance, second_mean[like_first])) / 2
    return Identity(distances, float(score))


def check_references(references: torch.Tensor) -> None:
    """Raise :class:`SpineCoreError` if a model's ``references`` hold fewer than :data:`MIN_COHORT`
    scans, so no two studies could be judged (before any long work)."""
    if references.shape[1] < MIN_COHORT:
        raise _too_few_references()


def _too_few_references(which: str = "") -> SpineCoreError:
    return SpineCoreError(None, f"the Siamese model has too few reference scans {which}to judge the distance "
                                "(one made by an older spinecore has none: make them with spinecore pretrain "
                                "--init MODEL --steps 0)")


def _level_mean(distances: np.ndarray) -> np.ndarray:
    """Mean over levels (rows) where present; NaN for a reference scan with none of them."""
    present = ~np.isnan(distances)
    counts = present.sum(0)
    return np.where(counts > 0, np.where(present, distances, 0).sum(0) / np.maximum(counts, 1), np.nan)


def _z(distance: float, cohort: np.ndarray) -> float:
    return (distance - cohort.mean()) / max(float(cohort.std()), MIN_SPREAD)
