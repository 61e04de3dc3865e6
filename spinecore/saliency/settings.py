"""Saliency names and defaults, importable without torch (the CLI and the Slicer widget read them)."""
from __future__ import annotations

import enum

from spinecore.errors import SpineCoreError


class Method(str, enum.Enum):
    BACKPROP = "backprop"
    GUIDED = "guided"
    EXCITATION = "excitation"


#: Guided back-propagation. On 2-D graders excitation has to go back to the input, where it works
#: poorly (thesis 5.3.1). On phantom lesions guided boxes are the most even across findings
#: (``Resources/Models/phantom_grader.md``).
DEFAULT_METHOD = Method.GUIDED
#: Augmented copies averaged per hotspot (thesis 5.2 averages over 150).
DEFAULT_AUGMENTATIONS = 150
#: A heatmap drawn over its image: opacity, and the value below which it is left transparent.
HEATMAP_OPACITY = 0.45
HEATMAP_SHOWN_FROM = 0.05
#: ``--hotspots`` values selecting every task of the grader, or none.
ALL_TASKS, NO_TASKS = "all", "none"


def hotspot_tasks(selection: str, known: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The tasks a ``--hotspots`` ``selection`` names: :data:`ALL_TASKS`, :data:`NO_TASKS` or task
    names separated by commas, checked against the grader's ``known`` tasks."""
    tasks = {ALL_TASKS: tuple(known), NO_TASKS: ()}.get(selection, tuple(t for t in selection.split(",") if t))
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        raise SpineCoreError(None, f"--hotspots: unknown task(s) {', '.join(unknown)}; the grader's tasks are "
                                   f"{', '.join(known)}")
    return tasks
