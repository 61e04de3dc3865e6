"""Grading manifests (CSV) → disc volumes with labels.

Manifest format (UTF-8 CSV, one row per graded disc of one scan)::

    patient,scan,level,pfirrmann,modic,...
    P001,scans/P001_t2.nii.gz,L4-L5,3,0,...

``patient`` groups rows for patient-level splits and bootstrap intervals; ``scan`` is any input
``spinecore`` reads (NIfTI/NRRD/MHA file, DICOM folder or zip), relative to the manifest's folder
or absolute; ``level`` is a disc name (``T12-L1`` … ``L5-S1``); one column per task of the scheme
holds the grade in the scheme's own values, empty when not graded. Optional columns ``scan_t1``
(the same patient's sagittal T1) and ``scan_axial`` (axial series: a file, or a DICOM folder or zip
whose axial series are all used) add the other streams of multi-stream grading; an empty cell is a
missing stream. Other columns are ignored.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spinecore.data.cache import cached, path_digest, weights_digest
from spinecore.errors import SpineCoreError
from spinecore.extract import axial_disc_volumes, disc_volumes, t1_disc_volumes
from spinecore.grade.fusion import STREAM_SHAPES
from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import GradingScheme
from spinecore.io import load_study
from spinecore.io.series import Plane, Weighting
from spinecore.levels import DISCS
from spinecore.localise import Localiser

log = logging.getLogger(__name__)


#: The optional manifest column of each non-T2 stream (:data:`spinecore.grade.fusion.STREAMS`).
STREAM_COLUMNS = {"t1": "scan_t1", "axial": "scan_axial"}
#: The code a cached disc set depends on, besides :data:`spinecore.data.cache.EXTRACTION_CODE`.
DISC_SET_CODE = ("data/manifests.py",)
DISC_SET_PREFIX = "discs-"


@dataclass(frozen=True)
class ManifestRow:
    patient: str
    scan: Path
    level: str
    labels: tuple[int, ...]  # class indices per task, MISSING where not graded
    scan_t1: Path | None = None
    scan_axial: Path | None = None

    @property
    def others(self) -> dict[str, Path]:
        """The scans of the other streams this row has: ``{"t1": path, "axial": path}``."""
        return {s: getattr(self, c) for s, c in STREAM_COLUMNS.items() if getattr(self, c) is not None}


def resolve(manifest: Path, text: str | None) -> Path | None:
    """A manifest cell's scan path: relative to the manifest's folder unless absolute; ``None`` when empty."""
    if not (text or "").strip():
        return None
    path = Path(text.strip())
    return path if path.is_absolute() else manifest.parent / path


def read_manifest(path: Path, scheme: GradingScheme) -> list[ManifestRow]:
    path = Path(path)
    if not path.is_file():
        raise SpineCoreError(path, "manifest not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        missing = ({"patient", "scan", "level"} | set(scheme.task_names)) - columns
        if missing:
            raise SpineCoreError(path, f"manifest lacks columns {', '.join(sorted(missing))} (scheme {scheme.name})")
        rows = []
        for line, record in enumerate(reader, start=2):
            if record["level"] not in DISCS:
                raise SpineCoreError(path, f"line {line}: level {record['level']!r} is not a disc name like L4-L5")
            labels = []
            for task in scheme.tasks:
                text = (record[task.name] or "").strip()
                try:
                    labels.append(task.index(int(float(text))) if text else MISSING)
                except ValueError:
                    raise SpineCoreError(path, f"line {line}: {task.name} = {text!r} is not one of {list(task.values)}") from None
            rows.append(ManifestRow(record["patient"], resolve(path, record["scan"]), record["level"], tuple(labels),
                                    *(resolve(path, record.get(c)) for c in STREAM_COLUMNS.values())))
    if not rows:
        raise SpineCoreError(path, "manifest has no rows")
    return rows


def write_manifest(path: Path, scheme: GradingScheme, rows: list[ManifestRow]) -> None:
    """Write ``rows`` with scan paths relative to the manifest's folder (the stream columns only
    when a row has that stream)."""
    columns = [c for s, c in STREAM_COLUMNS.items() if any(s in r.others for r in rows)]

    def relative(scan: Path | None) -> str:
        return "" if scan is None else relative_scan(path, scan)

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["patient", "scan", "level", *scheme.task_names, *columns])
        for row in rows:
            writer.writerow([row.patient, relative(row.scan), row.level,
                             *("" if i == MISSING else t.values[i] for t, i in zip(scheme.tasks, row.labels)),
                             *(relative(getattr(row, c)) for c in columns)])


def relative_scan(manifest: Path, scan: Path) -> str:
    """How a manifest at ``manifest`` names ``scan``: relative to its folder."""
    return os.path.relpath(Path(scan).resolve(), Path(manifest).resolve().parent)


@dataclass
class DiscSet:
    """Disc volumes stored as ``uint8`` (value × 255): the T2 ``volumes`` ``(N, 9, 112, 224)``, the
    other streams' ``streams[name]`` (``t1`` ``(N, 9, 112, 224)``, ``axial`` ``(N, 3, 224, 224)``;
    all zero where a disc lacks the stream), labels ``(N, tasks)``; ``sequences``: each scan
    (as in ``scans``) → the weighting of the sagittal series its discs were cut from (``T1``,
    ``T2``, ``STIR``, ``unknown``)."""

    volumes: np.ndarray
    labels: np.ndarray
    patients: list[str]
    levels: list[str]
    scans: list[str]
    streams: dict[str, np.ndarray] = field(default_factory=dict)
    sequences: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def float_volumes(self, index) -> np.ndarray:
        return self.volumes[index].astype(np.float32) / 255.0

    def inputs(self, index) -> dict[str, np.ndarray]:
        """``float32`` inputs of the discs ``index`` per stream (``t2`` and the others held)."""
        return {"t2": self.float_volumes(index), **{s: v[index].astype(np.float32) / 255.0 for s, v in self.streams.items()}}

    def subset(self, index: np.ndarray) -> DiscSet:
        """The discs ``index`` (integer indices, in that order) as a set of their own."""
        return DiscSet(self.volumes[index], self.labels[index], [self.patients[i] for i in index],
                       [self.levels[i] for i in index], [self.scans[i] for i in index],
                       {s: v[index] for s, v in self.streams.items()}, self.sequences)

    def sequence(self, scan: Path | str) -> str:
        """The weighting of ``scan``'s sagittal series (``unknown`` when not recorded)."""
        return self.sequences.get(str(scan), "unknown")

    def save(self, path: Path) -> None:
        """An ``.npz`` of the arrays (each other stream as ``stream_<name>``) and the names."""
        np.savez_compressed(path, volumes=self.volumes, labels=self.labels, patients=np.array(self.patients),
                            levels=np.array(self.levels), scans=np.array(self.scans),
                            sequences=np.array(json.dumps(self.sequences)),
                            **{f"stream_{name}": v for name, v in self.streams.items()})

    @classmethod
    def load(cls, path: Path) -> DiscSet:
        with np.load(path) as f:
            streams = {name[len("stream_"):]: f[name] for name in f.files if name.startswith("stream_")}
            return cls(f["volumes"], f["labels"], f["patients"].tolist(), f["levels"].tolist(), f["scans"].tolist(),
                       streams, json.loads(str(f["sequences"])))

    @classmethod
    def of(cls, records: list[tuple], sequences: dict[str, str]) -> DiscSet:
        """From ``(volume float array, labels, patient, level, scan, {stream: float array})`` records
        and each scan's ``sequences``."""
        volumes, labels, patients, levels, scans, others = zip(*records)
        names = [s for s in STREAM_SHAPES if s != "t2" and any(s in o for o in others)]
        streams = {s: np.stack([to_uint8(o[s]) if s in o else np.zeros(STREAM_SHAPES[s], np.uint8) for o in others])
                   for s in names}
        return cls(np.stack([to_uint8(v) for v in volumes]), np.array(labels, np.int64), list(patients), list(levels),
                   [str(s) for s in scans], streams, sequences)


def to_uint8(volume: np.ndarray) -> np.ndarray:
    """A volume of values in [0, 1] as stored: ``uint8``, value × 255."""
    return np.round(volume * 255).astype(np.uint8)


class _OtherStreams:
    """The other streams' volumes of one T2 scan's discs, each scan read once (a bad pairing is
    logged and that stream left out)."""

    def __init__(self, series, spine, volumes):
        self.series, self.spine, self.volumes = series, spine, volumes
        self.found: dict[tuple[str, Path], dict] = {}

    def __call__(self, stream: str, scan: Path) -> dict:
        if (stream, scan) not in self.found:
            try:
                study = load_study(scan)
                if stream == "t1":
                    found = t1_disc_volumes(study.sagittal(Weighting.T1), self.volumes, self.spine, self.series)
                else:
                    found = axial_disc_volumes(study.select(Plane.AXIAL) or list(study.series), self.spine,
                                               [v.level for v in self.volumes], self.series)
            except SpineCoreError as exc:
                log.warning("%s", exc)
                found = {}
            self.found[stream, scan] = {level: v.array for level, v in found.items()}
        return self.found[stream, scan]


def build_disc_set(rows: list[ManifestRow], localiser: Localiser | None = None,
                   cache: Path | None = None) -> tuple[DiscSet, list[ManifestRow]]:
    """Localise each manifest scan, cut its disc volumes (and those of the row's other streams) and
    attach the labels. Graded discs the localiser did not find are returned apart (the ``missed`` rows).
    With ``cache``, through the cache in that folder (:func:`~spinecore.data.cache.cached`; keyed by
    the rows, the contents of their scans and the localiser's weights)."""
    localiser = localiser or Localiser.load()
    if cache is None:
        return _extract_disc_set(rows, localiser)
    scans = sorted({str(p) for r in rows for p in (r.scan, *r.others.values())})
    inputs = {"rows": [[r.patient, str(r.scan), r.level, list(r.labels), {s: str(p) for s, p in r.others.items()}]
                       for r in rows],
              "scans": {scan: path_digest(Path(scan)) for scan in scans if Path(scan).exists()},
              "localiser": weights_digest(localiser.network)}

    def save(value: tuple[DiscSet, list[ManifestRow]], entry: Path) -> None:
        value[0].save(entry / "discs.npz")
        missed = set(value[1])
        (entry / "missed.json").write_text(json.dumps([i for i, r in enumerate(rows) if r in missed]))

    def load(entry: Path) -> tuple[DiscSet, list[ManifestRow]]:
        return DiscSet.load(entry / "discs.npz"), [rows[i] for i in json.loads((entry / "missed.json").read_text())]

    return cached(cache, DISC_SET_PREFIX, inputs, DISC_SET_CODE, lambda: _extract_disc_set(rows, localiser), save, load)


def _extract_disc_set(rows: list[ManifestRow], localiser: Localiser) -> tuple[DiscSet, list[ManifestRow]]:
    by_scan: dict[Path, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        by_scan[row.scan].append(row)
    records, missed, sequences = [], [], {}
    for n, (scan, scan_rows) in enumerate(by_scan.items(), start=1):
        series = load_study(scan).sagittal()
        sequences[str(scan)] = series.weighting.value
        try:
            spine = localiser(series)
            volumes = disc_volumes(series, spine)
        except SpineCoreError as exc:
            spine, volumes = None, []
            log.warning("%s", exc)
        found = {v.level: v for v in volumes}
        others = _OtherStreams(series, spine, volumes)
        for row in scan_rows:
            if row.level not in found:
                missed.append(row)
                continue
            streams = {s: others(s, path).get(row.level) for s, path in row.others.items()}
            records.append((found[row.level].array, row.labels, row.patient, row.level, scan,
                            {s: v for s, v in streams.items() if v is not None}))
        if n % 25 == 0 or n == len(by_scan):
            log.info("extracted discs from %d/%d scans (%d discs, %d missed)", n, len(by_scan), len(records), len(missed))
    if not records:
        raise SpineCoreError(rows[0].scan, "no graded disc could be found in any manifest scan")
    return DiscSet.of(records, sequences), missed


def write_phantom_manifest(folder: Path, seeds, scheme: GradingScheme, independent_findings: bool = False,
                           n_slices: int | None = None, streams: tuple[str, ...] = ("t2",)) -> Path:
    """Write the sagittal T2 of each phantom seed as ``<folder>/phantom-<seed>.nii.gz`` (``n_slices``
    sagittal slices, default the phantom's) and a manifest ``<folder>/manifest.csv`` of their true
    grades on ``scheme``. With ``independent_findings`` every disc's grades come from
    :func:`~spinecore.phantom.anatomy.independent_grades` (seeded by the phantom's seed). ``streams``
    with ``t1`` also writes each sagittal T1 (``-t1.nii.gz``, column ``scan_t1``); with ``axial`` each
    axial stack (``-ax_t2_<level>.nii.gz``, the phantom's lower discs only, column ``scan_axial``)."""
    from spinecore.io.write import write_volume
    from spinecore.phantom import PhantomSpec, make_phantom
    from spinecore.phantom.anatomy import independent_grades

    rows = []
    for seed in seeds:
        grades = {}
        if independent_findings:
            rng = np.random.default_rng([int(seed), 2])
            grades = {level: independent_grades(rng).as_dict() for level in DISCS}
        study = make_phantom(PhantomSpec(seed=int(seed), n_slices=n_slices, t1="t1" in streams,
                                         axial="axial" in streams, grades=grades))
        written = {s.name: write_volume(Path(folder) / f"phantom-{seed}{_PHANTOM_SUFFIXES.get(s.name, '-' + s.name + '.nii.gz')}",
                                        s.array, s.geometry) for s in study.series}
        rows += [ManifestRow(f"phantom-{seed}", written["sag_t2"], d["level"], phantom_labels(d["grades"], scheme),
                             written.get("sag_t1"), written.get(f"ax_t2_{d['level'].lower()}"))
                 for d in study.truth["discs"]]
    path = Path(folder) / "manifest.csv"
    write_manifest(path, scheme, rows)
    return path


#: File name endings of the phantom series in :func:`write_phantom_manifest` (others: ``-<series>.nii.gz``).
_PHANTOM_SUFFIXES = {"sag_t2": ".nii.gz", "sag_t1": "-t1.nii.gz"}


def phantom_labels(grades: dict[str, int], scheme: GradingScheme) -> tuple[int, ...]:
    """Class indices of a phantom disc's grades on ``scheme``: grades outside a task's range are
    clipped, binary tasks mean grade > 0, ``MISSING`` for tasks the phantom lacks."""
    sources = {"modic": max(grades.get("marrow_upper", 0), grades.get("marrow_lower", 0)),
               "bulging": max(grades.get("bulging_anterior", 0), grades.get("bulging_posterior", 0))}
    out = []
    for task in scheme.tasks:
        value = sources.get(task.name, grades.get(task.name))
        if value is None:
            out.append(MISSING)
            continue
        if task.values == (0, 1):
            value = int(value > 0)
        out.append(task.index(min(max(value, task.values[0]), task.values[-1])))
    return tuple(out)
