"""Voxel ↔ patient geometry: one affine, array-index order, LPS millimetres.

Conventions used everywhere in spinecore:

* Arrays are indexed ``array[k, j, i]`` = ``(slice, row, column)``, the order of
  ``SimpleITK.GetArrayFromImage``.
* A :class:`Geometry` holds a 4×4 ``affine`` mapping the homogeneous array index
  ``(k, j, i, 1)`` to patient **LPS** millimetres ``(x, y, z, 1)`` (x → patient Left,
  y → Posterior, z → Superior; the DICOM/ITK convention). Spacing is therefore also in
  array order: ``(slice mm, row mm, column mm)``.
* RAS (3D Slicer's world frame) is LPS with x and y negated; use :meth:`Geometry.ras_affine`
  only at the Slicer edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
import SimpleITK as sitk

#: Farthest a voxel of a real scan lies from the scanner's origin (mm); beyond it a header is wrong.
MAX_POSITION_MM = 1e5

#: Unit vector in LPS for each anatomical direction letter.
DIRECTION_VECTORS: dict[str, np.ndarray] = {
    "L": np.array([1.0, 0.0, 0.0]),
    "R": np.array([-1.0, 0.0, 0.0]),
    "P": np.array([0.0, 1.0, 0.0]),
    "A": np.array([0.0, -1.0, 0.0]),
    "S": np.array([0.0, 0.0, 1.0]),
    "I": np.array([0.0, 0.0, -1.0]),
}


@dataclass(frozen=True)
class Geometry:
    """Placement of a 3-D voxel array in patient space.

    ``affine @ [k, j, i, 1]`` gives the LPS position (mm) of the centre of voxel
    ``array[k, j, i]``; ``shape`` is the array's ``(slices, rows, columns)``.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError("affine must be a finite 4x4 matrix")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise ValueError("affine is singular (zero spacing or degenerate directions)")
        affine = affine.copy()
        affine[3] = (0.0, 0.0, 0.0, 1.0)
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))

    @classmethod
    def from_parts(cls, origin, spacing, directions, shape) -> "Geometry":
        """Build from LPS ``origin``, ``spacing`` and unit ``directions`` (3×3, one column per
        array axis), all in array order ``(slice, row, column)``."""
        affine = np.eye(4)
        affine[:3, :3] = np.asarray(directions, float) * np.asarray(spacing, float)[None, :]
        affine[:3, 3] = origin
        return cls(affine, shape)

    # -- derived properties -------------------------------------------------------------
    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along (slice, row, column)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def origin(self) -> np.ndarray:
        """LPS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def directions(self) -> np.ndarray:
        """3×3 unit vectors (columns) of the slice, row and column axes in LPS."""
        return self.affine[:3, :3] / np.asarray(self.spacing)[None, :]

    @property
    def axis_codes(self) -> tuple[str, str, str]:
        """For each array axis, the LPS letter its index increases towards
        (e.g. ``('R', 'I', 'P')``)."""
        codes = []
        for axis in range(3):
            d = self.directions[:, axis]
            n = int(np.argmax(np.abs(d)))
            codes.append("LPS"[n] if d[n] > 0 else "RAI"[n])
        return tuple(codes)

    @property
    def ras_affine(self) -> np.ndarray:
        """The affine in RAS (3D Slicer's world frame): LPS with x and y negated."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine

    # -- coordinate conversion ----------------------------------------------------------
    def vox_to_mm(self, index) -> np.ndarray:
        """Array indices ``(..., 3)`` in (slice, row, column) order → LPS mm ``(..., 3)``."""
        index = np.asarray(index, dtype=np.float64)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def mm_to_vox(self, points) -> np.ndarray:
        """LPS mm ``(..., 3)`` → fractional array indices (slice, row, column)."""
        points = np.asarray(points, dtype=np.float64)
        return (points - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T

    # -- reorientation ------------------------------------------------------------------
    def reorientation(self, codes: tuple[str, str, str]) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
        """Axis permutation and flips that bring this geometry's axes closest to ``codes``.

        Returns ``(perm, flips)``: new axis ``n`` is old axis ``perm[n]``, reversed if
        ``flips[n]``. No resampling is involved, so oblique scans stay exact.
        """
        targets = np.stack([DIRECTION_VECTORS[c] for c in codes], axis=1)
        alignment = self.directions.T @ targets  # [old axis, new axis]
        best = max(permutations(range(3)), key=lambda p: sum(abs(alignment[p[n], n]) for n in range(3)))
        flips = tuple(bool(alignment[best[n], n] < 0) for n in range(3))
        return tuple(best), flips

    def reoriented(self, codes: tuple[str, str, str]) -> "Geometry":
        """This geometry with its axes permuted/flipped towards ``codes`` (see :meth:`reorient`)."""
        perm, flips = self.reorientation(codes)
        index_map = np.zeros((4, 4))
        index_map[3, 3] = 1.0
        for new_axis, old_axis in enumerate(perm):
            if flips[new_axis]:
                index_map[old_axis, new_axis] = -1.0
                index_map[old_axis, 3] = self.shape[old_axis] - 1
            else:
                index_map[old_axis, new_axis] = 1.0
        shape = tuple(self.shape[p] for p in perm)
        return Geometry(self.affine @ index_map, shape)

    def reorient(self, array: np.ndarray, codes: tuple[str, str, str]) -> tuple[np.ndarray, "Geometry"]:
        """Permute/flip ``array`` (laid out by this geometry) towards ``codes``; returns the
        new array and its geometry. Every voxel keeps its LPS position."""
        perm, flips = self.reorientation(codes)
        out = np.transpose(array, perm)
        for axis, flip in enumerate(flips):
            if flip:
                out = np.flip(out, axis=axis)
        return np.ascontiguousarray(out), self.reoriented(codes)

    # -- SimpleITK bridge ---------------------------------------------------------------
    def to_sitk(self, array: np.ndarray) -> sitk.Image:
        """A SimpleITK image of ``array`` placed by this geometry (ITK's index order is the
        reverse of the array's)."""
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(reversed(self.spacing)))
        image.SetOrigin(tuple(self.origin))
        image.SetDirection(tuple(self.directions[:, ::-1].ravel()))
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> "Geometry":
        """Geometry of a 3-D SimpleITK image (whose array is ``GetArrayFromImage(image)``)."""
        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3-D image, got {image.GetDimension()}-D")
        directions = np.array(image.GetDirection(), float).reshape(3, 3)[:, ::-1]
        spacing = tuple(reversed(image.GetSpacing()))
        shape = tuple(reversed(image.GetSize()))
        return cls.from_parts(image.GetOrigin(), spacing, directions, shape)


def rotation_matrix(axis, degrees: float) -> np.ndarray:
    """3×3 right-handed rotation about unit vector ``axis`` by ``degrees``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)
