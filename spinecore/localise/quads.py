"""Vertebral-body quadrilaterals from a 2-D body mask or probability map.

One derivation serves both sides: reference corners are derived from annotated masks with
it, and predicted corners from the network's body probability, so the two are comparable.

Arrays are 2-D ``(rows, columns)`` of a canonical sagittal slice (rows head → feet,
columns anterior → posterior). Corners are returned as ``(4, 2)`` float ``(row, column)``
indices ordered anterior-superior, posterior-superior, posterior-inferior, anterior-inferior.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import find_contours

#: Corner order of every quadrilateral in spinecore.
CORNER_NAMES = ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior")
#: (sign along the feet-ward axis, sign along the posterior axis) of each corner.
_CORNER_SIGNS = np.array([(-1, -1), (-1, 1), (1, 1), (1, -1)], dtype=float)


def outline(region: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Sub-pixel outline points ``(n, 2)`` (row, column) of ``region`` (bool mask or probability)."""
    padded = np.pad(np.asarray(region, dtype=np.float32), 1)
    contours = find_contours(padded, level)
    if not contours:
        return np.empty((0, 2))
    return np.concatenate(contours) - 1.0


def _min_area_rectangle(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, two unit axes (rows of a 2×2) and half-extents of the minimum-area rectangle."""
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:
        hull = points
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best = None
    for angle in angles:
        axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        projected = hull @ axes.T
        low, high = projected.min(axis=0), projected.max(axis=0)
        area = np.prod(high - low)
        if best is None or area < best[0]:
            best = (area, axes, low, high)
    _, axes, low, high = best
    return ((low + high) / 2) @ axes, axes, (high - low) / 2


def quad_from_region(region: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0),
                     down: np.ndarray | None = None) -> np.ndarray | None:
    """Four corners of the body in ``region`` (see module doc), or ``None`` if it is empty.

    The minimum-area rectangle around the outline (in mm, so anisotropic pixels are handled)
    sets the body's frame; ``down`` (a (row, column) direction towards the feet, default
    straight down the image) picks which rectangle axis runs along the spine. Each corner is
    the outline point furthest out along that corner's diagonal of the rectangle.
    """
    points = outline(region)
    if len(points) < 3:
        return None
    scale = np.asarray(spacing, dtype=float)
    mm = points * scale
    centre, axes, half = _min_area_rectangle(mm)
    hint = np.array([1.0, 0.0]) if down is None else np.asarray(down, dtype=float) * scale
    along = int(np.argmax(np.abs(axes @ hint)))
    feet = axes[along] * np.sign(axes[along] @ hint)
    posterior = np.array([-feet[1], feet[0]])
    if posterior[1] < 0:
        posterior = -posterior
    extent = np.maximum([half[along], half[1 - along]], 1e-6)
    relative = mm - centre
    normalised = np.stack([relative @ feet / extent[0], relative @ posterior / extent[1]], axis=1)
    return np.array([points[np.argmax(normalised @ signs)] for signs in _CORNER_SIGNS])
