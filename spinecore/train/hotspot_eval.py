"""Evaluating evidence hotspots: percentile boxes against the true lesion boxes of phantoms
(thesis 5.3.2), and a contact sheet of hotspots on real discs for reading by eye."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spinecore.extract import StructureVolume, disc_volume
from spinecore.grade.grader import Grader
from spinecore.localise import Localiser
from spinecore.saliency import DEFAULT_METHOD, Method, hotspot_boxes, hotspots, volume_iou, whole_volume_boxes
from spinecore.saliency.boxes import box_of

log = logging.getLogger(__name__)

#: lesion painted in the phantom → (grade overrides on the target disc, the task whose hotspot must find it)
LESION_CASES = {
    "endplate_defect": ({"endplate_upper": 2}, "endplate_upper"),
    "marrow": ({"marrow_lower": 2}, "marrow_lower"),
    "stenosis": ({"stenosis": 3}, "stenosis"),
    "herniation": ({"herniation": 2}, "herniation"),
}
NO_LESIONS = {"endplate_upper": 0, "endplate_lower": 0, "marrow_upper": 0, "marrow_lower": 0, "stenosis": 0,
              "herniation": 0}
TARGET_LEVELS = ("L2-L3", "L3-L4", "L4-L5")
PERCENTILES = (90.0, 95.0, 97.0, 99.0)
#: the bundled genodisc grader trained on phantoms with independent findings (in ``models_dir()``)
PHANTOM_GRADER = "phantom_grader.pt"


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
    from spinecore.phantom.anatomy import DISCS
    from spinecore.phantom.render import LESIONS

    localiser = localiser or Localiser()
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


def evaluate_lesion_hotspots(grader: Grader, cases: list[LesionCase], augmentations: int = 150) -> dict:
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


def hotspot_table(metrics: dict) -> str:
    """One Markdown table per box variant: mean volume IoU (× baseline) per lesion, method and
    percentile, and the lowest × over the lesions (the done-when asks ≥ 5 for every lesion)."""
    lesions = metrics["lesions"]
    columns = [(m.value, str(p)) for m in Method for p in PERCENTILES]
    lines = [f"model `{metrics['model']}`, {metrics['augmentations']} augmentations per hotspot; mean volume IoU of "
             "the percentile boxes with the true lesion boxes (× the whole-volume baseline)"]
    for variant in BOX_VARIANTS:
        lines += ["", f"**{variant.replace('_', ' ')}**", "",
                  "| lesion (task) | cases | baseline IoU | " + " | ".join(f"{m} p{p[:2]}" for m, p in columns) + " |",
                  "|---|---|---|" + "---|" * len(columns)]
        for lesion, s in lesions.items():
            cells = [s["methods"][m][variant][p] for m, p in columns]
            lines.append(f"| {lesion} ({s['task']}) | {s['cases']} | {s['baseline_iou']:.3f} | "
                         + " | ".join(f"{c['iou']:.3f} (×{c['times_baseline']})" for c in cells) + " |")
        lowest = [min(s["methods"][m][variant][p]["times_baseline"] or 0.0 for s in lesions.values())
                  for m, p in columns]
        lines.append("| lowest × | | | " + " | ".join(f"×{x}" for x in lowest) + " |")
    return "\n".join(lines) + "\n"


def real_disc_sheet(grader: Grader, data, path, count: int = 24, method: Method = DEFAULT_METHOD,
                    augmentations: int = 150, prefer: str = "") -> list[dict]:
    """A contact sheet of hotspots on real discs graded with an endplate defect or a Modic change
    (one disc per patient first; scans whose path contains ``prefer`` first, then manifest order):
    the middle slice with the hotspot of the graded finding's task (upper endplate, else lower
    endplate, else Modic). Returns, per disc, the share of the hotspot in the upper half of the
    volume (the upper endplate's side)."""
    from spinecore.report.localisation import pyplot

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
    chosen = (first_per_patient + later)[:count]
    plt = pyplot()
    columns = 6
    rows = -(-len(chosen) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.0 * rows), squeeze=False)
    records = []
    for ax, (i, task) in zip(axes.ravel(), chosen):
        volume = data.float_volumes([i])[0]
        n = names.index(task)
        cls = int(data.labels[i, n])
        heatmap = hotspots(grader.net, volume, {n: cls}, method, augmentations, seed=i)[n]
        upper_share = float(heatmap[:, :56].sum() / max(heatmap.sum(), 1e-9))
        k = 4 if volume[4].any() else int(np.argmax(volume.reshape(9, -1).max(1)))
        ax.imshow(volume[k], cmap="gray", vmin=0, vmax=1)
        ax.imshow(heatmap[k], cmap="jet", vmin=0, vmax=1, alpha=0.45 * (heatmap[k] > 0.05))
        scan = data.scans[i].rsplit("/", 1)[-1].replace(".nii.gz", "")
        ax.set_title(f"{scan} {data.levels[i]}: {task}={grader.scheme.task(task).values[cls]}", fontsize=7)
        records.append({"scan": scan, "level": data.levels[i], "task": task, "upper_share": round(upper_share, 3)})
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(f"evidence hotspots ({method.value}) on validation discs with endplate defects or Modic changes",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return records
