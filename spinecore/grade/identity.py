"""Are two scans one subject? The Siamese distance of their vertebral bodies, judged against the
model's reference scans (cohort normalisation, as speaker verification's S-norm).

A raw distance means different things at different sites and sequences: on held-out subjects the
best cut-off was 0.18 for phantoms, 0.24 for Sudirman and 0.32 for SPIDER. So each scan's distance
``d`` to the other is set against its distances to the :data:`COHORT_SIZE` reference scans that
look most like the other scan (people of the same site and sequence, as a rule):
``z = (d − mean) / sd`` of those, from both sides, averaged. Below the model's threshold (fitted on
held-out subjects) the two are called one subject.

Array layout: a model's reference bodies are ``(len(BODY_LEVELS), scans, fc)`` FC7 embeddings, NaN
where a reference scan lacks that body; a scan's distances to them ``(len(BODY_LEVELS), scans)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from spinecore.errors import SpineCoreError
from spinecore.grade.siamese import BODY_LEVELS

#: Reference scans most like the other scan that a distance is judged against.
COHORT_SIZE = 20
#: Fewest reference scans sharing a compared body for a verdict (a spread needs two).
MIN_COHORT = 2
#: Floor of a cohort's distance spread, so a tight cohort cannot blow a score up.
MIN_SPREAD = 1e-3


class Identity(NamedTuple):
    """``distances``: the two scans' body distance per compared level; ``score``: their mean
    (:attr:`distance`) in spreads of the reference distances (negative: closer than other people are)."""

    distances: dict[str, float]
    score: float

    @property
    def distance(self) -> float:
        return float(np.mean(list(self.distances.values())))


def reference_bodies(scans: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """The reference array of ``scans`` (each level → FC7 embedding), ``float16``."""
    fc = next(iter(scans[0].values())).shape[-1] if scans else 0
    bodies = torch.full((len(BODY_LEVELS), len(scans), fc), float("nan"))
    for column, scan in enumerate(scans):
        for level, embedding in scan.items():
            bodies[BODY_LEVELS.index(level), column] = embedding
    return bodies.half()


def reference_distances(references: torch.Tensor, scan: dict[str, torch.Tensor]) -> np.ndarray:
    """``(len(BODY_LEVELS), scans)``: distance of each of ``scan``'s bodies to every reference scan's
    body of that level; NaN where either lacks it."""
    distances = np.full(references.shape[:2], np.nan)
    for level, embedding in scan.items():
        row = BODY_LEVELS.index(level)
        distances[row] = torch.linalg.vector_norm(references[row].float() - embedding, dim=1).numpy()
    return distances


def compared_levels(shared: list[str], whole: set[str]) -> list[str]:
    """The bodies two scans are compared on: those of ``shared`` both show ``whole``, else all of them."""
    return [level for level in shared if level in whole] or shared


def identity(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], levels: list[str],
             first_to_references: np.ndarray, second_to_references: np.ndarray) -> Identity:
    """The :class:`Identity` of two scans' bodies (level → embedding) over ``levels``; each scan's
    :func:`reference_distances` given. Raises :class:`SpineCoreError` where fewer than
    :data:`MIN_COHORT` reference scans show any of ``levels``."""
    distances = {level: torch.linalg.vector_norm(first[level] - second[level]).item() for level in levels}
    distance = float(np.mean(list(distances.values())))
    rows = [BODY_LEVELS.index(level) for level in levels]
    first_mean, second_mean = (_level_mean(d[rows]) for d in (first_to_references, second_to_references))
    usable = ~np.isnan(first_mean) & ~np.isnan(second_mean)
    if usable.sum() < MIN_COHORT:
        raise SpineCoreError(None, "the Siamese model has too few reference scans with these vertebral bodies to "
                                   "judge the distance (one made before they were kept has none: train it again "
                                   "with spinecore pretrain)")
    first_mean, second_mean = first_mean[usable], second_mean[usable]
    like_first, like_second = (np.argsort(m, kind="stable")[:COHORT_SIZE] for m in (first_mean, second_mean))
    score = (_z(distance, first_mean[like_second]) + _z(distance, second_mean[like_first])) / 2
    return Identity(distances, float(score))


def _level_mean(distances: np.ndarray) -> np.ndarray:
    """Mean over levels (rows) where present; NaN for a reference scan with none of them."""
    present = ~np.isnan(distances)
    counts = present.sum(0)
    return np.where(counts > 0, np.where(present, distances, 0).sum(0) / np.maximum(counts, 1), np.nan)


def _z(distance: float, cohort: np.ndarray) -> float:
    return (distance - cohort.mean()) / max(float(cohort.std()), MIN_SPREAD)
