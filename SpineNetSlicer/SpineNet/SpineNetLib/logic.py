"""The module's logic without Qt: volume node → spinecore → nodes in the scene. Usable from the
Python console, batch scripts and tests (with ``slicer-core``).

The work is split so a GUI can keep responsive: :meth:`SpineNetRunner.series` and
:meth:`SpineNetRunner.show` touch the scene (main thread); :meth:`SpineNetRunner.analyse` is
pure spinecore and may run in a worker thread.
"""
from __future__ import annotations

from pathlib import Path

from spinecore.grade import Grader
from spinecore.io.series import Series
from spinecore.localise import Localiser
from spinecore.pipeline import Analysis, Progress, analyse
from spinecore.saliency import Method

from SpineNetLib.bridge import series_from_volume_node
from SpineNetLib.outputs import SpineNetOutputs, show_analysis
from SpineNetLib.parameters import SpineNetParameters


class SpineNetRunner:
    """Runs spinecore on volume nodes; models are loaded once per file and reused."""

    def __init__(self):
        self._localisers: dict[str, Localiser] = {}
        self._graders: dict[str, Grader] = {}

    def localiser(self, path: str = "") -> Localiser:
        if path not in self._localisers:
            self._localisers[path] = Localiser.load(Path(path) if path else None)
        return self._localisers[path]

    def grader(self, path: str = "") -> Grader:
        if path not in self._graders:
            self._graders[path] = Grader.load(Path(path) if path else None)
        return self._graders[path]

    @staticmethod
    def series(volume_node) -> Series:
        """The node's voxels and geometry as a spinecore series (main thread)."""
        return series_from_volume_node(volume_node)

    def analyse(self, series: Series, parameters: SpineNetParameters, progress: Progress | None = None) -> Analysis:
        """The spinecore pipeline on ``series`` (no scene access: safe in a worker thread)."""
        return analyse(series, self.localiser(parameters.localiser_model), self.grader(parameters.grader_model),
                       tta=parameters.tta, hotspot_tasks=parameters.hotspot_tasks, method=Method(parameters.method),
                       augmentations=parameters.augmentations, progress=progress)

    def show(self, volume_node, analysis: Analysis, parameters: SpineNetParameters) -> SpineNetOutputs:
        """Put ``analysis`` into the node's scene, replacing its earlier outputs (main thread)."""
        return show_analysis(volume_node.GetScene(), volume_node, analysis, parameters.all_slices)

    def run(self, volume_node, parameters: SpineNetParameters | None = None,
            progress: Progress | None = None) -> tuple[Analysis, SpineNetOutputs]:
        """All three steps, synchronously."""
        parameters = parameters or SpineNetParameters()
        analysis = self.analyse(self.series(volume_node), parameters, progress)
        return analysis, self.show(volume_node, analysis, parameters)
