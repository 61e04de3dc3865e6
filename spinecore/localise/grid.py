"""The localiser's working grid: every sagittal slice resampled to square pixels of
:data:`GRID_MM` and normalised to [0, 1] on its own.

Arrays here are ``(slices, rows, columns)`` in the canonical sagittal orientation; only rows
and columns are resampled (slices keep their index). A :class:`SliceGrid` maps working-grid
``(row, column)`` positions back to the scan's voxel indices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: Pixel size of the working grid (mm).
GRID_MM = 1.0
#: Network input sizes must be multiples of this (four 2× poolings).
SIZE_MULTIPLE = 16


@dataclass(frozen=True)
class SliceGrid:
    """Resampling between a scan's in-plane grid and the working grid.

    ``scale`` is scan pixels per working pixel along (rows, columns); ``shape`` is the
    working grid's (rows, columns) before padding to :data:`SIZE_MULTIPLE`.
    """

    scale: tuple[float, float]
    shape: tuple[int, int]

    @classmethod
    def for_spacing(cls, in_plane_shape: tuple[int, int], spacing: tuple[float, float]) -> "SliceGrid":
        shape = tuple(max(1, int(round(n * s / GRID_MM))) for n, s in zip(in_plane_shape, spacing))
        return cls(tuple(n / m for n, m in zip(in_plane_shape, shape)), shape)

    def to_scan(self, rows_cols: np.ndarray) -> np.ndarray:
        """Working-grid (row, column) positions → scan (row, column) indices (pixel centres align)."""
        return (np.asarray(rows_cols, dtype=float) + 0.5) * np.asarray(self.scale) - 0.5

    def from_scan(self, rows_cols: np.ndarray) -> np.ndarray:
        """Scan (row, column) indices → working-grid (row, column) positions (inverse of :meth:`to_scan`)."""
        return (np.asarray(rows_cols, dtype=float) + 0.5) / np.asarray(self.scale) - 0.5


def normalise_slices(array: np.ndarray) -> np.ndarray:
    """Each slice linearly mapped so its 1st–99.5th percentile spans [0, 1] (then clipped)."""
    array = np.asarray(array, dtype=np.float32)
    low = np.percentile(array, 1.0, axis=(1, 2), keepdims=True)
    high = np.percentile(array, 99.5, axis=(1, 2), keepdims=True)
    return np.clip((array - low) / np.maximum(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def to_grid(array: np.ndarray, grid: SliceGrid, labels: bool = False) -> np.ndarray:
    """Resample ``(slices, rows, columns)`` onto the working grid (unpadded): bilinear for
    images, nearest for label arrays (``labels=True``)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[:, None]
    mode = "nearest-exact" if labels else "bilinear"
    kwargs = {} if labels else {"align_corners": False}
    out = F.interpolate(tensor, size=grid.shape, mode=mode, **kwargs)[:, 0].numpy()
    return out.astype(array.dtype) if labels else out


def pad_to_multiple(array: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes at the end up to :data:`SIZE_MULTIPLE`."""
    pads = [(0, 0)] * (array.ndim - 2) + [(0, -(-n // SIZE_MULTIPLE) * SIZE_MULTIPLE - n) for n in array.shape[-2:]]
    return np.pad(array, pads, constant_values=value)
