"""Plane and weighting of a series, from geometry and header tags."""
from __future__ import annotations

import re

import numpy as np

from spinecore.geometry import Geometry
from spinecore.io.series import Plane, Weighting

_WEIGHTING_TOKEN = re.compile(r"(?<![A-Z0-9])(T1|T2|STIR|TIRM)(?:W|WI)?(?![A-Z0-9])")
_MAX_STIR_INVERSION_MS = 300.0  # short-tau inversion recovery; longer TIs are FLAIR-like


def slice_axis(geometry: Geometry) -> int:
    """Which array axis stacks the slices of a volume file.

    A length-1 axis if there is one; else the axis with clearly the coarsest spacing
    (thick slices); else (isotropic data) the axis with the fewest voxels.
    """
    shape, spacing = geometry.shape, geometry.spacing
    if 1 in shape:
        return shape.index(1)
    coarsest = int(np.argmax(spacing))
    others = [spacing[a] for a in range(3) if a != coarsest]
    if spacing[coarsest] > 1.25 * max(others):
        return coarsest
    return int(np.argmin(shape))


def plane_of(geometry: Geometry, axis: int) -> Plane:
    """Plane of the slices stacked along ``axis``."""
    return Plane.of_normal(geometry.directions[:, axis])


def weighting_from_text(text: str) -> Weighting:
    """Weighting named in free text (series description, protocol or file name)."""
    found = {m.group(1) for m in _WEIGHTING_TOKEN.finditer(re.sub(r"[^A-Z0-9]+", " ", text.upper()))}
    if found & {"STIR", "TIRM"}:
        return Weighting.STIR
    if found == {"T1"}:
        return Weighting.T1
    if found == {"T2"}:
        return Weighting.T2
    return Weighting.UNKNOWN


def weighting_from_timing(tr_ms: float | None, te_ms: float | None, ti_ms: float | None,
                          inversion_recovery: bool) -> Weighting:
    """Weighting from sequence timing when the description does not say."""
    if inversion_recovery and ti_ms is not None and 0 < ti_ms <= _MAX_STIR_INVERSION_MS:
        return Weighting.STIR
    if tr_ms is None or te_ms is None:
        return Weighting.UNKNOWN
    if te_ms >= 60 and tr_ms >= 1500:
        return Weighting.T2
    if te_ms <= 30 and tr_ms <= 1000:
        return Weighting.T1
    return Weighting.UNKNOWN
