"""Saliency names and defaults, importable without torch (the CLI and the Slicer widget read them)."""
from __future__ import annotations

import enum


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
