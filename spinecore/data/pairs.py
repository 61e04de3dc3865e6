"""Structure volumes of several scans per subject, and the same-subject / different-subject pairs
that train and test the Siamese network (thesis 7.3.2, Fig. 7.3).

A pair is two vertebral bodies (or two discs) of the same level: positive when both come from one
subject in two different scans, negative when they come from two subjects. The pack has no
longitudinal scans, so a subject's scans are what it has: SPIDER's mid-sagittal T1 and T2 and its
T2-SPACE image (one session, three sequences), the second hospital's (Sudirman) mid-sagittal T1 and
T2, and phantom baseline / follow-up studies (true longitudinal: bodies unchanged, discs degenerated).
Negative pairs join two subjects of one source (SPIDER, Sudirman or phantoms): a phantom against a
real scan, or one hospital against another, is told apart by the site alone and teaches nothing.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from spinecore.errors import SpineCoreError
from spinecore.extract import disc_volumes, vertebra_volumes
from spinecore.data.sudirman import FOLDER as SUDIRMAN_FOLDER
from spinecore.data.sudirman import PATIENT_PREFIX as SUDIRMAN_PREFIX
from spinecore.data.sudirman import sudirman_images
from spinecore.grade.siamese import BODY_LEVELS, DISC_LEVELS, Kind
from spinecore.io.series import Series
from spinecore.localise import Localiser, Spine, body_size, disc_depth
from spinecore.localise.spine import seen_whole

log = logging.getLogger(__name__)
#: The mid-sagittal images: T1, T2 and for some patients a T2-SPACE slice, one session each.
SPIDER_IMAGES = ("spider_midsag/images",)
#: The phantom patients' follow-up visit (years after the baseline) and their sagittal slices.
PHANTOM_FOLLOW_UP_YEARS = 5.0
PHANTOM_SLICES = 9
#: Phantom patients are ``phantom<seed>``.
PHANTOM_PREFIX = "phantom"
#: Where each subject comes from (:func:`sources_of`); negative pairs never cross two sources.
SPIDER_SOURCE, SUDIRMAN_SOURCE, PHANTOM_SOURCE = "spider", "sudirman", "phantom"
SOURCE_PREFIXES = {PHANTOM_SOURCE: PHANTOM_PREFIX, SUDIRMAN_SOURCE: SUDIRMAN_PREFIX}
#: Fewest subjects of one source :func:`hold_out_subjects` holds out (two: one different-subject pair).
MIN_HELD_OUT = 2


@dataclass
class StructureSet:
    """Volumes of one :class:`Kind`, stored as ``uint8`` (value × 255) ``(N, 9, rows, cols)``, with
    each one's ``subjects``, ``scans``, ``sequences``, ``levels``, ``whole`` (the localiser saw it
    whole, :func:`~spinecore.localise.spine.seen_whole`; default all) and ``sizes`` ``(N, 2)``: the
    height and depth in mm, of a body on its mid slice (:func:`~spinecore.localise.body_size`), of a
    disc on its own slice (its middle height, NaN where a neighbour is inferred, and
    :func:`~spinecore.localise.disc_depth`); NaN where unknown (the default). A sequence names how a scan was
    taken (``t1``, ``t2``, ``space``; ``baseline``, ``follow-up``): the two scans of a positive pair
    always differ in it, so every pair, negative or positive, joins two different sequences and the
    network cannot tell them apart by contrast alone."""

    kind: Kind
    volumes: np.ndarray
    subjects: np.ndarray
    scans: np.ndarray
    sequences: np.ndarray
    levels: np.ndarray
    whole: np.ndarray | None = None
    sizes: np.ndarray | None = None

    def __post_init__(self):
        if self.whole is None:
            self.whole = np.ones(len(self.levels), bool)
        if self.sizes is None:
            self.sizes = np.full((len(self.levels), 2), np.nan, np.float32)

    def __len__(self) -> int:
        return len(self.levels)

    def float_volumes(self, index) -> np.ndarray:
        return self.volumes[index].astype(np.float32) / 255.0

    def subset(self, keep: np.ndarray) -> StructureSet:
        """The volumes where the boolean ``keep`` holds."""
        return StructureSet(self.kind, self.volumes[keep], self.subjects[keep], self.scans[keep],
                            self.sequences[keep], self.levels[keep], self.whole[keep], self.sizes[keep])

    def sources(self) -> np.ndarray:
        """Each volume's source (:func:`sources_of`)."""
        return sources_of(self.subjects)

    def level_index(self) -> np.ndarray:
        """Each volume's class for the level head (:data:`BODY_LEVELS` / :data:`DISC_LEVELS`)."""
        names = BODY_LEVELS if self.kind is Kind.BODY else DISC_LEVELS
        return np.array([names.index(level) for level in self.levels], np.int64)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, kind=self.kind.value, volumes=self.volumes, subjects=self.subjects, scans=self.scans,
                            sequences=self.sequences, levels=self.levels, whole=self.whole, sizes=self.sizes)

    @classmethod
    def load(cls, path: Path) -> StructureSet:
        with np.load(path) as f:
            return cls(Kind(str(f["kind"])), f["volumes"], f["subjects"], f["scans"], f["sequences"], f["levels"],
                       f["whole"], f["sizes"])


def structures_of(scans: list[tuple[str, str, str, Series]], localiser: Localiser) -> dict[Kind, StructureSet]:
    """Localise each ``(subject, scan name, sequence, series)`` and cut its bodies (T12..S1) and discs
    (T12-L1..L5-S1), noting which it saw whole and each one's size; a scan where no spine is found is
    skipped with a log line."""
    records: dict[Kind, list[tuple]] = defaultdict(list)
    for n, (subject, name, sequence, series) in enumerate(scans, start=1):
        try:
            spine = localiser(series)
        except SpineCoreError as exc:
            log.warning("%s", exc)
            continue
        whole = seen_whole(spine)
        for kind, volumes, wanted in ((Kind.BODY, vertebra_volumes, BODY_LEVELS), (Kind.DISC, disc_volumes, DISC_LEVELS)):
            for volume in volumes(series, spine):
                if volume.level in wanted:
                    size = (body_size(spine.vertebra(volume.level).mid.corners_mm) if kind is Kind.BODY
                            else _disc_size(spine, volume.level))
                    records[kind].append((np.round(volume.array * 255).astype(np.uint8), subject, name, sequence,
                                          volume.level, volume.level in whole, size))
        if n % 25 == 0 or n == len(scans):
            log.info("cut structures from %d/%d scans", n, len(scans))
    return {kind: StructureSet(kind, np.stack([r[0] for r in rows]),
                               *(np.array([r[i] for r in rows]) for i in range(1, 6)),
                               np.array([r[6] for r in rows], np.float32))
            for kind, rows in records.items()}


def _disc_size(spine: Spine, level: str) -> tuple[float, float]:
    """``(height, depth)`` in mm of disc ``level`` of ``spine`` on its own slice (height NaN where it
    was not measured: a neighbour inferred)."""
    disc = next(d for d in spine.discs if d.level == level)
    upper, lower = (spine.vertebra(v).on_slice(disc.slice).corners_mm for v in level.split("-"))
    height = disc.measurements.middle_height_mm if disc.measurements else np.nan
    return height, disc_depth(upper, lower)


def sources_of(subjects: np.ndarray) -> np.ndarray:
    """Each subject id's source (:data:`SOURCE_PREFIXES`, :data:`SPIDER_SOURCE` for the rest)."""
    found = np.full(len(subjects), SPIDER_SOURCE, dtype=object)
    for source, prefix in SOURCE_PREFIXES.items():
        found[np.char.startswith(np.asarray(subjects, str), prefix)] = source
    return found.astype(str)


def sudirman_files(data_root: Path, part: str) -> list[tuple[str, Path, str]]:
    """The Sudirman mid-sagittal T1 and T2 images of our ``part`` patients as ``(sudirman-<patient>,
    path, sequence)``; none when the pack has no Sudirman folder."""
    if not (data_root / SUDIRMAN_FOLDER).is_dir():
        return []
    found = []
    for path in sudirman_images(data_root, part):
        patient, _, sequence = path.name.removesuffix(".nii.gz").partition("_")
        found.append((SUDIRMAN_PREFIX + patient, path, sequence.lower()))
    return found


def spider_files(data_root: Path, patients: set[str]) -> list[tuple[str, Path, str]]:
    """Every SPIDER image (mid-sagittal T1/T2, T2-SPACE) of ``patients``, as ``(patient, path,
    sequence)``; the file name is ``<patient>_<sequence>.nii.gz``."""
    found = []
    for folder in SPIDER_IMAGES:
        for path in sorted((data_root / folder).glob("*.nii.gz")):
            patient, _, sequence = path.name.removesuffix(".nii.gz").partition("_")
            if patient in patients:
                found.append((patient, path, sequence.lower()))
    return found


def sample_pairs(data: StructureSet, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` pairs ``(first index, second index, same subject)``, half positive (same subject and
    level, another sequence) and half negative (same level, another subject of the same source, another
    sequence)."""
    by_level_subject: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (level, subject) in enumerate(zip(data.levels, data.subjects)):
        by_level_subject[level, subject].append(i)
    positives = [idx for idx in by_level_subject.values() if len(set(data.sequences[idx])) > 1]
    if not positives:
        raise SpineCoreError(None, "no subject has two scans of one level: no positive pair to sample")
    sources = data.sources()
    first, second, same = [], [], []
    for n in range(count):
        if n % 2 == 0:
            group = positives[rng.integers(len(positives))]
            a = group[rng.integers(len(group))]
            others = [i for i in group if data.sequences[i] != data.sequences[a]]
            b = others[rng.integers(len(others))]
        else:
            a = int(rng.integers(len(data)))
            others = np.flatnonzero((data.levels == data.levels[a]) & (data.subjects != data.subjects[a])
                                    & (data.sequences != data.sequences[a]) & (sources == sources[a]))
            if not len(others):
                continue
            b = int(others[rng.integers(len(others))])
        first.append(a)
        second.append(b)
        same.append(n % 2 == 0)
    return np.array(first), np.array(second), np.array(same)


class PositiveBatches:
    """Batches of the head stage (:func:`~spinecore.train.siamese.train_heads`): :meth:`sample` draws one
    level of one source, then distinct subjects of it, each with one positive pair (two of its volumes
    from different sequences). Every other subject's volume in the batch is a negative of a volume: same
    level, same source, another subject (and, as in :func:`sample_pairs`, another sequence or not)."""

    def __init__(self, data: StructureSet):
        by_group: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, (level, source, subject) in enumerate(zip(data.levels.tolist(), data.sources().tolist(),
                                                         data.subjects.tolist())):
            by_group[level, source][subject].append(i)
        self.sequences = data.sequences
        groups = ([np.array(v) for v in subjects.values() if len(set(data.sequences[v])) > 1]
                  for subjects in by_group.values())
        self.groups = [group for group in groups if len(group) > 1]
        if not self.groups:
            raise SpineCoreError(None, "no level of one source has two subjects with two scans each: no batch to draw")

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(first, second)`` of up to ``count`` positive pairs, one per subject, of one level and source."""
        group = self.groups[rng.integers(len(self.groups))]
        first, second = [], []
        for member in rng.choice(len(group), min(count, len(group)), replace=False):
            volumes = group[member]
            a = volumes[rng.integers(len(volumes))]
            others = volumes[self.sequences[volumes] != self.sequences[a]]
            first.append(a)
            second.append(others[rng.integers(len(others))])
        return np.array(first), np.array(second)


class Pairs(NamedTuple):
    """Pairs of volumes of a :class:`StructureSet`: indices ``first < second``, and whether each pair is
    one subject."""

    first: np.ndarray
    second: np.ndarray
    same: np.ndarray


def all_pairs(data: StructureSet) -> Pairs:
    """Every pair of one level and one source from two different sequences."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(data.levels.tolist(), data.sources().tolist())):
        groups[key].append(i)
    firsts, seconds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for members in groups.values():
        a, b = np.triu_indices(len(members), k=1)
        members = np.array(members)
        a, b = members[a], members[b]
        keep = data.sequences[a] != data.sequences[b]
        firsts.append(a[keep])
        seconds.append(b[keep])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    return Pairs(first, second, data.subjects[first] == data.subjects[second])


def hold_out_subjects(sets: dict[Kind, StructureSet], share: float,
                      rng: np.random.Generator) -> tuple[dict[Kind, StructureSet], dict[Kind, StructureSet]]:
    """``sets`` split by subject into (kept, held out): about ``share`` of each source's subjects
    (at least :data:`MIN_HELD_OUT` of a source with twice that many, none of a smaller one) are held
    out, the same ones for every kind, so that a threshold fitted on them meets subjects the network
    never saw."""
    subjects = np.unique(np.concatenate([data.subjects for data in sets.values()]).astype(str))
    held_out: list[str] = []
    for source in np.unique(sources_of(subjects)):
        members = subjects[sources_of(subjects) == source]
        if len(members) >= 2 * MIN_HELD_OUT:
            count = min(max(MIN_HELD_OUT, round(share * len(members))), len(members) - MIN_HELD_OUT)
            held_out += rng.choice(members, count, replace=False).tolist()
    if not held_out:
        raise SpineCoreError(None, f"too few subjects to hold {share:.0%} out for the threshold: a source needs "
                                   f"{2 * MIN_HELD_OUT} subjects")
    out = {kind: np.isin(data.subjects.astype(str), held_out) for kind, data in sets.items()}
    return ({kind: data.subset(~out[kind]) for kind, data in sets.items()},
            {kind: data.subset(out[kind]) for kind, data in sets.items()})


def phantom_scans(seeds, follow_up_years: float = PHANTOM_FOLLOW_UP_YEARS,
                  n_slices: int = PHANTOM_SLICES) -> list[tuple[str, str, str, Series]]:
    """A baseline and a follow-up sagittal T2 of each phantom patient (``seeds``): the same bodies,
    degenerated discs, a new pose and noise."""
    from spinecore.phantom import PhantomSpec, make_phantom

    found = []
    for seed in seeds:
        for visit, years in (("baseline", 0.0), ("follow-up", follow_up_years)):
            study = make_phantom(PhantomSpec(seed=seed, follow_up_years=years, n_slices=n_slices, t1=False, axial=False))
            name = f"{PHANTOM_PREFIX}{seed}_{visit}"
            found.append((f"{PHANTOM_PREFIX}{seed}", name, visit, study.get("sag_t2").to_series(name)))
    return found
