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
from spinecore.extract import StructureVolume, disc_volumes
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

    @property
    def hotspot_tasks(self) -> list[str]:
        return [t for t in self.gradings.scheme.task_names if any(t in maps for maps in self.hotspots.values())]

    def heatmap(self, task: str) -> np.ndarray:
        """The hotspots of ``task`` for all discs in the series' voxel grid ``(slice, row, column)``."""
        return scan_heatmap(self.volumes, self.hotspots, task, self.series.shape)


def analyse(series: Series, localiser: Localiser | None = None, grader: Grader | None = None, *, tta: bool = True,
            hotspot_tasks: Sequence[str] = (), method: Method = DEFAULT_METHOD,
            augmentations: int = DEFAULT_AUGMENTATIONS, seed: int = 0, progress: Progress | None = None) -> Analysis:
    """Localise, extract and grade every disc of ``series`` (default models: the bundled ones),
    then compute hotspots of the given grade for each of ``hotspot_tasks``."""
    report = progress or (lambda fraction, message: None)
    grader = grader or Grader.load()
    unknown = [t for t in hotspot_tasks if t not in grader.scheme.task_names]
    if unknown:
        raise SpineCoreError(None, f"unknown hotspot task(s) {', '.join(unknown)}; the grader's tasks are "
                                   f"{', '.join(grader.scheme.task_names)}")
    report(0.0, "localising vertebrae")
    spine = (localiser or Localiser.load())(series)
    report(0.3, f"grading {len(spine.discs)} discs")
    volumes = tuple(disc_volumes(series, spine))
    gradings = grader.grade_volumes(list(volumes), tta)
    maps = {}
    if hotspot_tasks:
        tasks = [(n, t.name) for n, t in enumerate(grader.scheme.tasks) if t.name in hotspot_tasks]
        for i, (volume, disc) in enumerate(zip(volumes, gradings.discs)):
            report(0.4 + 0.6 * i / len(volumes), f"hotspots of {disc.level}")
            classes = {n: int(np.argmax(disc.probabilities[name])) for n, name in tasks}
            found = hotspots(grader.net, volume.array, classes, method, augmentations, seed)
            maps[disc.level] = {grader.scheme.tasks[n].name: m for n, m in found.items()}
    report(1.0, "done")
    return Analysis(series, spine, volumes, gradings, Method(method), maps)
