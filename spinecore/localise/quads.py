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
#: Outward (feet, posterior) sign pair of each side: superior, posterior, inferior, anterior.
_SIDES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=float)
#: A side's direction comes from its outline points within this share of the body's half-extent
#: of the side's centre (its middle 60 %), clear of the rounded corners.
SIDE_MIDDLE = 0.6
#: Fewest middle points (about 1 per pixel of outline) a side needs to be fitted.
MIN_SIDE_POINTS = 3
#: Sides meeting at a smaller angle than arcsin(this) (30°) make no corner.
MIN_CORNER_SINE = 0.5
#: How far (mm) a corner may be moved from the outermost outline point on its diagonal towards where
#: its sides' lines meet: the rounding of a soft outline on the 1 mm working grid (the localiser's
#: corners sat ~1.5 mm inside the phantoms' sharp corners), not a real body's rounded rim.
CORNER_RESTORE_MM = 1.5


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
    straight down the image) picks which rectangle axis runs along the spine. Each outline point
    belongs to the side of the frame it is nearest (superior, posterior, inferior, anterior);
    each side's line has the direction of its middle points (:data:`SIDE_MIDDLE`) and passes
    through its outermost point. Each corner starts at the outline point furthest out along its
    diagonal of the rectangle and moves towards where its two sides' lines meet, by at most
    :data:`CORNER_RESTORE_MM`: a corner rounded by a soft map or by sampling returns to the endplate
    and wall lines instead of sitting inside both, while a truly rounded rim keeps its corner near
    the bone. Sides that cannot be fitted leave the corner at the outline point.
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
    lines = _side_lines(mm, normalised, np.stack([feet, posterior]))
    corners = []
    for signs in _CORNER_SIGNS:
        extreme = mm[np.argmax(normalised @ signs)]
        met = _meeting_point(lines[(signs[0], 0.0)], lines[(0.0, signs[1])])
        shift = np.zeros(2) if met is None else met - extreme
        corners.append(extreme + shift * min(1.0, CORNER_RESTORE_MM / max(np.linalg.norm(shift), 1e-9)))
    return np.array(corners) / scale


def _side_lines(mm: np.ndarray, normalised: np.ndarray, frame: np.ndarray) -> dict:
    """Per side (keyed by its outward (feet, posterior) sign pair, e.g. ``(-1, 0)`` superior): the
    line ``(unit outward normal, offset)`` of the points ``x`` with ``x @ normal == offset`` in mm,
    or ``None`` when too few of the side's points lie in its middle. ``mm`` are the outline points
    ``(n, 2)``, ``normalised`` their (feet, posterior) coordinates in the body frame scaled to
    [-1, 1], ``frame`` the unit feet and posterior directions as rows."""
    side = np.argmax(normalised @ _SIDES.T, axis=1)
    lines = {}
    for index, outward in enumerate(_SIDES):
        own = side == index
        running = int(outward[0] != 0)  # the frame coordinate that runs along this side
        middle = mm[own & (np.abs(normalised[:, running]) < SIDE_MIDDLE)]
        key = tuple(float(x) for x in outward)
        if len(middle) < MIN_SIDE_POINTS:
            lines[key] = None
            continue
        _, vectors = np.linalg.eigh(np.cov((middle - middle.mean(axis=0)).T))
        normal = vectors[:, 0] * np.sign(vectors[:, 0] @ (outward @ frame))
        lines[key] = (normal, float((mm[own] @ normal).max()))
    return lines


def _meeting_point(a, b) -> np.ndarray | None:
    """Where lines ``a`` and ``b`` (``(normal, offset)`` or ``None``) meet; ``None`` when either is
    missing or they cross at less than :data:`MIN_CORNER_SINE` (no corner between them)."""
    if a is None or b is None:
        return None
    normals = np.stack([a[0], b[0]])
    if abs(np.linalg.det(normals)) < MIN_CORNER_SINE:
        return None
    return np.linalg.solve(normals, [a[1], b[1]])
