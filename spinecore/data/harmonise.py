"""Intensity harmonisation of one site's disc volumes onto another's: piecewise-linear histogram
standardisation (Nyúl & Udupa 1999), per sequence.

A set's *landmarks* are the grey levels (0–255, as a :class:`~spinecore.data.manifests.DiscSet`
stores its volumes) at :data:`PERCENTILES` of the non-zero voxels of its discs' volumes (zero is
the padding beyond the scan), one set of landmarks per sequence (:meth:`DiscSet.sequence`).
Harmonising moves each of a set's landmarks onto the reference's landmark of the same sequence and
interpolates linearly between them, 0 and 255 staying where they are (see :func:`lookup_table`).
Labels are never read: a new site is harmonised from its unlabelled discs.

Only the main volumes (each scan's own sagittal image) are mapped; the other streams of a
multi-stream set (``streams``) are left as they are.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from spinecore.data.manifests import DiscSet

#: The percentiles of a set's non-zero voxels that serve as its landmarks.
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
GREY_LEVELS = 256


def landmarks(data: DiscSet) -> dict[str, list[int]]:
    """Per sequence of ``data``'s scans: the grey levels at :data:`PERCENTILES` of its discs' non-zero voxels."""
    sequences = _sequence_of_discs(data)
    out = {}
    for sequence in sorted(set(sequences)):
        counts = np.zeros(GREY_LEVELS, np.int64)
        for i in np.flatnonzero(sequences == sequence):
            counts += np.bincount(data.volumes[i].ravel(), minlength=GREY_LEVELS)
        if counts[1:].sum() == 0:
            continue
        cumulative = np.cumsum(counts[1:]) / counts[1:].sum()
        out[sequence] = [int(np.searchsorted(cumulative, p / 100)) + 1 for p in PERCENTILES]
    return out


def lookup_table(source: list[int], reference: list[int]) -> np.ndarray:
    """The ``uint8`` table (256 entries) that moves the ``source`` landmarks onto ``reference``'s.
    Landmarks tied on one grey level move to the mean of their reference values, except at 255: a
    level the source saturates stays saturated."""
    knots = np.r_[0, source, GREY_LEVELS - 1]
    values = np.r_[0, reference, GREY_LEVELS - 1].astype(float)
    levels = np.unique(knots)
    targets = [values[knots == level].mean() if level < GREY_LEVELS - 1 else level for level in levels]
    return np.round(np.interp(np.arange(GREY_LEVELS), levels, targets)).astype(np.uint8)


def harmonised(data: DiscSet, reference: dict[str, list[int]]) -> tuple[DiscSet, dict]:
    """``data`` with each sequence's volumes mapped from their own :func:`landmarks` onto the same
    sequence's ``reference`` landmarks, and the record of it (sequence → ``source`` and ``reference``
    landmarks). A sequence the reference lacks is left as it is and left out of the record."""
    own = landmarks(data)
    sequences = _sequence_of_discs(data)
    volumes = data.volumes.copy()
    record = {}
    for sequence, source in own.items():
        if sequence not in reference:
            continue
        table = lookup_table(source, reference[sequence])
        for i in np.flatnonzero(sequences == sequence):
            volumes[i] = table[volumes[i]]
        record[sequence] = {"source": source, "reference": list(reference[sequence])}
    return replace(data, volumes=volumes), record


def _sequence_of_discs(data: DiscSet) -> np.ndarray:
    return np.asarray([data.sequence(scan) for scan in data.scans])
