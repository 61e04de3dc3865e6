"""The one place that names spinal levels.

Vertebrae run cranial to caudal; a disc is named by the two vertebrae around it,
e.g. ``"L4-L5"``.
"""
from __future__ import annotations

VERTEBRAE: tuple[str, ...] = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
DISCS: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in zip(VERTEBRAE[:-1], VERTEBRAE[1:]))

