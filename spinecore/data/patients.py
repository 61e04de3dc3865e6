"""Patient-score manifests (CSV) → the lumbar discs' features of each patient's scan with the
patient's scores, for the patient-level head (:mod:`spinecore.grade.patient`).

Manifest format (UTF-8 CSV, one row per patient)::

    patient,scan,odi_total
    P001,scans/P001_t2.nii.gz,22

``scan`` is any sagittal T2 input ``spinecore`` reads, relative to the manifest's folder or
absolute; every other column is a numeric score (empty: not known for that patient, left out of
the loss). No public data has patient-level scores: :func:`synthetic_score` makes one for phantoms
from their true Pfirrmann grades.
"""
from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinecore.data.manifests import relative_scan, resolve
from spinecore.errors import SpineCoreError
from spinecore.grade.network import GradingNet
from spinecore.grade.patient import patient_features
from spinecore.levels import LUMBAR_DISCS
from spinecore.io import load_study
from spinecore.localise import Localiser

log = logging.getLogger(__name__)
#: The synthetic phantom score: weight of each lumbar disc's Pfirrmann grade above 1 (lower discs
#: count more), and the deviation of the Gaussian noise added (the part no image explains).
SYNTHETIC_WEIGHTS = dict(zip(LUMBAR_DISCS, (0.5, 0.5, 1.0, 1.0, 2.0, 2.0)))
SYNTHETIC_NOISE = 1.0
SYNTHETIC_SCORE = "synthetic_score"


@dataclass(frozen=True)
class PatientRow:
    patient: str
    scan: Path
    scores: tuple[float, ...]  # NaN where not known


def read_patient_manifest(path: Path) -> tuple[tuple[str, ...], list[PatientRow]]:
    """The score names and rows of a patient-score manifest; one-line errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise SpineCoreError(path, "manifest not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or ())
        names = tuple(c for c in columns if c not in ("patient", "scan"))
        if {"patient", "scan"} - set(columns) or not names:
            raise SpineCoreError(path, "a patient-score manifest needs the columns patient, scan and at least one score")
        rows = []
        for line, record in enumerate(reader, start=2):
            try:
                scores = tuple(float(text) if (text := (record[n] or "").strip()) else math.nan for n in names)
            except ValueError:
                raise SpineCoreError(path, f"line {line}: a score is not a number") from None
            if not all(math.isfinite(s) or math.isnan(s) for s in scores):
                raise SpineCoreError(path, f"line {line}: a score is infinite")
            rows.append(PatientRow(record["patient"], resolve(path, record["scan"]), scores))
    if not rows:
        raise SpineCoreError(path, "manifest has no rows")
    return names, rows


def synthetic_score(discs: list[dict], seed: int) -> float:
    """A phantom's score: Σ weight × (Pfirrmann − 1) over its lumbar discs in view
    (:data:`SYNTHETIC_WEIGHTS`), plus noise of deviation :data:`SYNTHETIC_NOISE` drawn from ``seed``."""
    noise = np.random.default_rng([int(seed), 8]).normal(0.0, SYNTHETIC_NOISE)
    return float(sum(SYNTHETIC_WEIGHTS.get(d["level"], 0.0) * (d["grades"]["pfirrmann"] - 1) for d in discs) + noise)


def write_patient_manifest(path: Path, names: tuple[str, ...], rows: list[PatientRow]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["patient", "scan", *names])
        for row in rows:
            writer.writerow([row.patient, relative_scan(path, row.scan),
                             *("" if math.isnan(s) else f"{s:.4f}" for s in row.scores)])


def write_phantom_patients(folder: Path, seeds, n_slices: int | None = None) -> Path:
    """Write each phantom seed's sagittal T2 as ``<folder>/phantom-<seed>.nii.gz`` and the manifest
    ``<folder>/patients.csv`` of their :func:`synthetic_score`."""
    from spinecore.io.write import write_volume
    from spinecore.phantom import PhantomSpec, make_phantom

    rows = []
    for seed in seeds:
        study = make_phantom(PhantomSpec(seed=int(seed), n_slices=n_slices, t1=False, axial=False))
        t2 = study.get("sag_t2")
        scan = write_volume(Path(folder) / f"phantom-{seed}.nii.gz", t2.array, t2.geometry)
        rows.append(PatientRow(f"phantom-{seed}", scan, (synthetic_score(study.truth["discs"], seed),)))
    path = Path(folder) / "patients.csv"
    write_patient_manifest(path, (SYNTHETIC_SCORE,), rows)
    return path


@dataclass
class PatientSet:
    """Per patient: disc ``features`` ``(N, F, 6)`` and ``present`` ``(N, 6)`` (``float32``, columns
    :data:`~spinecore.grade.patient.LUMBAR_DISCS`), ``scores`` ``(N, S)`` (NaN: unknown)."""

    patients: list[str]
    features: np.ndarray
    present: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.patients)


def build_patient_set(rows: list[PatientRow], net: GradingNet, localiser: Localiser) -> PatientSet:
    """Localise each row's scan and read its lumbar discs' features with the grader ``net``; a scan
    where no spine is found is skipped with a log line (an unreadable one is an error)."""
    kept, features, present = [], [], []
    for n, row in enumerate(rows, start=1):
        series = load_study(row.scan).sagittal()
        try:
            f, p = patient_features(net, series, localiser)
        except SpineCoreError as exc:
            log.warning("%s", exc)
            continue
        kept.append(row)
        features.append(f)
        present.append(p)
        if n % 25 == 0 or n == len(rows):
            log.info("disc features of %d/%d patients", n, len(rows))
    if not kept:
        raise SpineCoreError(rows[0].scan, "no spine found in any manifest scan")
    return PatientSet([r.patient for r in kept], np.stack(features), np.stack(present),
                      np.array([r.scores for r in kept], np.float32))
