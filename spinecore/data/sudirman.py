"""The Sudirman mid-sagittal T1/T2 images of the shared real-data pack (a second hospital), their
disc boxes and Pfirrmann grades: our patient-level split, where each named disc lies, and the
grading manifests.

Boxes are ``(row0, col0, row1, col1)`` in pixel indices of the series' single slice (rows head →
feet, columns anterior → posterior), as ``sudirman_midsag/boxes.csv`` gives them.
"""
from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

from spinecore.data.manifests import ManifestRow
from spinecore.data.pack import require_pack
from spinecore.data.spider import t1_partner
from spinecore.errors import SpineCoreError
from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import GradingScheme
from spinecore.levels import DISCS

FOLDER = "sudirman_midsag"
SEQUENCES = ("t1", "t2")
#: About a fifth of our Sudirman patients, drawn with this seed, are our validation split.
SUDIRMAN_SPLIT_SEED = 2026
SUDIRMAN_VALIDATION_SHARE = 0.2
#: Notes of boxes that are not one named disc (a stenosis/slip box placed at a disc's level, two
#: disc boxes at one level, a disc above an irregular gap that could not be named).
_NOT_ONE_DISC = ("non-disc box", "2 disc boxes", "not named")
GRADINGS = f"{FOLDER}/gradings.csv"
#: The discs the pack grades (Pfirrmann only).
GRADED_LEVELS = ("L3-L4", "L4-L5", "L5-S1")
#: The one ``gradings.csv`` note that keeps a grade: it only says the patient has no T2 image. Every
#: other note (e.g. no confidently named disc box at the level) puts the level in doubt.
_HARMLESS_NOTE = "no T2 image for this patient"
#: Manifest patient ids are ``sudirman-<number>``, apart from SPIDER's plain numbers.
PATIENT_PREFIX = "sudirman-"

Box = tuple[float, float, float, float]


def sudirman_split(patients: list[str]) -> dict[str, set[str]]:
    """Sudirman ``patients`` by part, ``train`` and ``validation`` (a patient's T1 and T2 together)."""
    ordered = sorted(set(patients), key=int)
    count = round(SUDIRMAN_VALIDATION_SHARE * len(ordered))
    validation = set(random.Random(SUDIRMAN_SPLIT_SEED).sample(ordered, count))
    return {"train": set(ordered) - validation, "validation": validation}


def disc_boxes(data_root: Path) -> dict[str, dict[str, Box]]:
    """Series name (``<patient>_<t1|t2>``) → level → the box of that disc; levels whose box is
    ambiguous (see :data:`_NOT_ONE_DISC`) are left out."""
    root = require_pack(data_root, f"{FOLDER}/boxes.csv")
    boxes: dict[str, dict[str, Box]] = defaultdict(dict)
    with (root / FOLDER / "boxes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["level"] in DISCS and not row["level_note"].startswith(_NOT_ONE_DISC):
                boxes[row["series"]][row["level"]] = tuple(float(row[k]) for k in ("row0", "col0", "row1", "col1"))
    return dict(boxes)


def sudirman_images(data_root: Path, part: str) -> list[Path]:
    """The mid-sagittal T1 and T2 images of our ``part`` (``train`` or ``validation``) patients."""
    images = require_pack(data_root, f"{FOLDER}/images/") / FOLDER / "images"
    paths = sorted(images.glob("*.nii.gz"))
    split = sudirman_split([p.name.split("_")[0] for p in paths])
    return [p for p in paths if p.name.split("_")[0] in split[part]]


def sudirman_manifests(data_root: Path, scheme: GradingScheme) -> dict[str, list[ManifestRow]]:
    """Manifest rows of the Sudirman Pfirrmann grades (L3-L4 to L5-S1; every other task ``MISSING``),
    one per graded disc of each of the patient's mid-sagittal T1 and T2 images, split by patient
    (:func:`sudirman_split`) into ``train`` and ``validation``; each T2 row carries the patient's T1
    as ``scan_t1`` where the pack has it. Grades that are empty or not a Pfirrmann value, and levels
    whose note puts them in doubt, are left out."""
    if "pfirrmann" not in scheme.task_names:
        raise SpineCoreError(scheme.name, "the Sudirman grades are Pfirrmann grades: the scheme has no pfirrmann task")
    root = require_pack(data_root, GRADINGS, f"{FOLDER}/images/")
    pfirrmann = scheme.task("pfirrmann")
    scans: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((root / FOLDER / "images").glob("*.nii.gz")):
        scans[path.name.split("_")[0]].append(path)
    split = sudirman_split(list(scans))
    parts: dict[str, list[ManifestRow]] = {"train": [], "validation": []}
    with (root / GRADINGS).open(newline="") as f:
        for r in csv.DictReader(f):
            grade = (r["pfirrmann"] or "").strip()
            note = (r["note"] or "").strip()
            if (r["level"] not in GRADED_LEVELS or grade not in {str(v) for v in pfirrmann.values}
                    or (note and not note.startswith(_HARMLESS_NOTE))):
                continue
            labels = tuple(pfirrmann.index(int(grade)) if t == "pfirrmann" else MISSING for t in scheme.task_names)
            part = "validation" if r["Patient"] in split["validation"] else "train"
            parts[part] += [ManifestRow(PATIENT_PREFIX + r["Patient"], scan.resolve(), r["level"], labels,
                                        t1_partner(scan)) for scan in scans[r["Patient"]]]
    return parts
