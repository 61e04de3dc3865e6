"""Grading manifests of the SPIDER gradings in the shared real-data pack."""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from spinecore.data.manifests import ManifestRow
from spinecore.data.pack import require_pack
from spinecore.data.splits import spider_split
from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import GradingScheme
from spinecore.levels import DISCS

#: Our task names → the columns of ``spider_midsag/gradings.csv``.
SPIDER_COLUMNS = {"pfirrmann": "Pfirrman grade", "modic": "Modic", "endplate_upper": "UP endplate",
                  "endplate_lower": "LOW endplate", "spondylolisthesis": "Spondylolisthesis",
                  "herniation": "Disc herniation", "narrowing": "Disc narrowing", "bulging": "Disc bulging"}
GRADINGS = "spider_midsag/gradings.csv"


def _graded_rows(root: Path) -> list[dict[str, str]]:
    """The gradings of patients whose bottom-up disc numbering is sure (no ``IVD label 0`` row)."""
    with (root / GRADINGS).open(newline="") as f:
        gradings = list(csv.DictReader(f))
    doubtful = {r["Patient"] for r in gradings if r["level"] == "unknown"}
    return [r for r in gradings if r["Patient"] not in doubtful and r["level"] in DISCS]


def spider_patient_split(data_root: Path) -> dict[str, set[str]]:
    """The graded SPIDER patients by part, ``train`` and ``validation``: the grading manifests' split."""
    patients = {r["Patient"] for r in _graded_rows(require_pack(data_root, GRADINGS))}
    validation = spider_split(sorted(patients))
    return {"train": patients - validation, "validation": validation}


def spider_manifests(data_root: Path, scheme: GradingScheme) -> dict[str, list[ManifestRow]]:
    """Manifest rows for every SPIDER series of the data pack (mid-sagittal T1, T2, T2-SPACE and the
    T2-SPACE slabs), split by patient into ``train`` and ``validation``; each mid-sagittal T2 row
    carries the same patient's mid-sagittal T1 as ``scan_t1`` (:func:`t1_partner`). Rows of patients
    whose bottom-up disc numbering is in doubt (an ``IVD label 0`` row) are left out."""
    root = require_pack(data_root, GRADINGS)
    graded = _graded_rows(root)
    scans: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((root / "spider_midsag" / "images").glob("*.nii.gz")):
        scans[path.name.split("_")[0]].append(path)
    for path in sorted((root / "spider_space" / "images").glob("*.nii.gz")):
        scans[path.name.split("_")[0]].append(path)
    validation = spider_split([r["Patient"] for r in graded])
    split: dict[str, list[ManifestRow]] = {"train": [], "validation": []}
    for r in graded:
        labels = tuple(scheme.task(t).index(int(r[SPIDER_COLUMNS[t]])) if t in SPIDER_COLUMNS else MISSING
                       for t in scheme.task_names)
        for scan in scans[r["Patient"]]:
            part = "validation" if r["Patient"] in validation else "train"
            split[part].append(ManifestRow(r["Patient"], scan.resolve(), r["level"], labels, t1_partner(scan)))
    return split


def validation_pairs(validation: list[ManifestRow]) -> dict[str, list[ManifestRow]]:
    """The fusion check's manifests (thesis Table 6.2): ``validation_pairs``, the ``validation`` rows
    with a T1 partner, and ``validation_pairs_t2_only``, the same rows without it (a fused model given
    the T2 alone)."""
    pairs = [r for r in validation if r.scan_t1 is not None]
    return {"validation_pairs": pairs, "validation_pairs_t2_only": [replace(r, scan_t1=None) for r in pairs]}


def t1_partner(scan: Path) -> Path | None:
    """The mid-sagittal T1 of the patient of a mid-sagittal T2 ``<patient>_t2.nii.gz`` (same folder),
    if the pack has it; ``None`` for every other series (the T2-SPACE images are another acquisition,
    whose exported grids do not share the T1's frame)."""
    patient, _, sequence = scan.name.partition("_")
    partner = scan.with_name(f"{patient}_t1.nii.gz")
    return partner.resolve() if sequence == "t2.nii.gz" and partner.is_file() else None
