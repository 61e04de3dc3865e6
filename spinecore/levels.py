"""The one place that names spinal levels.

Vertebrae run cranial to caudal; a disc is named by the two vertebrae around it,
e.g. ``"L4-L5"``.
"""
from __future__ import annotations

VERTEBRAE: tuple[str, ...] = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
DISCS: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in zip(VERTEBRAE[:-1], VERTEBRAE[1:]))


def vertebra_index(level: str) -> int:
    """Position of ``level`` in :data:`VERTEBRAE` (0 = most cranial)."""
    try:
        return VERTEBRAE.index(level)
    except ValueError:
        raise ValueError(f"unknown vertebra level {level!r}; expected one of {', '.join(VERTEBRAE)}") from None


def disc_below(vertebra: str) -> str:
    """Name of the disc under ``vertebra`` (``"L4"`` → ``"L4-L5"``)."""
    i = vertebra_index(vertebra)
    if i == len(VERTEBRAE) - 1:
        raise ValueError(f"{vertebra} has no disc below it in this model")
    return DISCS[i]


def disc_neighbours(disc: str) -> tuple[str, str]:
    """The (upper, lower) vertebrae of ``disc``."""
    if disc not in DISCS:
        raise ValueError(f"unknown disc level {disc!r}; expected one of {', '.join(DISCS)}")
    upper, lower = disc.split("-")
    return upper, lower
