"""The one place that names spinal levels.

Vertebrae run cranial to caudal; a disc is named by the two vertebrae around it,
e.g. ``"L4-L5"``.
"""
from __future__ import annotations

VERTEBRAE: tuple[str, ...] = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
DISCS: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in zip(VERTEBRAE[:-1], VERTEBRAE[1:]))
#: The six lumbar discs, T12-L1 … L5-S1 (the thesis' disc levels, e.g. 7.3.3, 8.2.1).
LUMBAR_DISCS: tuple[str, ...] = DISCS[DISCS.index("T12-L1"):]


# tab10 without its grey: one colour per vertebra, used by every picture and by Slicer
_VERTEBRA_RGB = ((0.122, 0.467, 0.706), (1.0, 0.498, 0.055), (0.173, 0.627, 0.173), (0.839, 0.153, 0.157),
                 (0.58, 0.404, 0.741), (0.549, 0.337, 0.294), (0.89, 0.467, 0.761), (0.737, 0.741, 0.133),
                 (0.09, 0.745, 0.812))


def level_colour(name: str) -> tuple[float, float, float]:
    """RGB in [0, 1] of a vertebra (``"L4"``) or disc (``"L4-L5"``): discs take the colour of the
    vertebra above them, lightened halfway to white."""
    if name in VERTEBRAE:
        return _VERTEBRA_RGB[VERTEBRAE.index(name)]
    if name in DISCS:
        return tuple(round((c + 1.0) / 2, 3) for c in _VERTEBRA_RGB[DISCS.index(name)])
    raise ValueError(f"unknown level {name!r}")
