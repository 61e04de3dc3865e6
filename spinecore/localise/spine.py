"""What localisation delivers: labelled vertebrae with per-slice quadrilaterals, and discs.

Voxel indices are the scan's canonical ``(slice, row, column)``; every ``*_mm`` value is
patient LPS millimetres (``Geometry.vox_to_mm``), the same whatever the file's array order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinecore.geometry import Geometry
from spinecore.levels import VERTEBRAE
from spinecore.localise.measure import DiscMeasurements, disc_frame, measure_disc

#: QC flag: the detector missed this body; its outline is inferred from its neighbours in the chain.
INFERRED_VERTEBRA = "inferred_vertebra"
#: QC flag: the level labels rest on a faint L5-S1 map or on the fallback anchor (the lowest disc seen).
WEAK_ANCHOR = "weak_anchor"
#: QC flag: the body is cut by the top or bottom edge of the field of view.
PARTIAL_VIEW = "partial_view"
#: Every QC flag, in the order a disc lists those of its two vertebrae.
FLAGS = (INFERRED_VERTEBRA, WEAK_ANCHOR, PARTIAL_VIEW)
#: QC flags of a body or disc whose outline is not the subject's own structure seen whole.
NOT_WHOLE = frozenset({INFERRED_VERTEBRA, PARTIAL_VIEW})


@dataclass(frozen=True)
class VertebraSlice:
    """The body outline on one sagittal slice: ``corners_vox`` / ``corners_mm`` are ``(4, 3)``,
    ordered anterior-superior, posterior-superior, posterior-inferior, anterior-inferior."""

    slice: int
    corners_vox: np.ndarray
    corners_mm: np.ndarray


@dataclass(frozen=True)
class Vertebra:
    """A labelled vertebral body. ``score`` in [0, 1] is the detector's mean body probability
    times the labelling's confidence; ``slices`` cover its slice extent in slice order;
    ``mid_slice`` is the slice of the extent nearest the body's centroid; ``flags`` are QC
    flags (:data:`FLAGS`). An inferred vertebra scores 0: the detector did not find it."""

    level: str
    score: float
    centroid_mm: np.ndarray
    slices: tuple[VertebraSlice, ...]
    mid_slice: int
    flags: tuple[str, ...] = ()

    def on_slice(self, k: int) -> VertebraSlice | None:
        return next((s for s in self.slices if s.slice == k), None)

    @property
    def mid(self) -> VertebraSlice:
        return self.on_slice(self.mid_slice)


@dataclass(frozen=True)
class Disc:
    """The disc between two labelled vertebrae: centre and unit ``normal`` (towards the head)
    in LPS mm, mean of anterior and posterior ``height_mm``, the slice it was measured on, and
    the QC ``flags`` of either vertebra (:data:`FLAGS`), and its
    :class:`~spinecore.localise.measure.DiscMeasurements` there (None next to an inferred vertebra)."""

    level: str
    center_mm: np.ndarray
    normal: np.ndarray
    height_mm: float
    slice: int
    flags: tuple[str, ...] = ()
    measurements: DiscMeasurements | None = None


@dataclass(frozen=True)
class Spine:
    """Localisation result for one sagittal series (vertebrae cranial → caudal)."""

    geometry: Geometry
    vertebrae: tuple[Vertebra, ...]
    discs: tuple[Disc, ...]
    source: str = ""

    def vertebra(self, level: str) -> Vertebra | None:
        return next((v for v in self.vertebrae if v.level == level), None)

    @property
    def levels(self) -> list[str]:
        return [v.level for v in self.vertebrae]

    def to_dict(self) -> dict:
        """The ``vertebrae.json`` document."""
        r = lambda a, n=3: [round(float(x), n) for x in np.ravel(a)]  # noqa: E731
        return {
            "source": self.source,
            "scan": {"shape": list(self.geometry.shape), "spacing_mm": r(self.geometry.spacing, 6),
                     "affine": self.geometry.affine.tolist(), "axis_codes": "".join(self.geometry.axis_codes),
                     "index_order": "slice, row, column", "mm_frame": "LPS"},
            "vertebrae": [{
                "level": v.level, "score": round(v.score, 4), "centroid_mm": r(v.centroid_mm), "mid_slice": v.mid_slice,
                "flags": list(v.flags), "slices": [{"slice": s.slice, "corners_vox": np.round(s.corners_vox, 3).tolist(),
                            "corners_mm": np.round(s.corners_mm, 3).tolist()} for s in v.slices],
            } for v in self.vertebrae],
            "discs": [{"level": d.level, "center_mm": r(d.center_mm), "normal": r(d.normal, 5),
                       "height_mm": round(d.height_mm, 3), "slice": d.slice, "flags": list(d.flags),
                       "measurements": d.measurements.to_dict() if d.measurements else None} for d in self.discs],
        }


def discs_between(vertebrae) -> tuple[Disc, ...]:
    """The discs between consecutive labelled vertebrae (cranial → caudal) that share a slice,
    measured on the shared slice nearest both mid slices from the facing endplate corners
    (:func:`~spinecore.localise.measure.measure_disc`)."""
    discs = []
    for upper, lower in zip(vertebrae[:-1], vertebrae[1:]):
        if VERTEBRAE.index(lower.level) - VERTEBRAE.index(upper.level) != 1:
            continue
        shared = {s.slice for s in upper.slices} & {s.slice for s in lower.slices}
        if not shared:
            continue
        k = min(shared, key=lambda s: abs(s - upper.mid_slice) + abs(s - lower.mid_slice))
        u, low = upper.on_slice(k).corners_mm, lower.on_slice(k).corners_mm
        _, normal = disc_frame(u, low)
        measured = measure_disc(u, low)
        centre = (u[2] + u[3] + low[0] + low[1]) / 4
        flags = tuple(f for f in FLAGS if f in upper.flags or f in lower.flags)
        # an inferred body's outline is a guess: its disc is cut and graded, not measured
        discs.append(Disc(f"{upper.level}-{lower.level}", centre, normal, measured.middle_height_mm, k, flags,
                          None if INFERRED_VERTEBRA in flags else measured))
    return tuple(discs)


def seen_whole(spine: Spine) -> set[str]:
    """Levels of the bodies and discs of ``spine`` seen whole: neither inferred from their neighbours
    nor cut by the view (:data:`NOT_WHOLE`). Only these show what sets one subject apart."""
    return {s.level for s in (*spine.vertebrae, *spine.discs) if not NOT_WHOLE.intersection(s.flags)}
