"""The settings of one SpineNet run as a small validated dataclass: what the runner and the batch
script take. The module keeps them in its parameter node (``SpineNetParameterNode`` in SpineNet.py,
the same field names) so they are saved with the scene. No Qt here."""
from __future__ import annotations

from dataclasses import dataclass

from spinecore.saliency import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method


@dataclass
class SpineNetParameters:
    """``grader_model`` / ``localiser_model``: model files, empty for the bundled ones.
    ``hotspot_tasks``: tasks to make heatmap volumes for (empty: none)."""

    grader_model: str = ""
    localiser_model: str = ""
    tta: bool = True
    hotspot_tasks: tuple[str, ...] = ()
    method: str = DEFAULT_METHOD.value
    augmentations: int = DEFAULT_AUGMENTATIONS
    all_slices: bool = False

    def __post_init__(self):
        self.method = Method(self.method).value
        self.augmentations = int(self.augmentations)
        if self.augmentations < 1:
            raise ValueError(f"augmentations must be at least 1, not {self.augmentations}")
        self.hotspot_tasks = tuple(self.hotspot_tasks)
