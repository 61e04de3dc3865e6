"""Disc measurements read off the vertebral quadrilaterals on one sagittal slice.

Corners are ``(4, 3)`` arrays in patient LPS millimetres, ordered anterior-superior,
posterior-superior, posterior-inferior, anterior-inferior (``VertebraSlice.corners_mm``).
All of a slice's corners lie in its plane, so every vector and distance here is in that plane.

The disc frame (:func:`disc_frame`) is shared with :func:`~spinecore.localise.spine.discs_between`:
``across`` is the mean direction of the two facing endplates (anterior → posterior) and
``normal`` is perpendicular to it, towards the head. Heights are measured along ``normal``,
the slip along ``across``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

AS, PS, PI, AI = range(4)  # corner indices
PERCENT = 100.0
MM_DECIMALS = 2
INDEX_DECIMALS = 3
PERCENT_DECIMALS = 1


@dataclass(frozen=True)
class DiscMeasurements:
    """What a radiologist reads off one disc on its mid slice (lengths in mm).

    Attributes:
        anterior_height_mm: upper body's anterior-inferior corner above the lower body's
            anterior-superior corner, along the disc normal.
        middle_height_mm: midpoint of the upper body's inferior endplate above the midpoint of the
            lower body's superior endplate, along the normal (= mean of anterior and posterior;
            the same value as ``Disc.height_mm``).
        posterior_height_mm: as anterior, between the posterior corners.
        height_index: disc height index (DHI) = ``middle_height_mm / ((H_upper + H_lower) / 2)``,
            ``H`` the adjacent body's height on the slice (distance between the midpoints of its
            superior and inferior endplates). Healthy lumbar discs are ~0.3–0.45.
        slip_mm: offset of the upper body's posterior-inferior corner in front of the lower body's
            posterior-superior corner, along ``across`` (the posterior-wall reading of a slip).
            Positive = anterolisthesis (upper body forward), negative = retrolisthesis.
        slip_percent: ``100 * slip_mm / D``, ``D`` the lower body's superior endplate depth (its
            anterior-superior to posterior-superior corner distance); Meyerding grade I is < 25 %.
    """

    anterior_height_mm: float
    middle_height_mm: float
    posterior_height_mm: float
    height_index: float
    slip_mm: float
    slip_percent: float

    def to_dict(self) -> dict[str, float]:
        decimals = {"height_index": INDEX_DECIMALS, "slip_percent": PERCENT_DECIMALS}
        return {name: round(value, decimals.get(name, MM_DECIMALS)) for name, value in asdict(self).items()}


def disc_frame(upper: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit ``(across, normal)`` of the disc between the corners of the ``upper`` and ``lower``
    bodies on one slice: ``across`` along the mean of the facing endplates (anterior →
    posterior), ``normal`` perpendicular to it in the slice plane, towards the upper body."""
    across = (lower[PS] - lower[AS]) + (upper[PI] - upper[AI])
    across = across / np.linalg.norm(across)
    up = _inferior_mid(upper) - _superior_mid(lower)
    normal = up - (up @ across) * across
    return across, normal / np.linalg.norm(normal)


def measure_disc(u: np.ndarray, low: np.ndarray) -> DiscMeasurements:
    """The :class:`DiscMeasurements` of the disc between the upper body's corners ``u`` and the
    lower body's corners ``low`` (consecutive levels, one slice)."""
    across, normal = disc_frame(u, low)
    anterior = float((u[AI] - low[AS]) @ normal)
    posterior = float((u[PI] - low[PS]) @ normal)
    middle = float((_inferior_mid(u) - _superior_mid(low)) @ normal)
    body_height = (_body_height(u) + _body_height(low)) / 2
    slip = float((low[PS] - u[PI]) @ across)
    depth = float(np.linalg.norm(low[PS] - low[AS]))
    return DiscMeasurements(anterior, middle, posterior, middle / body_height, slip, PERCENT * slip / depth)


def body_size(corners: np.ndarray) -> tuple[float, float]:
    """``(height, depth)`` in mm of the body with these corners on its slice: the mean length of its
    anterior and posterior walls, and of its superior and inferior endplates."""
    height = (np.linalg.norm(corners[AI] - corners[AS]) + np.linalg.norm(corners[PI] - corners[PS])) / 2
    depth = (np.linalg.norm(corners[PS] - corners[AS]) + np.linalg.norm(corners[PI] - corners[AI])) / 2
    return float(height), float(depth)


def disc_depth(upper: np.ndarray, lower: np.ndarray) -> float:
    """Depth in mm of the disc between the ``upper`` and ``lower`` bodies' corners on one slice: the
    mean length of their facing endplates (the upper body's inferior, the lower body's superior)."""
    return float((np.linalg.norm(upper[PI] - upper[AI]) + np.linalg.norm(lower[PS] - lower[AS])) / 2)


def _superior_mid(corners: np.ndarray) -> np.ndarray:
    return (corners[AS] + corners[PS]) / 2


def _inferior_mid(corners: np.ndarray) -> np.ndarray:
    return (corners[PI] + corners[AI]) / 2


def _body_height(corners: np.ndarray) -> float:
    return float(np.linalg.norm(_superior_mid(corners) - _inferior_mid(corners)))
