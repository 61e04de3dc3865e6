"""The typed objects the reader returns: :class:`Series` and :class:`Study`.

Reader contract (every series, whatever the file format):

* ``Series.array`` is ``float32`` with shape ``(slices, rows, columns)``, rescale
  slope/intercept already applied, finite, non-empty.
* The array is in the **canonical orientation of its plane** (index increases towards):

  ========  ==============  =====================  ======================
  plane     slice axis      rows                   columns
  ========  ==============  =====================  ======================
  sagittal  patient right   head → feet (``I``)    anterior → posterior
  axial     feet → head     anterior → posterior   patient right → left
  coronal   ant. → post.    head → feet            patient right → left
  ========  ==============  =====================  ======================

  i.e. axis codes ``('R','I','P')``, ``('S','P','L')`` and ``('P','I','L')`` — the way a
  scanner's default DICOM ordering displays. Reorientation only permutes/flips axes
  (never resamples), so oblique acquisitions keep their exact geometry.
* ``Series.geometry`` maps array indices to LPS mm (see :mod:`spinecore.geometry`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from spinecore.errors import SeriesNotFoundError
from spinecore.geometry import Geometry


class Plane(str, enum.Enum):
    """Acquisition plane, from the direction of the slice normal."""

    SAGITTAL = "sagittal"
    AXIAL = "axial"
    CORONAL = "coronal"

    @property
    def canonical_codes(self) -> tuple[str, str, str]:
        return _CANONICAL_CODES[self]

    @classmethod
    def of_normal(cls, normal) -> "Plane":
        """The plane whose normal is closest to ``normal`` (an LPS vector)."""
        return (cls.SAGITTAL, cls.CORONAL, cls.AXIAL)[int(np.argmax(np.abs(normal)))]


_CANONICAL_CODES = {
    Plane.SAGITTAL: ("R", "I", "P"),
    Plane.AXIAL: ("S", "P", "L"),
    Plane.CORONAL: ("P", "I", "L"),
}


class Weighting(str, enum.Enum):
    """MR contrast weighting."""

    T1 = "T1"
    T2 = "T2"
    STIR = "STIR"
    UNKNOWN = "unknown"


@dataclass(frozen=True, eq=False)
class Series:
    """One image series: voxels plus where they are in the patient.

    Attributes:
        array: ``float32`` ``(slices, rows, columns)`` in the canonical orientation of ``plane``.
        geometry: index → LPS mm map of ``array``.
        plane: acquisition plane.
        weighting: contrast weighting (from DICOM tags or the file name).
        source: file or folder (``archive.zip!member/`` for zip members) it was read from.
        description: SeriesDescription or file name.
        uid: SeriesInstanceUID (with a ``.N`` suffix when one UID held several stacks),
            or the file name for volume files.
        metadata: selected header values (patient id, study date, TR/TE/TI, …).
        dicom: the source DICOM headers (pixel data dropped), one per slice, in no particular
            order (place them by ImagePositionPatient); empty for volume files.
    """

    array: np.ndarray
    geometry: Geometry
    plane: Plane
    weighting: Weighting
    source: str
    description: str = ""
    uid: str = ""
    metadata: dict = field(default_factory=dict)
    dicom: tuple = field(default=(), repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.geometry.spacing

    def summary(self) -> dict:
        """JSON-ready description (no voxels)."""
        return {
            "uid": self.uid,
            "description": self.description,
            "source": self.source,
            "plane": self.plane.value,
            "weighting": self.weighting.value,
            "shape": list(self.shape),
            "spacing_mm": [round(s, 6) for s in self.spacing],
            "origin_mm": [round(float(v), 6) for v in self.geometry.origin],
            "axis_codes": "".join(self.geometry.axis_codes),
            "affine": self.geometry.affine.tolist(),
        }


@dataclass(frozen=True)
class Study:
    """All series read from one input (folder, zip or file)."""

    source: str
    series: tuple[Series, ...]

    def select(self, plane: Plane | None = None, weighting: Weighting | None = None) -> list[Series]:
        """Series matching ``plane`` and ``weighting`` (``None`` matches any)."""
        return [
            s for s in self.series
            if (plane is None or s.plane == plane) and (weighting is None or s.weighting == weighting)
        ]

    def sagittal(self, weighting: Weighting | None = Weighting.T2) -> Series:
        """The sagittal series to analyse: of ``weighting`` if there is one (the most slices
        wins), otherwise any sagittal series; raises :class:`SeriesNotFoundError` if none."""
        candidates = self.select(Plane.SAGITTAL, weighting) or self.select(Plane.SAGITTAL)
        if not candidates:
            raise SeriesNotFoundError(self.source, f"no sagittal series (found: {self.inventory()})")
        return max(candidates, key=lambda s: (s.shape[0], s.shape[1] * s.shape[2]))

    def inventory(self) -> str:
        """One-line list of what the study holds, e.g. ``'axial T2 ×3, sagittal T1 ×1'``."""
        counts: dict[str, int] = {}
        for s in self.series:
            key = f"{s.plane.value} {s.weighting.value}"
            counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{k} ×{n}" for k, n in sorted(counts.items())) or "nothing"
