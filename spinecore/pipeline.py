"""The whole pipeline on one series, for any front end (CLI, Slicer, your own code):
localise → extract → grade → saliency, with progress reports and cancellation.

>>> from spinecore.pipeline import analyse
>>> analysis = analyse(load_study("scan.nii.gz").sagittal(), hotspot_tasks=("pfirrmann",))  # doctest: +SKIP
>>> analysis.gradings.rows()[0]["level"], analysis.heatmap("pfirrmann").shape             # doctest: +SKIP
('T12-L1', (11, 585, 329))

With a multi-stream grader, hotspots come per stream: ``analysis.heatmap("modic", "t1")`` lies in
the T1 scan's grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from spinecore.errors import SpineCoreError, StreamError
from spinecore.extract import StructureVolume, axial_disc_volumes, disc_volumes, t1_disc_volumes
from spinecore.grade import Grader
from spinecore.grade.grader import Gradings
from spinecore.io.series import Series
from spinecore.localise import Localiser, Spine
from spinecore.saliency import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method, scan_heatmap, stream_hotspots

#: ``progress(fraction done in [0, 1], what is happening)``; it may raise :class:`Cancelled`.
Progress = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop a run; :func:`analyse` lets it through."""


@dataclass(frozen=True)
class Analysis:
    """Everything one run found in one series. ``hotspots[stream][level][task]`` is a map of the
    shape of that stream's disc volume of that level (:class:`~spinecore.extract.StructureVolume`:
    ``volumes`` for ``t2``, ``others[stream]`` for ``t1`` and ``axial``); a single-stream grader's
    hotspots are all ``t2``, and a disc without a stream has no hotspots in it."""

    series: Series
    spine: Spine
    volumes: tuple[StructureVolume, ...]
    gradings: Gradings
    method: Method = DEFAULT_METHOD
    hotspots: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    #: The other streams' disc volumes the grader read: ``others[stream][level]`` (``t1``, ``axial``).
    others: dict[str, dict[str, StructureVolume]] = field(default_factory=dict)
    #: The other streams given for the run that were not used (``t1``, ``axial``): the grader does not
    #: read them, or (:attr:`unused_reasons`) they did not match.
    unused_streams: tuple[str, ...] = ()
    #: The scans the other streams were cut from.
    t1: Series | None = None
    axials: tuple[Series, ...] = ()
    #: Why a given stream the grader reads was not used (``{"t1": reason}``, see ``t1_optional``).
    unused_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def hotspot_tasks(self) -> list[str]:
        return [t for t in self.gradings.scheme.task_names
                if any(t in maps for levels in self.hotspots.values() for maps in levels.values())]

    def stream_volumes(self, stream: str) -> list[StructureVolume]:
        """The disc volumes of ``stream``, cranial → caudal."""
        return list(self.volumes) if stream == "t2" else list(self.others.get(stream, {}).values())

    def scans(self, stream: str) -> tuple[Series, ...]:
        """The scans of ``stream`` that were used: the series, the T1, the axial series."""
        return {"t2": (self.series,), "t1": (self.t1,) if self.t1 else (), "axial": self.axials}[stream]

    def scan_of(self, stream: str, volume: StructureVolume) -> Series:
        """The scan a disc ``volume`` of ``stream`` was cut from (its ``to_scan`` maps into it)."""
        return next(s for s in self.scans(stream) if np.array_equal(s.geometry.affine, volume.scan_affine))

    def heatmap(self, task: str, stream: str = "t2", scan: Series | None = None) -> np.ndarray:
        """The hotspots of ``task`` in ``stream`` for all discs in the voxel grid ``(slice, row,
        column)`` of that stream's ``scan`` (default: its first of :meth:`scans`)."""
        scan = scan or self.scans(stream)[0]
        volumes = [v for v in self.stream_volumes(stream) if self.scan_of(stream, v) is scan]
        return scan_heatmap(volumes, self.hotspots.get(stream, {}), task, scan.shape)


def _check_hotspots(grader: Grader, hotspot_tasks: Sequence[str]) -> None:
    unknown = [t for t in hotspot_tasks if t not in grader.scheme.task_names]
    if unknown:
        raise SpineCoreError(None, f"unknown hotspot task(s) {', '.join(unknown)}; the grader's tasks are "
                                   f"{', '.join(grader.scheme.task_names)}")


def other_streams(grader: Grader, series: Series, spine: Spine, volumes: list[StructureVolume], t1: Series | None,
                  axials: Sequence[Series], t1_optional: bool = False) -> tuple[dict[str, dict[str, StructureVolume]],
                                                                                dict[str, str]]:
    """The disc volumes of the other streams the grader reads, by stream and level (a T2-only
    grader reads none: the T1 and axial series are then not used), and why a stream was left out:
    with ``t1_optional`` a T1 that does not match (:class:`~spinecore.errors.StreamError`) is left
    out with its reason instead of raising."""
    others, left_out = {}, {}
    if t1 is not None and "t1" in grader.streams:
        try:
            others["t1"] = t1_disc_volumes(t1, volumes, spine, series)
        except StreamError as exc:
            if not t1_optional:
                raise
            left_out["t1"] = exc.reason
    if axials and "axial" in grader.streams:
        others["axial"] = axial_disc_volumes(list(axials), spine, [v.level for v in volumes], series)
    return others, left_out


def disc_hotspots(grader: Grader, volumes: Sequence[StructureVolume], gradings: Gradings,
                  others: dict[str, dict[str, StructureVolume]], tasks: Sequence[str], method: Method,
                  augmentations: int, seed: int, progress: Progress) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``maps[stream][level][task]``: the hotspots of each disc's given grade of ``tasks`` in every
    stream the disc was graded with."""
    chosen = [(n, t.name) for n, t in enumerate(grader.scheme.tasks) if t.name in tasks]
    maps: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for i, (volume, disc) in enumerate(zip(volumes, gradings.discs)):
        progress(0.4 + 0.6 * i / len(volumes), f"hotspots of {disc.level}")
        arrays = {s: (volume if s == "t2" else others[s][disc.level]).array for s in disc.streams}
        classes = {n: int(np.argmax(disc.probabilities[name])) for n, name in chosen}
        for stream, found in stream_hotspots(grader.net, arrays, classes, method, augmentations, seed).items():
            maps.setdefault(stream, {})[disc.level] = {grader.scheme.tasks[n].name: m for n, m in found.items()}
    return maps


def analyse(series: Series, localiser: Localiser | None = None, grader: Grader | None = None, *, tta: bool = True,
            hotspot_tasks: Sequence[str] = (), method: Method = DEFAULT_METHOD,
            augmentations: int = DEFAULT_AUGMENTATIONS, seed: int = 0, progress: Progress | None = None,
            t1: Series | None = None, axials: Sequence[Series] = (), t1_optional: bool = False) -> Analysis:
    """Localise, extract and grade every disc of ``series`` (default models: the bundled ones, the
    T1 + T2 grader when there is a ``t1``) with the same patient's sagittal ``t1`` and ``axials``
    when the grader reads them, then compute hotspots of the given grade for each of ``hotspot_tasks``
    in every stream each disc was graded with. ``t1_optional``: the ``t1`` was taken from the study,
    not asked for, so one that holds none of the discs is not used (with the reason in
    :attr:`Analysis.unused_reasons`) rather than an error."""
    report = progress or (lambda fraction, message: None)
    grader = grader or Grader.load(t1=t1 is not None)
    _check_hotspots(grader, hotspot_tasks)
    report(0.0, "localising vertebrae")
    spine = (localiser or Localiser.load())(series)
    report(0.3, f"grading {len(spine.discs)} discs")
    volumes = tuple(disc_volumes(series, spine))
    others, left_out = other_streams(grader, series, spine, list(volumes), t1, axials, t1_optional)
    gradings = grader.grade_volumes(list(volumes), tta, others)
    maps = (disc_hotspots(grader, volumes, gradings, others, hotspot_tasks, Method(method), augmentations, seed, report)
            if hotspot_tasks else {})
    report(1.0, "done")
    unused = tuple(name for name, given in (("t1", t1), ("axial", axials)) if given and name not in others)
    return Analysis(series, spine, volumes, gradings, Method(method), maps, others, unused,
                    t1 if "t1" in others else None, tuple(axials) if "axial" in others else (), left_out)
