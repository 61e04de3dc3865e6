"""Two studies of (perhaps) one person compared level by level (thesis ch. 7): each graded by
:func:`~spinecore.pipeline.analyse`, discs matched by level, and the Siamese distance of their
vertebral bodies (which change little over the years), judged against the model's reference scans,
saying whether they are one subject at all.

>>> comparison = compare(load_study("2015").sagittal(), load_study("2025").sagittal())  # doctest: +SKIP
>>> comparison.same_subject, comparison.rows()[0]["middle_height_change_mm"]           # doctest: +SKIP
(True, -1.2)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spinecore.errors import SpineCoreError
from spinecore.extract import vertebra_volumes
from spinecore.grade import Grader
from spinecore.grade.identity import (Identity, body_vector, check_references, compared_levels, identity,
                                      reference_distances)
from spinecore.grade.siamese import (
    BODY_LEVELS,
    Kind,
    SiameseNet,
    embeddings,
    load_siamese,
)
from spinecore.io.series import Series
from spinecore.levels import DISCS
from spinecore.localise import Localiser, body_size
from spinecore.localise.spine import seen_whole
from spinecore.pipeline import Analysis, analyse

#: The disc height compared (mm); the others are in each study's gradings.csv.
HEIGHT = "middle_height_mm"


@dataclass(frozen=True)
class Comparison:
    """``baseline`` and ``follow_up`` analyses; ``identity``: the Siamese distance per vertebral body
    compared (seen whole in both, :func:`~spinecore.grade.identity.compared_levels`) and the score of
    their mean against the model's reference scans; ``threshold``: the model's same-subject cut-off
    on that score."""

    baseline: Analysis
    follow_up: Analysis
    identity: Identity
    threshold: float
    siamese_model: str

    @property
    def body_distances(self) -> dict[str, float]:
        return {level: round(d, 4) for level, d in self.identity.distances.items()}

    @property
    def distance(self) -> float:
        return self.identity.distance

    @property
    def score(self) -> float:
        return self.identity.score

    @property
    def same_subject(self) -> bool:
        return self.score < self.threshold

    def levels(self) -> list[str]:
        """Discs graded in either study, cranial → caudal."""
        graded = {d.level for a in (self.baseline, self.follow_up) for d in a.gradings.discs}
        return [level for level in DISCS if level in graded]

    def rows(self) -> list[dict]:
        """One row per :meth:`levels`: each task's grade at both visits and whether it changed, the
        disc height (mm) at both and its change (``None`` where a visit lacks the disc or its height)."""
        before, after = (_by_level(a) for a in (self.baseline, self.follow_up))
        rows = []
        for level in self.levels():
            row: dict = {"level": level}
            for task in self.baseline.gradings.scheme.task_names:
                a, b = (side[level]["grades"].get(task) if level in side else None for side in (before, after))
                row.update({f"{task}_baseline": a, f"{task}_follow_up": b,
                            f"{task}_change": None if a is None or b is None else b - a})
            a, b = (side[level]["height"] if level in side else None for side in (before, after))
            row.update({f"{HEIGHT}_baseline": a, f"{HEIGHT}_follow_up": b,
                        "middle_height_change_mm": None if a is None or b is None else round(b - a, 2)})
            rows.append(row)
        return rows


def _by_level(analysis: Analysis) -> dict[str, dict]:
    discs = {d.level: d for d in analysis.spine.discs}
    return {g.level: {"grades": {t.name: analysis.gradings.predicted(g, t.name)[0] for t in analysis.gradings.scheme.tasks},
                      "height": (round(getattr(discs[g.level].measurements, HEIGHT), 2)
                                 if discs[g.level].measurements else None)}
            for g in analysis.gradings.discs}


def body_identity(net: SiameseNet, first: Series, first_analysis: Analysis, second: Series,
                  second_analysis: Analysis) -> Identity:
    """The :class:`~spinecore.grade.identity.Identity` of two studies' vertebral bodies (T12..S1), by
    appearance and size (:func:`~spinecore.grade.identity.body_vector`): of those found in both, the
    ones both show whole (:func:`~spinecore.localise.spine.seen_whole`), all of them where none is."""
    volumes = [{v.level: v for v in vertebra_volumes(s, a.spine) if v.level in BODY_LEVELS}
               for s, a in ((first, first_analysis), (second, second_analysis))]
    shared = [level for level in BODY_LEVELS if level in volumes[0] and level in volumes[1]]
    if not shared:
        raise SpineCoreError(None, "the two studies share no vertebral body from T12 to S1: nothing to compare")
    compared = compared_levels(shared, seen_whole(first_analysis.spine) & seen_whole(second_analysis.spine))
    bodies = []
    for v, analysis in zip(volumes, (first_analysis, second_analysis)):
        embedded = embeddings(net, torch.from_numpy(np.stack([v[level].array for level in compared])), Kind.BODY)
        sizes = torch.tensor([body_size(analysis.spine.vertebra(level).mid.corners_mm) for level in compared])
        bodies.append(dict(zip(compared, body_vector(embedded, sizes))))
    return identity(*bodies, compared, *(reference_distances(net.references, b) for b in bodies))


def compare(baseline: Series, follow_up: Series, localiser: Localiser | None = None, grader: Grader | None = None,
            siamese: tuple[SiameseNet, dict] | None = None, tta: bool = True) -> Comparison:
    """Grade both studies and compare them (default models: the bundled ones)."""
    net, metadata = siamese or load_siamese()
    check_references(net.references)
    localiser, grader = localiser or Localiser.load(), grader or Grader.load()
    first, second = (analyse(s, localiser, grader, tta=tta) for s in (baseline, follow_up))
    return Comparison(first, second, body_identity(net, baseline, first, follow_up, second),
                      float(metadata["same_subject_below"]), str(metadata.get("model_id", "")))
