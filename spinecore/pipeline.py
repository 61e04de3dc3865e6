"""The whole pipeline on one series, for any front end (CLI, Slicer, your own code):
localise → extract → grade → saliency, with progress reports and cancellation.

>>> from spinecore.pipeline import analyse
>>> analysis = analyse(load_study("scan.nii.gz").sagittal(), hotspot_tasks=("pfirrmann",))  # doctest: +SKIP
>>> analysis.gradings.rows()[0]["level"], analysis.heatmap("pfirrmann").shape             # doctest: +SKIP
('T12-L1', (11, 585, 329))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from spinecore.errors import SpineCoreError
from spinecore.extract import StructureVolume, axial_disc_volumes, disc_volumes, t1_disc_volumes
from spinecore.grade import Grader
from spinecore.grade.grader import Gradings
from spinecore.io.series import Series
from spinecore.localise import Localiser, Spine
from spinecore.saliency import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method, hotspots, scan_heatmap

#: ``progress(fraction done in [0, 1], what is happening)``; it may raise :class:`Cancelled`.
Progress = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop a run; :func:`analyse` lets it through."""


@dataclass(frozen=True)
class Analysis:
    """Everything one run found in one series. ``hotspots[level][task]`` is a ``(9, 112, 224)`` map
    in the disc volume of that level (:class:`~spinecore.extract.StructureVolume`)."""

    series: Series
    spine: Spine
    volumes: tuple[StructureVolume, ...]
    gradings: Gradings
    method: Method = DEFAULT_METHOD
    hotspots: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: The other streams' disc volumes the grader read: ``others[stream][level]`` (``t1``, ``axial``).
    others: dict[str, dict[str, StructureVolume]] = field(default_factory=dict)
    #: The other streams given for the run that the grader does not read (``t1``, ``axial``): not used.
    unused_streams: tuple[str, ...] = ()

    @property
    def hotspot_tasks(self) -> list[str]:
        return [t for t in self.gradings.scheme.task_names if any(t in maps for maps in self.hotspots.values())]

    def heatmap(self, task: str) -> np.ndarray:
        """The hotspots of ``task`` for all discs in the series' voxel grid ``(slice, row, column)``."""
        return scan_heatmap(self.volumes, self.hotspots, task, self.series.shape)


def _check_hotspots(grader: Grader, hotspot_tasks: Sequence[str]) -> None:
    unknown = [t for t in hotspot_tasks if t not in grader.scheme.task_names]
    if unknown:
        raise SpineCoreError(None, f"unknown hotspot task(s) {', '.join(unknown)}; the grader's tasks are "
                                   f"{', '.join(grader.scheme.task_names)}")
    if hotspot_tasks and grader.streams != ("t2",):
        raise SpineCoreError(None, f"hotspots of a multi-stream model ({'+'.join(grader.streams)}) are not available "
                                   "yet; use a T2 model (--model) for hotspots")


def other_streams(grader: Grader, series: Series, spine: Spine, volumes: list[StructureVolume], t1: Series | None,
                  axials: Sequence[Series]) -> dict[str, dict[str, StructureVolume]]:
    """The disc volumes of the other streams the grader reads, by stream and level (a T2-only
    grader reads none: the T1 and axial series are then not used)."""
    others = {}
    if t1 is not None and "t1" in grader.streams:
        others["t1"] = t1_disc_volumes(t1, volumes, spine, series)
    if axials and "axial" in grader.streams:
        others["axial"] = axial_disc_volumes(list(axials), spine, [v.level for v in volumes], series)
    return others


def analyse(series: Series, localiser: Localiser | None = None, grader: Grader | None = None, *, tta: bool = True,
            hotspot_tasks: Sequence[str] = (), method: Method = DEFAULT_METHOD,
            augmentations: int = DEFAULT_AUGMENTATIONS, seed: int = 0, progress: Progress | None = None,
            t1: Series | None = None, axials: Sequence[Series] = ()) -> Analysis:
    """Localise, extract and grade every disc of ``series`` (default models: the bundled ones) with
    the same patient's sagittal ``t1`` and ``axials`` when the grader reads them, then compute
    hotspots of the given grade for each of ``hotspot_tasks``."""
    report = progress or (lambda fraction, message: None)
    grader = grader or Grader.load()
    _check_hotspots(grader, hotspot_tasks)
    report(0.0, "localising vertebrae")
    spine = (localiser or Localiser.load())(series)
    report(0.3, f"grading {len(spine.discs)} discs")
    volumes = tuple(disc_volumes(series, spine))
    others = other_streams(grader, series, spine, list(volumes), t1, axials)
    gradings = grader.grade_volumes(list(volumes), tta, others)
    maps = {}
    if hotspot_tasks:
        tasks = [(n, t.name) for n, t in enumerate(grader.scheme.tasks) if t.name in hotspot_tasks]
        for i, (volume, disc) in enumerate(zip(volumes, gradings.discs)):
            report(0.4 + 0.6 * i / len(volumes), f"hotspots of {disc.level}")
            classes = {n: int(np.argmax(disc.probabilities[name])) for n, name in tasks}
            found = hotspots(grader.net, volume.array, classes, method, augmentations, seed)
            maps[disc.level] = {grader.scheme.tasks[n].name: m for n, m in found.items()}
    report(1.0, "done")
    unused = tuple(name for name, given in (("t1", t1), ("axial", axials)) if given and name not in grader.streams)
    return Analysis(series, spine, volumes, gradings, Method(method), maps, others, unused)
