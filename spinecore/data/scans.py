"""Grading manifests → whole-scan volumes with every lumbar disc's labels (the raw-volume baseline).

The rows of a manifest (:mod:`spinecore.data.manifests`) are grouped by scan: one sample per scan,
its :func:`~spinecore.extract.scan.scan_volume` and the labels of up to six levels
(:data:`~spinecore.grade.raw_volume.LEVELS`); a level without a row is :data:`MISSING` on every task.
Rows of other levels (T10-T11, T11-T12) are left out.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinecore.data.manifests import ManifestRow, to_uint8
from spinecore.errors import SpineCoreError
from spinecore.extract.scan import scan_volume
from spinecore.grade.loss import MISSING
from spinecore.grade.raw_volume import LEVELS
from spinecore.io import load_study

log = logging.getLogger(__name__)


@dataclass
class GradedDiscs:
    """The graded discs of a set of scans, as :func:`~spinecore.evaluate.grading.evaluate_logits` reads
    them: ``labels`` ``(discs, tasks)`` and each disc's patient, level and scan; ``sequences``: each scan
    → the weighting of its sagittal series."""

    labels: np.ndarray
    patients: list[str]
    levels: list[str]
    scans: list[str]
    sequences: dict[str, str]

    def sequence(self, scan: Path | str) -> str:
        return self.sequences.get(str(scan), "unknown")


@dataclass
class ScanSet:
    """Whole-scan volumes stored as ``uint8`` (value × 255), ``(N, 9, 256, 256)``; ``labels``
    ``(N, levels × tasks)``, level-major as the raw-volume net's heads, :data:`MISSING` where not
    graded; each scan's patient and path; ``sequences`` as in :class:`GradedDiscs`."""

    volumes: np.ndarray
    labels: np.ndarray
    patients: list[str]
    scans: list[str]
    sequences: dict[str, str]

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, index) -> dict[str, np.ndarray]:
        """``float32`` inputs of the scans ``index``, under the sagittal stream's name ``t2``."""
        return {"t2": self.volumes[index].astype(np.float32) / 255.0}

    def graded_discs(self) -> tuple[np.ndarray, np.ndarray, GradedDiscs]:
        """Every (scan, level) with at least one grade: the scan and level indices and the discs."""
        by_level = self.labels.reshape(len(self), len(LEVELS), -1)
        scan, level = np.nonzero((by_level != MISSING).any(axis=2))
        return scan, level, GradedDiscs(by_level[scan, level], [self.patients[i] for i in scan],
                                        [LEVELS[i] for i in level], [self.scans[i] for i in scan], self.sequences)


def _scan_labels(scan: Path, rows: list[ManifestRow], tasks: int) -> np.ndarray:
    """``(levels × tasks)`` labels of one scan's rows."""
    labels = np.full((len(LEVELS), tasks), MISSING, np.int64)
    seen = set()
    for row in rows:
        if row.level in seen:
            raise SpineCoreError(scan, f"graded twice at {row.level} in the manifest")
        seen.add(row.level)
        if row.level in LEVELS:
            labels[LEVELS.index(row.level)] = row.labels
    return labels.ravel()


def build_scan_set(rows: list[ManifestRow]) -> ScanSet:
    """Read each manifest scan once and attach its levels' labels; scans with no lumbar disc graded
    are left out. Raises :class:`SpineCoreError` naming the file for an unreadable scan."""
    by_scan: dict[Path, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        by_scan[row.scan].append(row)
    volumes, labels, patients, scans, sequences = [], [], [], [], {}
    for n, (scan, scan_rows) in enumerate(by_scan.items(), start=1):
        if not any(r.level in LEVELS for r in scan_rows):
            continue
        series = load_study(scan).sagittal()
        sequences[str(scan)] = series.weighting.value
        volumes.append(to_uint8(scan_volume(series).array))
        labels.append(_scan_labels(scan, scan_rows, len(scan_rows[0].labels)))
        patients.append(scan_rows[0].patient)
        scans.append(str(scan))
        if n % 50 == 0 or n == len(by_scan):
            log.info("read %d/%d scans", n, len(by_scan))
    if not volumes:
        raise SpineCoreError(rows[0].scan, f"no manifest scan has a graded disc of {LEVELS[0]} … {LEVELS[-1]}")
    return ScanSet(np.stack(volumes), np.stack(labels), patients, scans, sequences)
