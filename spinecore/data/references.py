"""Reference scans for the localiser, read from the shared real-data pack and from phantoms.

Each :class:`ReferenceScan` holds a canonical sagittal :class:`~spinecore.io.Series` and,
at the scan's own voxels ``(slices, rows, columns)``, one boolean mask per labelled
vertebral body and per labelled disc, plus where each kind of label is unknown. Levels are
derived from the masks as the data pack's README defines them (counted from the lowest disc
or vertebra, assuming five lumbar vertebrae).
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from skimage.morphology import convex_hull_image

from spinecore.data.pack import require_pack
from spinecore.data.splits import VALIDATION
from spinecore.io import load_study
from spinecore.io.series import Series
from spinecore.levels import DISCS, VERTEBRAE
from spinecore.localise.grid import SliceGrid, normalise_slices, to_grid
from spinecore.localise.localiser import disc_plane
from spinecore.localise.network import CHANNELS

log = logging.getLogger(__name__)

#: VerSe-style codes of the lumbar_vb vertebral-body masks.
VB_CODES = {17: "T10", 18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 26: "S1"}
#: Target value of voxels whose label is unknown (left out of the loss).
IGNORE = 255
#: lumbar_vb volumes that show one subject (never split them).
SAME_SUBJECT = {("vb1", "03"): "02", ("vb1", "07"): "06", ("vb1", "08"): "06", ("vb1", "11"): "10"}


@dataclass
class ReferenceScan:
    """A scan with reference masks at its own voxels.

    ``truth[c]`` / ``unknown[c]`` are the training target of channel ``c`` (see
    :data:`~spinecore.localise.network.CHANNELS`) and where it is not known; ``bodies`` and
    ``discs`` hold the masks of the vertebrae and discs whose level is known (for evaluation).
    """

    name: str
    dataset: str
    patient: str
    series: Series
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    unknown: dict[str, np.ndarray] = field(default_factory=dict)
    bodies: dict[str, np.ndarray] = field(default_factory=dict)
    discs: dict[str, np.ndarray] = field(default_factory=dict)


def _read_mask(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _series(path: Path) -> Series:
    return load_study(path).series[0]


def _rows_outside(shape, first_row: int | None, last_row: int | None) -> np.ndarray:
    outside = np.zeros(shape, dtype=bool)
    if first_row is not None:
        outside[:, :max(first_row, 0)] = True
    if last_row is not None:
        outside[:, last_row + 1:] = True
    return outside


def _anterior_of_canal(vertebra: np.ndarray, canal: np.ndarray) -> np.ndarray:
    """Vertebra voxels in front of the spinal canal's anterior wall (drops posterior elements)."""
    body = np.zeros_like(vertebra)
    rows = np.arange(vertebra.shape[1])
    union = canal.any(axis=0)
    for k in range(vertebra.shape[0]):
        source = canal[k] if canal[k].any() else union
        has = source.any(axis=1)
        if not has.any():
            continue
        wall = np.interp(rows, rows[has], np.argmax(source[has], axis=1))
        body[k] = vertebra[k] & (np.arange(vertebra.shape[2])[None, :] < wall[:, None])
    return body


def _below_disc(disc: np.ndarray, spacing) -> np.ndarray:
    """Voxels below the plane of ``disc``."""
    scale = np.asarray(spacing)
    points = np.argwhere(disc)[:, 1:] * scale
    centre, normal = disc_plane(points)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in disc.shape[1:]], indexing="ij"), axis=-1) * scale
    below = ((grid - centre) @ normal) > ((points - centre) @ normal).max()
    return np.broadcast_to(below, disc.shape).copy()


def read_spider_slab(root: Path, pid: str) -> ReferenceScan:
    """A SPIDER T2-SPACE slab. Its masks leave the sacrum unlabelled, so nothing below the
    lowest disc is known; levels come from the disc instances (1 = L5-S1) where they exist."""
    name = f"{pid}_t2_SPACE"
    series = _series(root / "images" / f"{name}.nii.gz")
    mask = _read_mask(root / "masks" / f"{name}.nii.gz")
    instances_path = root / "disc_instances" / f"{name}.nii.gz"
    instances = _read_mask(instances_path) if instances_path.exists() else None
    body = _anterior_of_canal(mask == 1, mask == 3)
    components, count = ndimage.label(body)
    sizes = ndimage.sum_labels(body, components, range(1, count + 1))
    keep = [i + 1 for i, s in enumerate(sizes) if s >= 0.05 * sizes.max()]
    rows = {c: ndimage.center_of_mass(components == c)[1] for c in keep}
    keep.sort(key=rows.get)
    top_row = int(np.argwhere(components == keep[0])[:, 1].min())
    above_top = _rows_outside(mask.shape, top_row, None)
    discs, disc_count = (instances, int(instances.max())) if instances is not None else ndimage.label(mask == 2)
    disc_rows = {n: ndimage.center_of_mass(discs == n)[1] for n in range(1, disc_count + 1)}
    lowest_disc = discs == max(disc_rows, key=disc_rows.get)
    sacrum_region = _below_disc(lowest_disc, series.spacing[1:])
    scan = ReferenceScan(name, "spider_space", pid, series)
    scan.truth = {"body": np.isin(components, keep), "disc": mask == 2, "l5s1": lowest_disc}
    unknown = above_top | sacrum_region | (body & ~np.isin(components, keep))
    scan.unknown = {"body": unknown, "disc": above_top | sacrum_region, "l5s1": above_top.copy()}
    if instances is None:
        scan.unknown["l5s1"][:] = True
        return scan
    for n in disc_rows:
        if n <= len(DISCS):
            scan.discs[DISCS[-n]] = instances == n
    for c in keep:
        below = sum(r > rows[c] for r in disc_rows.values())
        if below < len(VERTEBRAE):
            scan.bodies[VERTEBRAE[-1 - below]] = components == c
    return scan


def read_lumbar_vb(root: Path, subset: str, volume_id: str) -> ReferenceScan:
    """A fastcleverseg volume: ``ivd`` has the five lumbar discs, ``vb1``/``vb2`` vertebral
    bodies (vb2 leaves the sacrum unlabelled; neither labels vertebrae above its top one), whose
    discs are inferred from neighbouring bodies (:func:`_discs_between`)."""
    series = _series(root / subset / "images" / f"{volume_id}.nii.gz")
    mask = _read_mask(root / subset / "masks" / f"{volume_id}.nii.gz")
    patient = f"{subset}-{SAME_SUBJECT.get((subset, volume_id), volume_id)}"
    scan = ReferenceScan(f"{subset}_{volume_id}", subset, patient, series)
    labelled_rows = np.argwhere(mask > 0)[:, 1]
    first, last = int(labelled_rows.min()), int(labelled_rows.max())
    everywhere = np.ones(mask.shape, dtype=bool)
    if subset == "ivd":
        for code in np.unique(mask[mask > 0]):
            scan.discs[DISCS[-int(code)]] = mask == code
        scan.truth = {"body": ~everywhere, "disc": mask > 0, "l5s1": mask == 1}
        outside = _rows_outside(mask.shape, first, last)
        scan.unknown = {"body": everywhere, "disc": outside, "l5s1": outside.copy()}
        return scan
    for code in np.unique(mask[mask > 0]):
        scan.bodies[VB_CODES[int(code)]] = mask == code
    outside = _rows_outside(mask.shape, first, last if "S1" not in scan.bodies else None)
    discs = _discs_between(scan.bodies)
    disc = np.any(list(discs.values()), axis=0) if discs else ~everywhere
    rim = ndimage.binary_dilation(disc, np.array([[[0] * 3] * 3, [[0, 1, 0], [1, 1, 1], [0, 1, 0]], [[0] * 3] * 3],
                                                 dtype=bool), iterations=3) & ~disc & ~(mask > 0)
    scan.truth = {"body": mask > 0, "disc": disc, "l5s1": discs.get("L5-S1", ~everywhere)}
    scan.unknown = {"body": outside, "disc": outside | rim, "l5s1": outside | rim}
    return scan


def _discs_between(bodies: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Disc masks inferred from two labelled neighbouring bodies: per slice, the part of their
    joint convex hull that is neither body (opened, largest piece). Used where only bodies are
    labelled; the rim around each inferred disc is left unknown for training."""
    discs = {}
    for upper, lower in zip(VERTEBRAE[:-1], VERTEBRAE[1:]):
        if upper not in bodies or lower not in bodies:
            continue
        disc = np.zeros_like(bodies[upper])
        for k in np.flatnonzero(bodies[upper].any(axis=(1, 2)) & bodies[lower].any(axis=(1, 2))):
            pair = bodies[upper][k] | bodies[lower][k]
            rows, cols = np.nonzero(pair)
            window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
            gap = convex_hull_image(pair[window]) & ~pair[window]
            gap = ndimage.binary_opening(gap, iterations=2)
            pieces, count = ndimage.label(gap)
            if count:
                largest = 1 + int(np.argmax(ndimage.sum_labels(gap, pieces, range(1, count + 1))))
                disc[k][window] = pieces == largest
        if disc.any():
            discs[f"{upper}-{lower}"] = disc
    return discs


#: Random stream (with the seed) of the narrowing grades of :func:`phantom_scans` ``narrowed=True``.
NARROWING_STREAM = 17


def random_narrowing(seed: int) -> dict[str, dict[str, int]]:
    """Per-disc grade overrides: every disc narrowed by a grade drawn uniformly from 0–3 (none to
    severe), so thin discs are as common as normal ones (the phantoms' own draw makes severe
    narrowing rare: 1 disc in 240 among seeds 1000–1029)."""
    rng = np.random.default_rng([seed, NARROWING_STREAM])
    return {level: {"narrowing": int(rng.integers(0, 4))} for level in DISCS}


def phantom_scans(seeds, contrasts=("sag_t2", "sag_t1"), narrowed: bool = False) -> list[ReferenceScan]:
    """Phantom sagittal series with their exact label masks (every channel known); ``narrowed``:
    with :func:`random_narrowing` grades."""
    from spinecore.phantom import PhantomSpec, make_phantom
    from spinecore.phantom.render import LABELS

    scans = []
    for seed in seeds:
        grades = random_narrowing(int(seed)) if narrowed else {}
        study = make_phantom(PhantomSpec(seed=int(seed), axial=False, grades=grades))
        labels = study.labels
        for name in contrasts:
            series = study.get(name).to_series(f"phantom-{seed}/{name}")
            scan = ReferenceScan(f"phantom_{seed}_{name}", "phantom", f"phantom-{seed}", series)
            scan.bodies = {level: labels == LABELS[level] for level in VERTEBRAE if (labels == LABELS[level]).any()}
            scan.discs = {level: labels == LABELS[level] for level in DISCS if (labels == LABELS[level]).any()}
            scan.truth = {"body": (labels >= LABELS[VERTEBRAE[0]]) & (labels <= LABELS[VERTEBRAE[-1]]),
                          "disc": (labels >= LABELS[DISCS[0]]) & (labels <= LABELS[DISCS[-1]]),
                          "l5s1": labels == LABELS["L5-S1"]}
            scan.unknown = {c: np.zeros(series.shape, dtype=bool) for c in CHANNELS}
            scans.append(scan)
    return scans


def real_scans(data_root: Path, split: str) -> list[ReferenceScan]:
    """All labelled real scans of ``split`` (``"train"`` or ``"validation"``)."""
    require_pack(data_root, "spider_space/", "lumbar_vb/")
    scans = []
    slabs = data_root / "spider_space"
    with open(slabs / "slabs.csv", newline="") as handle:
        pids = [row["patient"] for row in csv.DictReader(handle)]
    for pid in pids:
        if (pid in VALIDATION["spider_space"]) == (split == "validation"):
            scans.append(read_spider_slab(slabs, pid))
    vb_root = data_root / "lumbar_vb"
    for subset in ("vb1", "vb2", "ivd"):
        for image in sorted((vb_root / subset / "images").glob("*.nii.gz")):
            volume_id = image.name.split(".")[0]
            if (volume_id in VALIDATION[subset]) == (split == "validation"):
                scans.append(read_lumbar_vb(vb_root, subset, volume_id))
    return scans


@dataclass
class TrainingScan:
    """A reference scan on the working grid: ``image`` ``(slices, rows, cols)`` in [0, 1] and
    ``target`` ``(slices, channels, rows, cols)`` uint8 (0/1, :data:`IGNORE` where unknown)."""

    name: str
    dataset: str
    image: np.ndarray
    target: np.ndarray


def to_training(scan: ReferenceScan) -> TrainingScan:
    grid = SliceGrid.for_spacing(scan.series.shape[1:], scan.series.spacing[1:])
    image = to_grid(normalise_slices(scan.series.array), grid)
    target = np.stack([np.where(scan.unknown[c], IGNORE, scan.truth[c]).astype(np.uint8) for c in CHANNELS], axis=1)
    target = np.stack([to_grid(target[:, c], grid, labels=True) for c in range(len(CHANNELS))], axis=1)
    return TrainingScan(scan.name, scan.dataset, image, target)
