"""QC flags of a graded disc: a grade the grader is unsure of, or a disc unlike those it was trained on.

The training range describes the bundled grader's training data (``Resources/Models/grader.md``: the
SPIDER series of our training split), measured with
``python -m spinecore.evaluate.training_range manifests/spider_train.csv`` (288 scans, 1944 discs);
it is the same for any grader model.
Intensities are compared where the grader sees them: in the disc volume, whose intensities
are already scaled so the neighbouring bodies' median is 0.5 (:mod:`spinecore.extract`), so a
scan's raw scale (8-bit, 12-bit, a rescale slope) does not matter, but its contrast does.
"""
from __future__ import annotations

import numpy as np

from spinecore.extract import StructureVolume

#: QC flag: some task's grade has a probability below :data:`LOW_CONFIDENCE_BELOW`.
LOW_CONFIDENCE = "low_confidence"
#: QC flag: the disc volume's mean or contrast lies outside :data:`MEAN_RANGE` / :data:`CONTRAST_RANGE`
#: (not raised for a volume the edge of the scan cuts: :func:`volume_statistics`).
INTENSITY_OUT_OF_RANGE = "intensity_out_of_range"
#: QC flag: the scan's slice or in-plane spacing lies outside :data:`SLICE_MM` / :data:`IN_PLANE_MM`.
SPACING_OUT_OF_RANGE = "spacing_out_of_range"
#: Every grading QC flag, in the order a disc lists them (after its localisation flags).
GRADING_FLAGS = (LOW_CONFIDENCE, INTENSITY_OUT_OF_RANGE, SPACING_OUT_OF_RANGE)

#: Below 0.5 the grade is more likely wrong than right (the probabilities are calibrated); binary
#: tasks never go below it, so it concerns the multi-class ones (Pfirrmann, Modic).
LOW_CONFIDENCE_BELOW = 0.5
#: The central fraction of the training discs a disc statistic's range covers.
COVERED = 0.99
#: Training range (min, max) of the slice spacing, mm: from the T2-SPACE files (0.9) to the largest
#: SpacingBetweenSlices of the SPIDER series (``spider_midsag/series.csv``; the single-slice files
#: record the slice thickness instead, at most 4.0).
SLICE_MM = (0.9, 4.8)
#: Training range (min, max) of the row and column spacing, mm (the script above).
IN_PLANE_MM = (0.28, 1.09)
#: Training range (covering :data:`COVERED` of the discs) of the disc volume's mean and standard
#: deviation (the script above).
MEAN_RANGE = (0.268, 0.587)
CONTRAST_RANGE = (0.121, 0.326)


def volume_statistics(volume: StructureVolume) -> tuple[float, float] | None:
    """Mean and standard deviation of the disc volume's intensities over the slices the scan has;
    ``None`` when the edge of the scan cuts the volume (part of it is padding, the rest mostly one
    body: not comparable with the training range)."""
    if not volume.in_view[volume.present].all():
        return None
    present = volume.array[volume.present]
    return float(present.mean()), float(present.std())


def _inside(value: float, limits: tuple[float, float]) -> bool:
    return limits[0] <= value <= limits[1]


def disc_flags(volume: StructureVolume, confidences: list[float]) -> tuple[str, ...]:
    """The :data:`GRADING_FLAGS` of a disc: its ``volume`` and the probability of each task's grade."""
    spacing = np.linalg.norm(volume.scan_affine[:3, :3], axis=0)  # (slice, row, column) mm
    statistics = volume_statistics(volume)
    raised = {
        LOW_CONFIDENCE: min(confidences) < LOW_CONFIDENCE_BELOW,
        INTENSITY_OUT_OF_RANGE: statistics is not None and not (_inside(statistics[0], MEAN_RANGE)
                                                                and _inside(statistics[1], CONTRAST_RANGE)),
        SPACING_OUT_OF_RANGE: not (_inside(spacing[0], SLICE_MM) and all(_inside(s, IN_PLANE_MM) for s in spacing[1:])),
    }
    return tuple(flag for flag in GRADING_FLAGS if raised[flag])
