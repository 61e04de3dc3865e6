"""Evaluating evidence hotspots: percentile boxes against the true lesion boxes of phantoms
(thesis 5.3.2), and a contact sheet of hotspots on real discs for reading by eye."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinecore.errors import SpineCoreError
from spinecore.extract import StructureVolume, disc_volume
from spinecore.grade.grader import Grader
from spinecore.levels import DISCS
from spinecore.localise import Localiser
from spinecore.models import models_dir
from spinecore.saliency import (
    DEFAULT_AUGMENTATIONS,
    DEFAULT_METHOD,
    Method,
    hotspot_boxes,
    hotspots,
    volume_iou,
    whole_volume_boxes,
)
from spinecore.saliency.boxes import box_of

log = logging.getLogger(__name__)

#: lesion painted in the phantom → (grade overrides on the target disc, the task whose hotspot must find it)
LESION_CASES = {
    "endplate_defect": ({"endplate_upper": 2}, "endplate_upper"),
    "marrow": ({"marrow_lower": 2}, "marrow_lower"),
    "stenosis": ({"stenosis": 3}, "stenosis"),
    "herniation": ({"herniation": 2}, "herniation"),
}
#: the tasks a grader needs for the lesion evaluation
LESION_TASKS = frozenset(task for _, task in LESION_CASES.values())
NO_LESIONS = {"endplate_upper": 0, "endplate_lower": 0, "marrow_upper": 0, "marrow_lower": 0, "stenosis": 0,
              "herniation": 0}
TARGET_LEVELS = ("L2-L3", "L3-L4", "L4-L5")
PERCENTILES = (90.0, 95.0, 97.0, 99.0)
#: the bundled genodisc grader trained on phantoms with independent findings (in ``models_dir()``)
PHANTOM_GRADER = "phantom_grader.pt"


def load_lesion_grader(path: Path | None = None) -> Grader:
    """The grader to evaluate (default: the bundled phantom grader); it must grade every
    :data:`LESION_TASKS`."""
    grader = Grader.load(path or models_dir() / PHANTOM_GRADER)
    missing = LESION_TASKS - set(grader.scheme.task_names)
    if missing:
        raise SpineCoreError(path, f"model lacks the lesion tasks {', '.join(sorted(missing))} "
                                   "(train one on `spinecore phantom-manifest` output with --scheme genodisc)")
    return grader


@dataclass
class LesionCase:
    lesion: str
    seed: int
    volume: StructureVolume
    reference: list  # per-slice true lesion boxes in volume pixels


def lesion_mask_in_volume(volume: StructureVolume, lesions: np.ndarray, code: int) -> np.ndarray:
    """Nearest-neighbour resampling of ``lesions == code`` (scan grid) into the volume's voxels."""
    s, r, c = np.indices(volume.array.shape).reshape(3, -1)
    scan = np.rint(volume.scan_index(np.stack([s, r, c], 1))).astype(int)
    inside = np.all((scan >= 0) & (scan < np.array(lesions.shape)), axis=1)
    out = np.zeros(s.size, bool)
    out[inside] = lesions[tuple(scan[inside].T)] == code
    return out.reshape(volume.array.shape)


def lesion_cases(seeds, localiser: Localiser | None = None) -> list[LesionCase]:
    """Phantoms with exactly one lesion (on one of L2-L3..L4-L5, chosen by seed), their disc volume
    cut through the localiser, and the true per-slice lesion boxes."""
    from spinecore.phantom import PhantomSpec, make_phantom
    from spinecore.phantom.render import LESIONS

    localiser = localiser or Localiser.load()
    cases = []
    for lesion, (overrides, _) in LESION_CASES.items():
        for seed in seeds:
            level = TARGET_LEVELS[seed % len(TARGET_LEVELS)]
            grades = {d: dict(NO_LESIONS) for d in DISCS}
            grades[level].update(overrides)
            study = make_phantom(PhantomSpec(seed=int(seed), t1=False, axial=False, grades=grades))
            series = study.get("sag_t2").to_series(f"phantom-{seed}")
            spine = localiser(series)
            if level not in {d.level for d in spine.discs}:
                log.warning("phantom %d: %s not found by the localiser; case skipped", seed, level)
                continue
            volume = disc_volume(series, spine, level)
            mask = lesion_mask_in_volume(volume, study.lesions, LESIONS[lesion])
            cases.append(LesionCase(lesion, int(seed), volume, [box_of(m) for m in mask]))
    return cases


#: box variants of :func:`~spinecore.saliency.hotspot_boxes`: the hottest connected region, or the whole mask
BOX_VARIANTS = {"hottest_region": True, "whole_mask": False}


def evaluate_lesion_hotspots(grader: Grader, cases: list[LesionCase],
                             augmentations: int = DEFAULT_AUGMENTATIONS) -> dict:
    """Volume IoU of percentile boxes per method, box variant, lesion and percentile, with the
    whole-volume baseline; the hotspot explains the task's abnormal class (index 1)."""
    tasks = grader.scheme.task_names
    results: dict = {}
    for case in cases:
        task = LESION_CASES[case.lesion][1]
        baseline = volume_iou(whole_volume_boxes(case.volume.array.shape, case.volume.present), case.reference)
        entry = results.setdefault(case.lesion, {"cases": 0, "baseline_iou": [], "methods": {}})
        entry["cases"] += 1
        entry["baseline_iou"].append(baseline)
        for method in Method:
            heatmap = hotspots(grader.net, case.volume.array, {tasks.index(task): 1}, method, augmentations,
                               seed=case.seed)[tasks.index(task)]
            per_variant = entry["methods"].setdefault(method.value, {v: {str(p): [] for p in PERCENTILES}
                                                                     for v in BOX_VARIANTS})
            for variant, hottest in BOX_VARIANTS.items():
                for p in PERCENTILES:
                    boxes = hotspot_boxes(heatmap, p, hottest_region=hottest)
                    per_variant[variant][str(p)].append(volume_iou(boxes, case.reference))
        log.info("%s seed %d done", case.lesion, case.seed)
    summary = {}
    for lesion, entry in results.items():
        base = float(np.mean(entry["baseline_iou"]))
        summary[lesion] = {"cases": entry["cases"], "task": LESION_CASES[lesion][1], "baseline_iou": round(base, 4),
                           "methods": {m: {variant: {p: {"iou": round(float(np.mean(v)), 4),
                                                         "times_baseline": round(float(np.mean(v)) / base, 2)
                                                         if base else None}
                                                     for p, v in per.items()}
                                           for variant, per in variants.items()}
                                       for m, variants in entry["methods"].items()}}
    return {"model": grader.model_id, "augmentations": augmentations, "lesions": summary}


@dataclass(frozen=True)
class RealDiscHotspot:
    """One disc of the real-disc sheet: the shown slice of its volume and of its hotspot
    (``(112, 224)``, 0–1), a title, and the share of the hotspot in the volume's upper half."""

    image: np.ndarray
    heatmap: np.ndarray
    title: str
    record: dict


def _sheet_choice(grader: Grader, data, count: int, prefer: str) -> list[tuple[int, str]]:
    """``(disc index, task)`` of up to ``count`` discs graded with an endplate defect or a Modic
    change: one disc per patient first; scans whose path contains ``prefer`` first, then manifest order."""
    names = grader.scheme.task_names
    candidates = []
    for i in sorted(range(len(data)), key=lambda i: prefer not in data.scans[i]) if prefer else range(len(data)):
        labels = dict(zip(names, data.labels[i]))
        task = next((t for t in ("endplate_upper", "endplate_lower") if labels.get(t) == 1), None)
        if task is None and labels.get("modic", 0) > 0:
            task = "modic"
        if task is not None:
            candidates.append((i, task))
    first_per_patient, later, seen = [], [], set()
    for i, task in candidates:
        (later if data.patients[i] in seen else first_per_patient).append((i, task))
        seen.add(data.patients[i])
    return (first_per_patient + later)[:count]


def real_disc_hotspots(grader: Grader, data, count: int = 24, method: Method = DEFAULT_METHOD,
                       augmentations: int = DEFAULT_AUGMENTATIONS, prefer: str = "") -> list[RealDiscHotspot]:
    """Hotspots on real discs graded with an endplate defect or a Modic change (see
    :func:`_sheet_choice`), for the graded finding's task (upper endplate, else lower endplate,
    else Modic), on the middle slice."""
    names = grader.scheme.task_names
    out = []
    for i, task in _sheet_choice(grader, data, count, prefer):
        volume = data.float_volumes([i])[0]
        n = names.index(task)
        cls = int(data.labels[i, n])
        heatmap = hotspots(grader.net, volume, {n: cls}, method, augmentations, seed=i)[n]
        upper_share = float(heatmap[:, :56].sum() / max(heatmap.sum(), 1e-9))
        k = 4 if volume[4].any() else int(np.argmax(volume.reshape(9, -1).max(1)))
        scan = data.scans[i].rsplit("/", 1)[-1].replace(".nii.gz", "")
        out.append(RealDiscHotspot(volume[k], heatmap[k],
                                   f"{scan} {data.levels[i]}: {task}={grader.scheme.task(task).values[cls]}",
                                   {"scan": scan, "level": data.levels[i], "task": task,
                                    "upper_share": round(upper_share, 3)}))
    return out
