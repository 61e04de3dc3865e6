"""Level labelling as a chain model solved exactly by dynamic programming (Viterbi).

Detections are ordered head → feet. A labelling keeps a subsequence of them as vertebrae and
gives them strictly increasing levels; the rest are false detections. Its cost is:

* per kept detection: ``-log(body score)`` plus the (weighted) anchor term, which asks the
  detection labelled L5 to sit on the L5-S1 disc and the one labelled S1 to sit under it, plus
  a small penalty for a level above T10 (such vertebrae are kept but not named);
* per dropped detection: ``-log(1 - body score)`` plus a fixed penalty;
* per consecutive pair of kept detections ``i`` above ``j`` with level gap ``g``: a Gaussian
  penalty on their distance ``D`` against ``g`` times the typical spacing ``s``,
  ``0.5 ((D - g s) / (σ s))²``, plus a penalty for each of the ``g - 1`` skipped vertebrae.

So a missed vertebra shows up as a level gap with the right distance instead of shifting
every label above it, and an extra detection (a sacral segment, a fragment) is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinecore.levels import VERTEBRAE

#: Spread of a consecutive pair's distance around the typical spacing, as a share of it.
SPACING_SIGMA = 0.2
#: Cost of each vertebra skipped between two kept detections (a missed body).
MISSING_PENALTY = 3.0
#: Cost of dropping a detection as false (a sacral segment, a fragment), besides its body score.
FALSE_PENALTY = 2.0
#: Weight of the L5-S1 anchor term against the body score: the anchor fixes every label.
ANCHOR_WEIGHT = 2.0
#: Cost of keeping a vertebra above T10 (kept, unnamed): named levels are preferred.
UNNAMED_PENALTY = 1.0
#: Probabilities are clipped to [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR] before the log, so no
#: single map value can veto a labelling.
PROBABILITY_FLOOR = 0.02
#: A detection this sure to be a body takes part in the typical spacing.
CONFIDENT_BODY = 0.5
#: Levels the chain may use: up to six unnamed vertebrae above the first named one (long
#: thoracic views), then :data:`~spinecore.levels.VERTEBRAE`.
UNNAMED_ABOVE = 6
L5 = UNNAMED_ABOVE + VERTEBRAE.index("L5")
S1 = UNNAMED_ABOVE + VERTEBRAE.index("S1")


@dataclass(frozen=True)
class Detection:
    """A candidate vertebral body: in-plane centre (working-grid pixels), body probability, and the L5-S1
    probability of the disc just below and just above it (0 when there is none)."""

    centre: np.ndarray
    body: float
    l5s1_below: float
    l5s1_above: float


def _nlog(p: float) -> float:
    return -float(np.log(np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)))


def _unary(d: Detection, level: int) -> float:
    anchor = _nlog(d.l5s1_below) if level == L5 else _nlog(1 - d.l5s1_below)
    anchor += _nlog(d.l5s1_above) if level == S1 else _nlog(1 - d.l5s1_above)
    return _nlog(d.body) + ANCHOR_WEIGHT * anchor + (UNNAMED_PENALTY if level < UNNAMED_ABOVE else 0.0)


def typical_spacing(detections: list[Detection], default: float) -> float:
    """Median distance between consecutive confident detections, in the units of their centres
    (the localiser's working-grid pixels); ``default`` (same units) when fewer than two."""
    centres = [d.centre for d in detections if d.body >= CONFIDENT_BODY]
    if len(centres) < 2:
        return default
    return float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))


def label_chain(detections: list[Detection], spacing: float) -> tuple[dict[int, str], float]:
    """Best labelling: ``{detection index: level}`` (named levels only) and its confidence,
    the probability margin of the best labelling over the same labelling shifted by one level."""
    n, levels = len(detections), UNNAMED_ABOVE + len(VERTEBRAE)
    false = np.array([_nlog(1 - d.body) + FALSE_PENALTY for d in detections])
    skipped = np.concatenate([[0.0], np.cumsum(false)])  # skipped[j] = cost of dropping 0..j-1
    unary = np.array([[_unary(d, lv) for lv in range(levels)] for d in detections])
    best = np.full((n, levels), np.inf)
    back: dict[tuple[int, int], tuple[int, int] | None] = {}
    for i in range(n):
        for lv in range(levels):
            choice, cost = None, skipped[i]
            for j in range(i):
                distance = np.linalg.norm(detections[i].centre - detections[j].centre)
                between = skipped[i] - skipped[j + 1]
                for lj in range(lv):
                    gap = lv - lj
                    pair = 0.5 * ((distance - gap * spacing) / (SPACING_SIGMA * spacing)) ** 2
                    total = best[j, lj] + between + pair + MISSING_PENALTY * (gap - 1)
                    if total < cost:
                        choice, cost = (j, lj), total
            best[i, lv] = unary[i, lv] + cost
            back[i, lv] = choice
    finish = best + (skipped[n] - skipped[1:])[:, None]
    i, lv = np.unravel_index(np.argmin(finish), finish.shape)
    path = {}
    state = (int(i), int(lv))
    while state is not None:
        path[state[0]] = state[1]
        state = back[state]
    shifted = [sum(unary[k, lv + shift] - unary[k, lv] for k, lv in path.items())
               for shift in (-1, 1) if all(0 <= lv + shift < levels for lv in path.values())]
    margin = min(shifted) if shifted else np.inf
    confidence = float(1 / (1 + np.exp(-margin))) if np.isfinite(margin) else 1.0
    named = {k: VERTEBRAE[lv - UNNAMED_ABOVE] for k, lv in path.items() if lv >= UNNAMED_ABOVE}
    return dict(sorted(named.items())), confidence
