"""Grading manifests (CSV) → disc volumes with labels.

Manifest format (UTF-8 CSV, one row per graded disc of one scan)::

    patient,scan,level,pfirrmann,modic,...
    P001,scans/P001_t2.nii.gz,L4-L5,3,0,...

``patient`` groups rows for patient-level splits and bootstrap intervals; ``scan`` is any input
``spinecore`` reads (NIfTI/NRRD/MHA file, DICOM folder or zip), relative to the manifest's folder
or absolute; ``level`` is a disc name (``T12-L1`` … ``L5-S1``); one column per task of the scheme
holds the grade in the scheme's own values, empty when not graded. Other columns are ignored.
"""
from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinecore.errors import SpineCoreError
from spinecore.extract import disc_volumes
from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import GradingScheme
from spinecore.io import load_study
from spinecore.levels import DISCS
from spinecore.localise import Localiser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManifestRow:
    patient: str
    scan: Path
    level: str
    labels: tuple[int, ...]  # class indices per task, MISSING where not graded


def read_manifest(path: Path, scheme: GradingScheme) -> list[ManifestRow]:
    path = Path(path)
    if not path.is_file():
        raise SpineCoreError(path, "manifest not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        missing = ({"patient", "scan", "level"} | set(scheme.task_names)) - columns
        if missing:
            raise SpineCoreError(path, f"manifest lacks columns {', '.join(sorted(missing))} (scheme {scheme.name})")
        rows = []
        for line, record in enumerate(reader, start=2):
            if record["level"] not in DISCS:
                raise SpineCoreError(path, f"line {line}: level {record['level']!r} is not a disc name like L4-L5")
            labels = []
            for task in scheme.tasks:
                text = (record[task.name] or "").strip()
                try:
                    labels.append(task.index(int(float(text))) if text else MISSING)
                except ValueError:
                    raise SpineCoreError(path, f"line {line}: {task.name} = {text!r} is not one of {list(task.values)}") from None
            scan = Path(record["scan"])
            rows.append(ManifestRow(record["patient"], scan if scan.is_absolute() else path.parent / scan,
                                    record["level"], tuple(labels)))
    if not rows:
        raise SpineCoreError(path, "manifest has no rows")
    return rows


def write_manifest(path: Path, scheme: GradingScheme, rows: list[ManifestRow]) -> None:
    """Write ``rows`` with scan paths relative to the manifest's folder."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["patient", "scan", "level", *scheme.task_names])
        for row in rows:
            scan = os.path.relpath(Path(row.scan).resolve(), Path(path).resolve().parent)
            writer.writerow([row.patient, scan, row.level,
                             *("" if i == MISSING else t.values[i] for t, i in zip(scheme.tasks, row.labels))])


@dataclass
class DiscSet:
    """Disc volumes stored as ``uint8`` (value × 255) ``(N, 9, 112, 224)``, labels ``(N, tasks)``."""

    volumes: np.ndarray
    labels: np.ndarray
    patients: list[str]
    levels: list[str]
    scans: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def float_volumes(self, index) -> np.ndarray:
        return self.volumes[index].astype(np.float32) / 255.0

    @classmethod
    def of(cls, records: list[tuple]) -> "DiscSet":
        """From ``(volume float array, labels, patient, level, scan)`` records."""
        volumes, labels, patients, levels, scans = zip(*records)
        return cls(np.stack([np.round(v * 255).astype(np.uint8) for v in volumes]), np.array(labels, np.int64),
                   list(patients), list(levels), [str(s) for s in scans])


def build_disc_set(rows: list[ManifestRow], localiser: Localiser | None = None) -> tuple[DiscSet, list[ManifestRow]]:
    """Localise each manifest scan, cut its disc volumes and attach the labels. Graded discs the
    localiser did not find are returned apart (the ``missed`` rows)."""
    localiser = localiser or Localiser.load()
    by_scan: dict[Path, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        by_scan[row.scan].append(row)
    records, missed = [], []
    for n, (scan, scan_rows) in enumerate(by_scan.items(), start=1):
        series = load_study(scan).sagittal()
        try:
            found = {v.level: v for v in disc_volumes(series, localiser(series))}
        except SpineCoreError as exc:
            found = {}
            log.warning("%s", exc)
        for row in scan_rows:
            if row.level not in found:
                missed.append(row)
                continue
            records.append((found[row.level].array, row.labels, row.patient, row.level, scan))
        if n % 25 == 0 or n == len(by_scan):
            log.info("extracted discs from %d/%d scans (%d discs, %d missed)", n, len(by_scan), len(records), len(missed))
    if not records:
        raise SpineCoreError(rows[0].scan, "no graded disc could be found in any manifest scan")
    return DiscSet.of(records), missed


def write_phantom_manifest(folder: Path, seeds, scheme: GradingScheme, independent_findings: bool = False,
                           n_slices: int | None = None) -> Path:
    """Write the sagittal T2 of each phantom seed as ``<folder>/phantom-<seed>.nii.gz`` (``n_slices``
    sagittal slices, default the phantom's) and a manifest ``<folder>/manifest.csv`` of their true
    grades on ``scheme``. With ``independent_findings`` every disc's grades come from
    :func:`~spinecore.phantom.anatomy.independent_grades` (seeded by the phantom's seed)."""
    from spinecore.io.write import write_volume
    from spinecore.phantom import PhantomSpec, make_phantom
    from spinecore.phantom.anatomy import independent_grades

    rows = []
    for seed in seeds:
        grades = {}
        if independent_findings:
            rng = np.random.default_rng([int(seed), 2])
            grades = {level: independent_grades(rng).as_dict() for level in DISCS}
        study = make_phantom(PhantomSpec(seed=int(seed), n_slices=n_slices, t1=False, axial=False, grades=grades))
        t2 = study.get("sag_t2")
        scan = write_volume(Path(folder) / f"phantom-{seed}.nii.gz", t2.array, t2.geometry)
        rows += [ManifestRow(f"phantom-{seed}", scan, d["level"], phantom_labels(d["grades"], scheme))
                 for d in study.truth["discs"]]
    path = Path(folder) / "manifest.csv"
    write_manifest(path, scheme, rows)
    return path


def phantom_labels(grades: dict[str, int], scheme: GradingScheme) -> tuple[int, ...]:
    """Class indices of a phantom disc's grades on ``scheme``: grades outside a task's range are
    clipped, binary tasks mean grade > 0, ``MISSING`` for tasks the phantom lacks."""
    sources = {"modic": max(grades.get("marrow_upper", 0), grades.get("marrow_lower", 0)),
               "bulging": max(grades.get("bulging_anterior", 0), grades.get("bulging_posterior", 0))}
    out = []
    for task in scheme.tasks:
        value = sources.get(task.name, grades.get(task.name))
        if value is None:
            out.append(MISSING)
            continue
        if task.values == (0, 1):
            value = int(value > 0)
        out.append(task.index(min(max(value, task.values[0]), task.values[-1])))
    return tuple(out)
