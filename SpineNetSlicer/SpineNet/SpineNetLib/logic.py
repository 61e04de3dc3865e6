"""The module's logic without Qt: volume nodes → spinecore → nodes in the scene. Usable from the
Python console, batch scripts and tests (with ``slicer-core``).

The work is split so a GUI can keep responsive: :meth:`SpineNetRunner.inputs` and
:meth:`SpineNetRunner.show` touch the scene (main thread); :meth:`SpineNetRunner.analyse` is
pure spinecore and may run in a worker thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from spinecore.grade import Grader
from spinecore.io.series import Series
from spinecore.localise import Localiser
from spinecore.pipeline import Analysis, Progress, analyse
from spinecore.report.gradings import streams_note, unused_streams_note
from spinecore.saliency import Method

from SpineNetLib.bridge import series_from_volume_node
from SpineNetLib.outputs import SpineNetOutputs, show_analysis
from SpineNetLib.parameters import SpineNetParameters


@dataclass(frozen=True)
class SpineNetInputs:
    """The series of one run: the sagittal ``series`` that is localised, graded and shown, and the
    same patient's optional sagittal ``t1`` and ``axials`` for a grader that reads them;
    ``t1_optional``: the T1 was taken from the study, not chosen (see :func:`~spinecore.pipeline.analyse`)."""

    series: Series
    t1: Series | None = None
    axials: tuple[Series, ...] = ()
    t1_optional: bool = False


class SpineNetRunner:
    """Runs spinecore on volume nodes; models are loaded once per file and reused."""

    def __init__(self):
        self._localisers: dict[str, Localiser] = {}
        self._graders: dict[tuple[str, bool], Grader] = {}

    def localiser(self, path: str = "") -> Localiser:
        if path not in self._localisers:
            self._localisers[path] = Localiser.load(Path(path) if path else None)
        return self._localisers[path]

    def grader(self, path: str = "", t1: bool = False) -> Grader:
        """The grader of ``path``; with none, the bundled one for a run with or without a ``t1``."""
        if (path, t1) not in self._graders:
            self._graders[path, t1] = Grader.load(Path(path) if path else None, t1=t1)
        return self._graders[path, t1]

    @staticmethod
    def inputs(volume_node, t1_node=None, axial_nodes: Sequence = (), t1_optional: bool = False) -> SpineNetInputs:
        """The nodes' voxels and geometry as spinecore series (main thread): the sagittal scan, its
        optional sagittal T1 and axial volume nodes."""
        return SpineNetInputs(series_from_volume_node(volume_node),
                              None if t1_node is None else series_from_volume_node(t1_node),
                              tuple(series_from_volume_node(node) for node in axial_nodes), t1_optional)

    def analyse(self, inputs: SpineNetInputs, parameters: SpineNetParameters,
                progress: Progress | None = None) -> Analysis:
        """The spinecore pipeline on ``inputs`` (no scene access: safe in a worker thread). A T1 or
        axial series the grader does not read is not used (:meth:`summary` says so); one the grader
        reads that does not match the sagittal scan raises :class:`~spinecore.errors.StreamError`."""
        grader = self.grader(parameters.grader_model, t1=inputs.t1 is not None)
        return analyse(inputs.series, self.localiser(parameters.localiser_model), grader,
                       tta=parameters.tta, hotspot_tasks=parameters.hotspot_tasks, method=Method(parameters.method),
                       augmentations=parameters.augmentations, progress=progress, t1=inputs.t1, axials=inputs.axials,
                       t1_optional=inputs.t1_optional)

    @staticmethod
    def summary(analysis: Analysis) -> str:
        """One line for the status and the log: the graded discs, the streams their grades rest on
        and the given streams the grader does not read, e.g. ``graded L4-L5, L5-S1; streams: t2
        (the model reads t2: t1 not used)``."""
        graded = ", ".join(d.level for d in analysis.gradings.discs) or "no discs"
        unused = unused_streams_note(analysis.gradings.model_streams, analysis.unused_streams, analysis.unused_reasons)
        return f"graded {graded}; {streams_note(analysis.gradings)}{unused}"

    @staticmethod
    def show(volume_node, analysis: Analysis, parameters: SpineNetParameters, t1_node=None,
             axial_nodes: Sequence = ()) -> SpineNetOutputs:
        """Put ``analysis`` into the node's scene, replacing its earlier outputs (main thread); the
        other streams' heatmaps go over the ``t1_node`` and ``axial_nodes`` the run read."""
        return show_analysis(volume_node.GetScene(), volume_node, analysis, parameters.all_slices,
                             {"t1": [t1_node] if t1_node is not None else [], "axial": list(axial_nodes)})

    def run(self, volume_node, parameters: SpineNetParameters | None = None, progress: Progress | None = None,
            t1_node=None, axial_nodes: Sequence = (), t1_optional: bool = False) -> tuple[Analysis, SpineNetOutputs]:
        """All three steps, synchronously, with the optional sagittal T1 and axial volume nodes
        (``t1_optional``: the T1 came with the study, see :class:`SpineNetInputs`)."""
        parameters = parameters or SpineNetParameters()
        analysis = self.analyse(self.inputs(volume_node, t1_node, axial_nodes, t1_optional), parameters, progress)
        return analysis, self.show(volume_node, analysis, parameters, t1_node, axial_nodes)
