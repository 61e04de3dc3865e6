"""Disc coverage of the localiser on mid-sagittal SPIDER images: of the discs a radiologist
graded, the share the localiser cuts out with the same level name, per sequence (T1, T2) and
for L5-S1 alone; and the T1/T2 level agreement of one patient's pixel-aligned pair. On the
Sudirman images (a second hospital), the same shares for the discs that have a named box, a disc
counting as found when the localiser's disc of that level is centred inside its box.

``spinecore evaluate-localiser`` reports them on our validation patients
(:func:`spinecore.data.splits.spider_split`, :func:`spinecore.data.sudirman.sudirman_split`).
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spinecore.data.spider import GRADINGS
from spinecore.data.splits import spider_split
from spinecore.levels import DISCS

log = logging.getLogger(__name__)

SEQUENCES = ("t1", "t2")
#: Two discs of a pixel-aligned T1/T2 pair are the same disc when their centres lie closer
#: than this (mm); discs are ~35 mm apart, so half that cannot match a neighbour.
SAME_DISC_MM = 15.0


@dataclass(frozen=True)
class SeriesDiscs:
    """The discs the localiser found in one mid-sagittal series: level → in-plane centre (row,
    column in mm from the image corner; empty when localisation failed)."""

    series: str
    patient: str
    sequence: str
    shape: tuple[int, ...]
    discs: dict[str, np.ndarray] = field(default_factory=dict)


def graded_levels(gradings_csv: Path) -> dict[str, set[str]]:
    """Patient → graded disc levels, leaving out patients whose level numbering is in doubt (an
    ``unknown`` level row), as :func:`spinecore.data.spider.spider_manifests` does."""
    with Path(gradings_csv).open(newline="") as f:
        rows = list(csv.DictReader(f))
    doubtful = {r["Patient"] for r in rows if r["level"] == "unknown"}
    graded: dict[str, set[str]] = {}
    for r in rows:
        if r["Patient"] not in doubtful and r["level"] in DISCS:
            graded.setdefault(r["Patient"], set()).add(r["level"])
    return graded


def _share(hits: int, total: int) -> dict:
    return {"share": round(hits / total, 4) if total else None, "found": hits, "total": total}


def level_agreement(t1: SeriesDiscs, t2: SeriesDiscs) -> tuple[int, int]:
    """(agreeing, common) discs of a pixel-aligned pair: each T1 disc is matched to the nearest
    T2 disc within :data:`SAME_DISC_MM`."""
    if t1.shape != t2.shape or not t1.discs or not t2.discs:
        return 0, 0
    levels2, centres2 = zip(*t2.discs.items())
    agree = common = 0
    for level, centre in t1.discs.items():
        distances = np.linalg.norm(np.array(centres2) - centre, axis=1)
        if distances.min() < SAME_DISC_MM:
            common += 1
            agree += levels2[int(np.argmin(distances))] == level
    return agree, common


def _tally(outcomes) -> dict:
    """Shares per sequence and for L5-S1 alone, and the missed ``series level`` pairs, of
    ``(prediction, level, found)`` outcomes."""
    hits = {s: 0 for s in SEQUENCES}
    totals = {s: 0 for s in SEQUENCES}
    l5s1 = [0, 0]
    missed = []
    for p, level, found in outcomes:
        hits[p.sequence] += found
        totals[p.sequence] += 1
        if level == "L5-S1":
            l5s1[0] += found
            l5s1[1] += 1
        if not found:
            missed.append(f"{p.series} {level}")
    result = {s: _share(hits[s], totals[s]) for s in SEQUENCES}
    result["l5s1"] = _share(*l5s1)
    result["missed"] = missed
    return result


def coverage(predictions: list[SeriesDiscs], graded: dict[str, set[str]]) -> dict:
    """Share of graded discs found with their level per sequence and for L5-S1 alone, the T1/T2
    level agreement over the discs two pixel-aligned series of a patient have in common, and the
    missed ``series level`` pairs."""
    result = _tally((p, level, level in p.discs) for p in predictions for level in sorted(graded.get(p.patient, ())))
    result["t1_t2_agreement"] = t1_t2_agreement(predictions)
    return result


def t1_t2_agreement(predictions: list[SeriesDiscs]) -> dict:
    """:func:`level_agreement` summed over the patients with both a T1 and a T2 series."""
    by_patient: dict[str, dict[str, SeriesDiscs]] = {}
    for p in predictions:
        by_patient.setdefault(p.patient, {})[p.sequence] = p
    pairs = [level_agreement(s["t1"], s["t2"]) for s in by_patient.values() if set(SEQUENCES) <= set(s)]
    return _share(sum(a for a, _ in pairs), sum(c for _, c in pairs))


def _in_box(p: SeriesDiscs, level: str, box, spacing: np.ndarray) -> bool:
    if level not in p.discs:
        return False
    row0, col0, row1, col1 = box
    row, col = p.discs[level] / spacing
    return bool(row0 <= row <= row1 and col0 <= col <= col1)


def box_coverage(predictions: list[SeriesDiscs], boxes: dict[str, dict], spacing: dict[str, np.ndarray]) -> dict:
    """Share of boxed discs found with their level, centred inside their box, per sequence and
    for L5-S1 alone, the missed ``series level`` pairs, and the :func:`t1_t2_agreement` of the
    patients' same-sized T1/T2 pairs. ``boxes``: series → level → ``(row0, col0, row1, col1)``
    pixels; ``spacing``: series → in-plane (row, column) mm per pixel."""
    result = _tally((p, level, _in_box(p, level, box, spacing[p.series]))
                    for p in predictions for level, box in sorted(boxes.get(p.series, {}).items()))
    result["t1_t2_agreement"] = t1_t2_agreement(predictions)
    return result


def series_discs(name: str, series, spine) -> SeriesDiscs:
    """The discs of ``spine`` (None: localisation failed) found in the mid-sagittal ``series``
    called ``<patient>_<sequence>``."""
    patient, sequence = name.split("_", 1)
    discs = {} if spine is None else {
        d.level: series.geometry.mm_to_vox(d.center_mm)[1:] * series.spacing[1:] for d in spine.discs}
    return SeriesDiscs(name, patient, sequence, series.shape, discs)


def validation_paths(data_root: Path) -> list[Path]:
    """Mid-sagittal T1 and T2 images of the grading validation patients."""
    graded = graded_levels(Path(data_root) / GRADINGS)
    validation = spider_split(list(graded))
    images = Path(data_root) / "spider_midsag" / "images"
    return [images / f"{p}_{s}.nii.gz" for p in sorted(validation, key=int) for s in SEQUENCES
            if (images / f"{p}_{s}.nii.gz").is_file()]
