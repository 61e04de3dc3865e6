"""Vertebrae the detector missed, inferred from the labelled chain so that no visible disc is
dropped because one of its two bodies was not found.

* between two labelled vertebrae with a level gap, each missing body is interpolated from
  the two (corner by corner, slice by slice);
* beyond the end of the chain, the end vertebra is mirrored across a disc seen past it, in a
  plane through the disc's centre parallel to the end body's facing endplate (the disc map
  shows the disc even when the body beyond it is dark, wedge-shaped or cut by the view; its
  centre is reliable even from a speck of it, its own orientation is not).

Inferred vertebrae carry :data:`~spinecore.localise.spine.INFERRED_VERTEBRA` and score 0.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from spinecore.geometry import Geometry
from spinecore.levels import VERTEBRAE
from spinecore.localise.spine import INFERRED_VERTEBRA, PARTIAL_VIEW, Vertebra, VertebraSlice

#: Corner order of a quadrilateral mirrored head ↔ feet (superior and inferior corners swap).
_MIRRORED_CORNERS = [3, 2, 1, 0]
#: Corners of the superior and of the inferior endplate.
SUPERIOR_CORNERS, INFERIOR_CORNERS = [0, 1], [3, 2]


def _interpolated(upper: Vertebra, lower: Vertebra, level: str, t: float, flags: tuple[str, ...]) -> Vertebra | None:
    """The body at fraction ``t`` of the way from ``upper`` to ``lower``, on their shared slices."""
    shared = sorted({s.slice for s in upper.slices} & {s.slice for s in lower.slices})
    if not shared:
        return None
    blend = lambda a, b: (1 - t) * a + t * b  # noqa: E731
    slices = tuple(VertebraSlice(k, blend(upper.on_slice(k).corners_vox, lower.on_slice(k).corners_vox),
                                 blend(upper.on_slice(k).corners_mm, lower.on_slice(k).corners_mm)) for k in shared)
    mid = min(shared, key=lambda k: abs(k - blend(upper.mid_slice, lower.mid_slice)))
    return Vertebra(level, 0.0, blend(upper.centroid_mm, lower.centroid_mm), slices, mid, flags)


def fill_gaps(vertebrae: list[Vertebra], flags: tuple[str, ...] = ()) -> list[Vertebra]:
    """``vertebrae`` (cranial → caudal) with every level missing between two of them interpolated."""
    filled = vertebrae[:1]
    for upper, lower in zip(vertebrae[:-1], vertebrae[1:]):
        first, last = VERTEBRAE.index(upper.level), VERTEBRAE.index(lower.level)
        for step in range(1, last - first):
            inferred = _interpolated(upper, lower, VERTEBRAE[first + step], step / (last - first),
                                    (INFERRED_VERTEBRA, *flags))
            if inferred is not None:
                filled.append(inferred)
        filled.append(lower)
    return filled


def mirrored(vertebra: Vertebra, level: str, disc_mm: np.ndarray, geometry: Geometry,
             flags: tuple[str, ...] = ()) -> Vertebra:
    """The body at ``level`` (above or below ``vertebra``) beyond the disc centred at ``disc_mm``:
    ``vertebra``'s outline mirrored across the plane through ``disc_mm`` parallel to its endplate
    facing the disc (on its mid slice); flagged partial when it leaves the view."""
    below = VERTEBRAE.index(level) > VERTEBRAE.index(vertebra.level)
    anterior, posterior = vertebra.mid.corners_mm[INFERIOR_CORNERS if below else SUPERIOR_CORNERS]
    normal = np.cross(posterior - anterior, geometry.directions[:, 0])
    normal /= np.linalg.norm(normal)
    centre_mm = np.asarray(disc_mm, dtype=float)
    reflect = lambda p: p - 2 * np.outer((p - centre_mm) @ normal, normal)  # noqa: E731
    slices = []
    for s in vertebra.slices:
        corners_mm = reflect(s.corners_mm)[_MIRRORED_CORNERS]
        slices.append(VertebraSlice(s.slice, geometry.mm_to_vox(corners_mm), corners_mm))
    inferred = Vertebra(level, 0.0, reflect(vertebra.centroid_mm[None])[0], tuple(slices), vertebra.mid_slice)
    partial = (PARTIAL_VIEW,) if share_in_view(inferred, geometry) < 1.0 else ()
    return replace(inferred, flags=(INFERRED_VERTEBRA, *flags, *partial))


def share_in_view(vertebra: Vertebra, geometry: Geometry) -> float:
    """Share of the body's height (head → feet, on its mid slice) inside the image rows."""
    rows = vertebra.mid.corners_vox[:, 1]
    top, bottom = rows.min(), rows.max()
    inside = min(bottom, geometry.shape[1] - 1) - max(top, 0)
    return float(np.clip(inside / max(bottom - top, 1e-6), 0.0, 1.0))
