"""Disc and vertebral-body volumes cut from a localised sagittal series (thesis 4.1.1, 7.2.1).

A volume is ``float32`` ``(slices, rows, columns)``: 9 sagittal slices centred on the structure's
own middle slice (zero where the scan has no slice), each slice resampled so the structure is
centred, its endplates horizontal (rows head → feet, columns anterior → posterior, square pixels),
and its intensities scaled so the median of the neighbouring vertebral bodies is 0.5, clipped to
[0, 1]. ``to_scan`` maps a volume index ``(s, r, c, 1)`` to the scan's ``(slice, row, column, 1)``;
``to_mm`` composes it with the scan affine (LPS mm).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.draw import polygon

from spinecore.io.series import Series
from spinecore.levels import VERTEBRAE
from spinecore.localise.measure import body_size, disc_depth
from spinecore.localise.spine import Spine, Vertebra

SLICES = 9
DISC_SHAPE = (SLICES, 112, 224)
VERTEBRA_SHAPE = (SLICES, 224, 224)
#: Disc volume width as a multiple of the mean endplate width: room for the canal behind the disc;
#: with the 1:2 aspect about 40 % of each neighbouring body is in view (thesis 4.1.1).
DISC_WIDTH_PER_ENDPLATE = 1.8
#: Vertebra volume side as a multiple of the body's larger dimension.
VERTEBRA_SIDE_PER_SIZE = 1.6
#: Volume coordinates this close to a voxel count as on it (rounding error of the index maps).
ON_GRID = 1e-6


@dataclass(frozen=True)
class StructureVolume:
    """A resampled volume around one disc (``level`` like ``"L4-L5"``) or vertebra (``"L4"``).

    ``array``: ``float32`` ``(9, rows, columns)``; ``to_scan``: 4×4 volume index → scan index;
    ``scan_affine``: the scan's index → LPS mm affine; ``present``: which of the 9 slices
    exist in the scan; ``pixel_mm``: in-plane pixel size; ``scan_shape``: the scan's
    ``(slices, rows, columns)``.
    """

    level: str
    array: np.ndarray
    to_scan: np.ndarray
    scan_affine: np.ndarray
    present: np.ndarray
    pixel_mm: float
    scan_shape: tuple[int, int, int]

    @property
    def to_mm(self) -> np.ndarray:
        """4×4 volume index → LPS mm."""
        return self.scan_affine @ self.to_scan

    @property
    def in_view(self) -> np.ndarray:
        """``(slices, rows, columns)`` bool: the voxels that sample the scan (their slice exists and
        they lie inside its rows and columns; the others are zero padding)."""
        index = self.scan_index(np.moveaxis(np.indices(self.array.shape), 0, -1))[..., 1:]
        inside = np.all((index >= -0.5) & (index <= np.array(self.scan_shape[1:]) - 0.5), axis=-1)
        return inside & self.present[:, None, None]

    def scan_index(self, volume_index) -> np.ndarray:
        """Volume indices ``(..., 3)`` → fractional scan indices ``(..., 3)``."""
        v = np.asarray(volume_index, float)
        return v @ self.to_scan[:3, :3].T + self.to_scan[:3, 3]

    def to_scan_grid(self, values: np.ndarray) -> np.ndarray:
        """Resample per-voxel ``values`` of this volume (e.g. a hotspot map) into the scan's voxel
        grid ``(slice, row, column)`` (:attr:`scan_shape`): trilinear, 0 outside the volume and on
        its absent slices. ``to_scan`` may be any affine (a T1 volume cut in the T2's frame lies obliquely in the T1's
        grid); a volume cut along the scan's own slices lands bilinearly on one scan slice per
        volume slice."""
        out = np.zeros(self.scan_shape, np.float32)
        corners = np.array(np.meshgrid(*[(0, n - 1) for n in self.array.shape], indexing="ij")).reshape(3, -1).T
        footprint = self.scan_index(corners)
        lo = np.clip(np.floor(footprint.min(0) - ON_GRID).astype(int), 0, None)
        hi = np.minimum(np.ceil(footprint.max(0) + ON_GRID).astype(int) + 1, self.scan_shape)
        if np.any(hi <= lo):
            return out
        scan = np.mgrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].reshape(3, -1)
        inverse = np.linalg.inv(self.to_scan)
        source = inverse[:3, :3] @ scan + inverse[:3, 3:4]
        snapped = np.round(source)
        source = np.where(np.abs(source - snapped) < ON_GRID, snapped, source)  # exact voxels stay inside
        shown = np.where(self.present[:, None, None], values, 0.0).astype(np.float32)
        sampled = ndimage.map_coordinates(shown, source, order=1, mode="constant", cval=0.0)
        out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = sampled.reshape(hi - lo)
        return out


def in_plane_frame(series: Series, centre_vox: np.ndarray, across_mm: np.ndarray, pixel_mm: float,
                    shape: tuple[int, int, int], mid_slice: int) -> np.ndarray:
    """4×4 volume index → scan index for a volume centred on ``centre_vox`` (row, col) whose columns
    run along the in-plane mm direction ``across_mm`` (row_mm, col_mm)."""
    row_mm, col_mm = series.spacing[1:]
    across = across_mm / np.linalg.norm(across_mm)
    down = np.array([across[1], -across[0]])  # perpendicular, pointing feet-wards when across is anterior → posterior
    if down[0] < 0:
        down = -down
    to_scan = np.eye(4)
    to_scan[0, 3] = mid_slice - (shape[0] - 1) / 2
    to_scan[1:3, 1] = down * pixel_mm / (row_mm, col_mm)
    to_scan[1:3, 2] = across * pixel_mm / (row_mm, col_mm)
    offset = to_scan[1:3, 1:3] @ ((np.array(shape[1:], float) - 1) / 2)
    to_scan[1:3, 3] = centre_vox - offset
    return to_scan


def _body_median(series: Series, vertebra: Vertebra, k: int) -> float | None:
    """Median intensity inside the body's quadrilateral on slice ``k`` (its mid-slice outline when
    ``k`` is outside its extent); ``None`` if the outline covers no pixel."""
    outline = vertebra.on_slice(k) or vertebra.mid
    rows, cols = polygon(outline.corners_vox[:, 1], outline.corners_vox[:, 2], series.shape[1:])
    if rows.size == 0:
        return None
    return float(np.median(series.array[k, rows, cols]))


def _resample(series: Series, to_scan: np.ndarray, shape: tuple[int, int, int],
              bodies: list[Vertebra]) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros(shape, np.float32)
    present = np.zeros(shape[0], bool)
    rr, cc = np.mgrid[0:shape[1], 0:shape[2]].astype(np.float64)
    coords = np.stack([rr.ravel(), cc.ravel()])
    plane = to_scan[1:3, 1:3] @ coords + to_scan[1:3, 3:4]
    for s in range(shape[0]):
        k = int(round(to_scan[0, 0] * s + to_scan[0, 3]))
        if not 0 <= k < series.shape[0]:
            continue
        medians = [m for m in (_body_median(series, v, k) for v in bodies) if m is not None]
        reference = float(np.median(medians)) if medians else float(np.median(series.array[k]))
        values = ndimage.map_coordinates(series.array[k], plane, order=1, mode="constant", cval=0.0)
        out[s] = np.clip(values.reshape(shape[1:]) * (0.5 / max(reference, 1e-6)), 0.0, 1.0)
        present[s] = True
    return out, present


def disc_volume(series: Series, spine: Spine, level: str) -> StructureVolume:
    """The 9×112×224 volume of disc ``level`` (e.g. ``"L4-L5"``), centred between the lower corners
    of the body above and the upper corners of the body below on the disc's own middle slice."""
    disc = next(d for d in spine.discs if d.level == level)
    upper_level, lower_level = level.split("-")
    upper, lower = spine.vertebra(upper_level), spine.vertebra(lower_level)
    k = disc.slice
    u = upper.on_slice(k).corners_vox[:, 1:]
    low = lower.on_slice(k).corners_vox[:, 1:]
    scale = np.array(series.spacing[1:])
    upper_endplate = (u[2] - u[3]) * scale      # anterior-inferior → posterior-inferior, mm
    lower_endplate = (low[1] - low[0]) * scale  # anterior-superior → posterior-superior, mm
    across = upper_endplate / np.linalg.norm(upper_endplate) + lower_endplate / np.linalg.norm(lower_endplate)
    depth = disc_depth(upper.on_slice(k).corners_mm, lower.on_slice(k).corners_mm)
    pixel = DISC_WIDTH_PER_ENDPLATE * depth / DISC_SHAPE[2]
    centre = (u[2] + u[3] + low[0] + low[1]) / 4
    to_scan = in_plane_frame(series, centre, across, pixel, DISC_SHAPE, k)
    array, present = _resample(series, to_scan, DISC_SHAPE, [upper, lower])
    return StructureVolume(level, array, to_scan, series.geometry.affine, present, float(pixel), series.shape)


def vertebra_volume(series: Series, spine: Spine, level: str) -> StructureVolume:
    """The 9×224×224 volume of vertebral body ``level``, centred on its mid-slice quadrilateral."""
    vertebra = spine.vertebra(level)
    quad = vertebra.mid.corners_vox[:, 1:]
    scale = np.array(series.spacing[1:])
    top = (quad[1] - quad[0]) * scale
    bottom = (quad[2] - quad[3]) * scale
    across = top / np.linalg.norm(top) + bottom / np.linalg.norm(bottom)
    height, depth = body_size(vertebra.mid.corners_mm)
    pixel = VERTEBRA_SIDE_PER_SIZE * max(depth, height) / VERTEBRA_SHAPE[2]
    to_scan = in_plane_frame(series, quad.mean(axis=0), across, pixel, VERTEBRA_SHAPE, vertebra.mid_slice)
    array, present = _resample(series, to_scan, VERTEBRA_SHAPE, [vertebra])
    return StructureVolume(level, array, to_scan, series.geometry.affine, present, float(pixel), series.shape)


def disc_volumes(series: Series, spine: Spine) -> list[StructureVolume]:
    """Volumes of every disc the localiser found, cranial → caudal (levels not in view are absent)."""
    return [disc_volume(series, spine, d.level) for d in sorted(spine.discs, key=lambda d: VERTEBRAE.index(d.level.split("-")[0]))]


def vertebra_volumes(series: Series, spine: Spine) -> list[StructureVolume]:
    """Volumes of every vertebral body the localiser found, cranial → caudal."""
    return [vertebra_volume(series, spine, v.level) for v in spine.vertebrae]
