"""The Sudirman mid-sagittal T1/T2 images of the shared real-data pack (a second hospital) and
their disc boxes: our patient-level split, and where each named disc lies.

Boxes are ``(row0, col0, row1, col1)`` in pixel indices of the series' single slice (rows head →
feet, columns anterior → posterior), as ``sudirman_midsag/boxes.csv`` gives them.
"""
from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

from spinecore.data.pack import require_pack
from spinecore.levels import DISCS

FOLDER = "sudirman_midsag"
SEQUENCES = ("t1", "t2")
#: About a fifth of our Sudirman patients, drawn with this seed, are our validation split.
SUDIRMAN_SPLIT_SEED = 2026
SUDIRMAN_VALIDATION_SHARE = 0.2
#: Notes of boxes that are not one named disc (a stenosis/slip box placed at a disc's level, two
#: disc boxes at one level, a disc above an irregular gap that could not be named).
_NOT_ONE_DISC = ("non-disc box", "2 disc boxes", "not named")

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
