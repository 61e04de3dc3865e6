"""Pseudo-labels for the localiser on the mid-sagittal images that have no masks (issue 14).

A teacher localiser reads every mid-sagittal T1 and T2 image of our *training* patients. Its
maps become training targets only where its labelling is consistent with what the pack knows:

* SPIDER: every disc the radiologists graded is found with its level, no more discs than the
  patient's series has (``series.csv`` ``num_discs``);
* Sudirman: every disc with a named box is found with its level and centred inside its box;
* either: no body inferred, no weak anchor; and when the patient's T1 and T2 are pixel-aligned
  (same grid, gradient correlation at least :data:`ALIGNED_NCC`), both give the same level to
  every disc they share.

A consistent image teaches its own scan and, when the partner sequence of a pixel-aligned pair
failed the check, the partner's too (the T2 labelling carries over to a T1 where the teacher
missed a disc, and back). Targets keep only confident pixels (probability at least
:data:`POSITIVE` or at most :data:`NEGATIVE`); the rest, and everything beyond the labelled
chain, is unknown (:data:`~spinecore.data.references.IGNORE`), so the real masks keep deciding
where outlines run.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from spinecore.data.references import IGNORE, TrainingScan
from spinecore.data.spider import GRADINGS, spider_patient_split
from spinecore.data.sudirman import disc_boxes, sudirman_images
from spinecore.errors import SpineCoreError
from spinecore.evaluate.coverage import SEQUENCES, box_coverage, graded_levels, level_agreement, series_discs
from spinecore.io import load_study
from spinecore.io.series import Series
from spinecore.localise import Localiser
from spinecore.localise.grid import SliceGrid, normalise_slices, to_grid
from spinecore.localise.localiser import spine_from_maps
from spinecore.localise.spine import INFERRED_VERTEBRA, WEAK_ANCHOR, Spine

log = logging.getLogger(__name__)

#: Teacher probabilities at or above POSITIVE are targets 1, at or below NEGATIVE targets 0.
POSITIVE = 0.8
NEGATIVE = 0.2
#: A T1/T2 pair on one grid is pixel-aligned when the zero-shift correlation of their gradient
#: magnitudes (Gaussian, GRADIENT_SIGMA_MM) reaches this. Measured on the pack's same-grid pairs:
#: same patient 5th percentile 0.82 (SPIDER) and 0.49 (Sudirman), other patients at most 0.34.
ALIGNED_NCC = 0.45
GRADIENT_SIGMA_MM = 3.0
#: Working-grid rows kept known beyond the labelled chain's top and bottom outline.
CHAIN_MARGIN_PX = 4
#: Dataset name of pseudo-labelled scans in the training mix.
PSEUDO = "pseudo"
#: Progress is logged after this many images read.
PROGRESS_EVERY = 50


@dataclass
class _Read:
    """One image read by the teacher: name ``<patient>_<sequence>``, the series, the spine
    (None: failed), the maps on the working grid, and whether the labelling is consistent."""

    name: str
    series: Series
    spine: Spine | None
    grid: SliceGrid
    prob: np.ndarray
    consistent: bool = False

    @property
    def patient(self) -> str:
        return self.name.split("_")[0]


def _read(path: Path, teacher: Localiser, done: int) -> _Read:
    """``path`` read by the teacher, the ``done``-th image of a dataset (for the progress log)."""
    if done % PROGRESS_EVERY == 0:
        log.info("pseudo-labels: %d images of %s read", done, path.parent.parent.name)
    series = load_study(path).series[0]
    grid, prob = teacher.probabilities(series)
    try:
        spine = spine_from_maps(series, grid, prob)
    except SpineCoreError:
        spine = None
    return _Read(path.name.split(".")[0], series, spine, grid, prob)


def _clean(spine: Spine | None) -> bool:
    doubtful = (INFERRED_VERTEBRA, WEAK_ANCHOR)
    return spine is not None and not any(f in v.flags for v in spine.vertebrae for f in doubtful)


def _spider_consistent(read: _Read, graded: set[str], disc_count: int) -> bool:
    found = {d.level for d in read.spine.discs}
    return graded <= found and len(found) <= disc_count


def _sudirman_consistent(read: _Read, boxes: dict) -> bool:
    if not boxes:
        return False
    result = box_coverage([series_discs(read.name, read.series, read.spine)], {read.name: boxes},
                          {read.name: read.series.spacing[1:]})
    return not result["missed"]


def gradient_correlation(a: np.ndarray, b: np.ndarray, sigma_px: float) -> float:
    """Zero-shift correlation of the gradient magnitudes (Gaussian ``sigma_px``) of two same-shape 2-D images."""
    ga, gb = (ndimage.gaussian_gradient_magnitude(np.asarray(x, dtype=float), sigma_px).ravel() for x in (a, b))
    ga, gb = ga - ga.mean(), gb - gb.mean()
    return float(ga @ gb / max(np.linalg.norm(ga) * np.linalg.norm(gb), 1e-12))


def _aligned(a: _Read, b: _Read) -> bool:
    """Same grid, and the middle slices' gradients line up (the only slice of a mid-sagittal image)."""
    middle = a.series.shape[0] // 2
    return (a.series.shape == b.series.shape and np.allclose(a.series.spacing, b.series.spacing)
            and gradient_correlation(a.series.array[middle], b.series.array[middle],
                                     GRADIENT_SIGMA_MM / a.series.spacing[1]) >= ALIGNED_NCC)


def _same_levels(a: _Read, b: _Read) -> bool:
    agree, common = level_agreement(*(series_discs(r.name, r.series, r.spine) for r in (a, b)))
    return agree == common


def pseudo_target(read: _Read) -> np.ndarray:
    """``(slices, channels, rows, cols)`` uint8 targets on the working grid from a consistent read."""
    target = np.full(read.prob.shape, IGNORE, dtype=np.uint8)
    target[read.prob >= POSITIVE] = 1
    target[read.prob <= NEGATIVE] = 0
    rows = np.concatenate([read.grid.from_scan(s.corners_vox[:, 1:])[:, 0] for v in read.spine.vertebrae
                           for s in v.slices])
    top, bottom = int(np.floor(rows.min())) - CHAIN_MARGIN_PX, int(np.ceil(rows.max())) + CHAIN_MARGIN_PX
    target[..., :max(top, 0), :] = IGNORE
    target[..., bottom + 1:, :] = IGNORE
    return target


def _training_scan(name: str, image_of: _Read, labels_of: _Read) -> TrainingScan:
    image = to_grid(normalise_slices(image_of.series.array), image_of.grid)
    return TrainingScan(name, PSEUDO, image, pseudo_target(labels_of))


def _pairs_checked(reads: list[_Read]) -> list[TrainingScan]:
    """Training scans of one patient's reads (consistency already judged per image)."""
    by_sequence = {r.name.split("_", 1)[1]: r for r in reads}
    scans = []
    t1, t2 = by_sequence.get("t1"), by_sequence.get("t2")
    if t1 is not None and t2 is not None and _aligned(t1, t2):
        if t1.consistent and t2.consistent and not _same_levels(t1, t2):
            return []
        teacher = t2 if t2.consistent else t1
        if teacher.consistent:
            scans += [_training_scan(f"{r.name}<-{teacher.name}", r, teacher) for r in (t1, t2) if not r.consistent]
    return scans + [_training_scan(r.name, r, r) for r in reads if r.consistent]


def _spider_reads(data_root: Path, teacher: Localiser) -> dict[str, list[_Read]]:
    graded = graded_levels(Path(data_root) / GRADINGS)
    train = spider_patient_split(data_root)["train"]
    with (Path(data_root) / "spider_midsag" / "series.csv").open(newline="") as f:
        disc_counts = {r["series"]: int(r["num_discs"]) for r in csv.DictReader(f)}
    images = Path(data_root) / "spider_midsag" / "images"
    reads: dict[str, list[_Read]] = {}
    for patient in sorted(train, key=int):
        for sequence in SEQUENCES:
            path = images / f"{patient}_{sequence}.nii.gz"
            if path.is_file():
                read = _read(path, teacher, sum(map(len, reads.values())))
                read.consistent = (_clean(read.spine)
                                   and _spider_consistent(read, graded[patient], disc_counts[read.name]))
                reads.setdefault(f"spider-{patient}", []).append(read)
    return reads


def _sudirman_reads(data_root: Path, teacher: Localiser) -> dict[str, list[_Read]]:
    boxes = disc_boxes(data_root)
    reads: dict[str, list[_Read]] = {}
    for done, path in enumerate(sudirman_images(data_root, "train")):
        read = _read(path, teacher, done)
        read.consistent = _clean(read.spine) and _sudirman_consistent(read, boxes.get(read.name, {}))
        reads.setdefault(f"sudirman-{read.patient}", []).append(read)
    return reads


def pseudo_labelled_scans(data_root: Path, teacher: Localiser) -> tuple[list[TrainingScan], dict]:
    """Pseudo-labelled training scans from our training patients' mid-sagittal SPIDER and (when the
    pack has them) Sudirman images, and counts of what was read and kept."""
    reads = _spider_reads(data_root, teacher)
    if (Path(data_root) / "sudirman_midsag").is_dir():
        reads |= _sudirman_reads(data_root, teacher)
    scans = [scan for patient_reads in reads.values() for scan in _pairs_checked(patient_reads)]
    every = [r for patient_reads in reads.values() for r in patient_reads]
    counts = {"images": len(every), "consistent": sum(r.consistent for r in every),
              "taught_by_partner": sum("<-" in s.name for s in scans), "training_scans": len(scans)}
    log.info("pseudo-labels: %s", counts)
    return scans, counts
