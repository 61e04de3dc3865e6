"""Localiser evaluation on our validation split, against corners and levels derived from masks.

Metrics per dataset:

* **level accuracy**: share of reference vertebrae (not within 2 mm of the top or bottom edge) whose
  matched prediction (the one whose centroid lies in the reference body) has the right level;
  a vertebra with no matched prediction counts as wrong;
* **corners within 2.8 mm**: per matched vertebra and slice where the reference body covers
  at least half its largest area, the distance between each predicted corner and the corner
  derived from the reference mask with the same rule (:func:`quad_from_region`); reported
  over all those slices and over each reference body's largest slice alone;
* **disc centres inside**: share of reference discs whose predicted ``center_mm`` falls
  inside that disc's mask (a missing disc counts as a miss).
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinecore.data.references import ReferenceScan, real_scans
from spinecore.data.spider import GRADINGS
from spinecore.data.splits import spider_split
from spinecore.data.sudirman import FOLDER as SUDIRMAN
from spinecore.data.sudirman import disc_boxes, sudirman_images
from spinecore.errors import SpineCoreError
from spinecore.evaluate.coverage import SEQUENCES, box_coverage, coverage, graded_levels, series_discs, validation_paths
from spinecore.io import load_study
from spinecore.io.series import Series
from spinecore.localise import Localiser, quad_from_region
from spinecore.localise.localiser import BORDER_MM
from spinecore.localise.spine import Spine

log = logging.getLogger(__name__)
#: A corner counts as right within this distance (the thesis' tolerance, chapter 3).
CORNER_TOLERANCE_MM = 2.8
#: One contact-sheet panel: title, series, and its localisation (None when it failed).
SheetCase = tuple[str, Series, "Spine | None"]


def _inside(mask: np.ndarray, point_mm: np.ndarray, spine: Spine) -> bool:
    k, r, c = np.round(spine.geometry.mm_to_vox(point_mm)).astype(int)
    return bool(0 <= k < mask.shape[0] and 0 <= r < mask.shape[1] and 0 <= c < mask.shape[2] and mask[k, r, c])


def _touches_border(mask: np.ndarray, spacing_mm: float) -> bool:
    """Whether the reference reaches within :data:`BORDER_MM` of the top or bottom edge (cut by the view)."""
    rows = max(1, int(round(BORDER_MM / spacing_mm)))
    return bool(mask[:, :rows].any() or mask[:, -rows:].any())


def score_scan(scan: ReferenceScan, spine: Spine | None) -> dict:
    """Per-scan counts and corner errors (``spine`` is None when localisation failed)."""
    result = {"scan": scan.name, "dataset": scan.dataset, "levels_right": 0, "levels_total": 0, "wrong": [],
              "corner_errors_mm": [], "mid_slice_corner_errors_mm": [], "discs_inside": 0, "discs_total": 0,
              "predicted": spine.levels if spine else None}
    spacing = scan.series.spacing[1:]
    for level, mask in scan.bodies.items():
        if _touches_border(mask, scan.series.spacing[1]):
            continue
        result["levels_total"] += 1
        match = next((v for v in spine.vertebrae if _inside(mask, v.centroid_mm, spine)), None) if spine else None
        if match is None or match.level != level:
            result["wrong"].append(f"{level}->{match.level if match else 'missed'}")
            continue
        result["levels_right"] += 1
        areas = mask.sum(axis=(1, 2))
        for s in match.slices:
            if areas[s.slice] < 0.5 * areas.max():
                continue
            down = s.corners_vox[2:, 1:].mean(axis=0) - s.corners_vox[:2, 1:].mean(axis=0)
            reference = quad_from_region(mask[s.slice], spacing, down)
            reference_mm = scan.series.geometry.vox_to_mm(np.column_stack([np.full(4, s.slice), reference]))
            errors = np.linalg.norm(s.corners_mm - reference_mm, axis=1).round(3).tolist()
            result["corner_errors_mm"] += errors
            if s.slice == int(np.argmax(areas)):
                result["mid_slice_corner_errors_mm"] += errors
    for level, mask in scan.discs.items():
        if _touches_border(mask, scan.series.spacing[1]):
            continue
        result["discs_total"] += 1
        disc = next((d for d in spine.discs if d.level == level), None) if spine else None
        result["discs_inside"] += bool(disc is not None and _inside(mask, disc.center_mm, spine))
    return result


def summarise(results: list[dict]) -> dict:
    errors = np.array([e for r in results for e in r["corner_errors_mm"]])
    mid = np.array([e for r in results for e in r["mid_slice_corner_errors_mm"]])
    levels = sum(r["levels_total"] for r in results)
    discs = sum(r["discs_total"] for r in results)
    return {
        "scans": len(results),
        "vertebrae": levels,
        "level_accuracy": round(sum(r["levels_right"] for r in results) / levels, 4) if levels else None,
        "corners": int(errors.size),
        "corners_within_2.8mm": round(float((errors <= CORNER_TOLERANCE_MM).mean()), 4) if errors.size else None,
        "corner_error_median_mm": round(float(np.median(errors)), 2) if errors.size else None,
        "corner_error_p95_mm": round(float(np.percentile(errors, 95)), 2) if errors.size else None,
        "mid_slice_corners": int(mid.size),
        "mid_slice_corners_within_2.8mm": round(float((mid <= CORNER_TOLERANCE_MM).mean()), 4) if mid.size else None,
        "discs": discs,
        "disc_centres_inside": round(sum(r["discs_inside"] for r in results) / discs, 4) if discs else None,
        "failures": [f"{r['scan']}: {', '.join(r['wrong'])}" for r in results if r["wrong"]],
    }


def midsag_cases(data_root: Path, count: int) -> list[Path]:
    """Mid-sagittal SPIDER T1/T2 series of our grading validation patients, never trained on
    (half T1, half T2), in a fixed order."""
    unseen = spider_split(list(graded_levels(Path(data_root) / GRADINGS)))
    with open(data_root / "spider_midsag" / "series.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["patient"] in unseen and r["sequence"] in SEQUENCES]
    rng = np.random.default_rng(0)
    picked = []
    for sequence in SEQUENCES:
        names = sorted(r["series"] for r in rows if r["sequence"] == sequence)
        picked += list(rng.choice(names, size=min(count // 2, len(names)), replace=False))
    return [data_root / "spider_midsag" / "images" / f"{name}.nii.gz" for name in sorted(picked)]


@dataclass
class LocaliserEvaluation:
    """Summaries per dataset (and ``all``; ``midsag``: levels per mid-sagittal case; ``coverage``:
    :func:`~spinecore.evaluate.coverage.coverage` on the grading validation patients;
    ``coverage_sudirman``: :func:`~spinecore.evaluate.coverage.box_coverage` on our Sudirman
    validation patients, when the pack has them), per-scan results, and the cases of the
    contact sheets."""

    summary: dict
    per_dataset: dict[str, list[dict]]
    sheets: dict[str, list[SheetCase]]
    midsag: list[SheetCase]
    coverage: list[SheetCase]
    sudirman: list[SheetCase]


def _localise_or_none(localiser: Localiser, series: Series, name: str) -> Spine | None:
    try:
        return localiser(series)
    except SpineCoreError as exc:
        log.warning("%s: %s", name, exc)
        return None


def _localise_images(paths: list[Path], localiser: Localiser) -> list[SheetCase]:
    """Each single-series image localised: (its name, the series, the spine or None)."""
    cases = []
    for path in paths:
        series = load_study(path).series[0]
        cases.append((path.name.split(".")[0], series, _localise_or_none(localiser, series, path.name)))
    return cases


def evaluate_localiser(data_root: Path, localiser: Localiser, midsag_cases_count: int = 40) -> LocaliserEvaluation:
    """Metrics on the validation split, disc coverage on the grading validation patients'
    mid-sagittal images, and mid-sagittal cases for reading by eye."""
    per_dataset: dict[str, list[dict]] = {}
    sheets: dict[str, list[SheetCase]] = {}
    for scan in real_scans(data_root, "validation"):
        spine = _localise_or_none(localiser, scan.series, scan.name)
        per_dataset.setdefault(scan.dataset, []).append(score_scan(scan, spine))
        sheets.setdefault(scan.dataset, []).append((scan.name, scan.series, spine))
    summary = {dataset: summarise(results) for dataset, results in per_dataset.items()}
    summary["all"] = summarise([r for results in per_dataset.values() for r in results])
    validation = _localise_images(validation_paths(data_root), localiser)
    summary["coverage"] = coverage([series_discs(*case) for case in validation],
                                   graded_levels(Path(data_root) / GRADINGS))
    midsag = _localise_images(midsag_cases(data_root, midsag_cases_count), localiser)
    summary["midsag"] = {name: (spine.levels if spine else None) for name, _, spine in midsag}
    sudirman = []
    if (Path(data_root) / SUDIRMAN).is_dir():
        sudirman = _localise_images(sudirman_images(data_root, "validation"), localiser)
        summary["coverage_sudirman"] = box_coverage([series_discs(*case) for case in sudirman], disc_boxes(data_root),
                                                    {name: series.spacing[1:] for name, series, _ in sudirman})
    return LocaliserEvaluation(summary, per_dataset, sheets, midsag, validation, sudirman)
