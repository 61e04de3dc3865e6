"""The whole sagittal scan as one volume: the input of the raw-volume baseline (thesis 6.3).

No localisation: the scan's 9 sagittal slices centred on its middle slice (zero where the scan has no
slice, so a single mid-sagittal image sits on the middle channel, as :mod:`~spinecore.extract.volumes`
places it), each resampled onto a square field of view (the scan's larger in-plane extent, centred,
square pixels, zero outside) of :data:`SCAN_SIDE` × :data:`SCAN_SIDE` pixels, rows head → feet,
columns anterior → posterior. Intensities are scaled like the disc volumes' but without vertebral
bodies to measure: the median of the slice's tissue (pixels above its Otsu threshold) becomes 0.5,
then clipped to [0, 1].
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from spinecore.extract.volumes import SLICES, StructureVolume, in_plane_frame
from spinecore.io.series import Series

#: In-plane side of the whole-scan volume. The thesis used 512; 256 keeps a lumbar disc about 8
#: pixels high on a typical 30 cm field of view and costs a quarter of 512's compute on a CPU.
SCAN_SIDE = 256
SCAN_SHAPE = (SLICES, SCAN_SIDE, SCAN_SIDE)
#: The ``level`` of the whole-scan :class:`StructureVolume`.
WHOLE_SCAN = "scan"


def tissue_median(image: np.ndarray) -> float:
    """Median of the pixels of a 2-D ``image`` above its Otsu threshold (its maximum when none are)."""
    above = image[image > threshold_otsu(image)] if image.max() > image.min() else image.ravel()
    return float(np.median(above))


def scan_volume(series: Series) -> StructureVolume:
    """The whole-scan volume of ``series``: ``float32`` :data:`SCAN_SHAPE` ``(slices, rows, columns)``
    with its map back to the scan's voxels (``to_scan``) and which of the 9 slices exist (``present``)."""
    n_slices, rows, cols = series.shape
    row_mm, col_mm = series.spacing[1:]
    pixel = max(rows * row_mm, cols * col_mm) / SCAN_SIDE
    centre = np.array([(rows - 1) / 2, (cols - 1) / 2])
    to_scan = in_plane_frame(series, centre, np.array([0.0, 1.0]), pixel, SCAN_SHAPE, n_slices // 2)
    rr, cc = np.mgrid[0:SCAN_SIDE, 0:SCAN_SIDE].astype(np.float64)
    plane = to_scan[1:3, 1:3] @ np.stack([rr.ravel(), cc.ravel()]) + to_scan[1:3, 3:4]
    out = np.zeros(SCAN_SHAPE, np.float32)
    present = np.zeros(SLICES, bool)
    for s in range(SLICES):
        k = int(round(to_scan[0, 3])) + s
        if not 0 <= k < n_slices:
            continue
        values = ndimage.map_coordinates(series.array[k], plane, order=1, mode="constant", cval=0.0)
        scale = 0.5 / max(tissue_median(series.array[k]), 1e-6)
        out[s] = np.clip(values.reshape(SCAN_SHAPE[1:]) * scale, 0.0, 1.0)
        present[s] = True
    return StructureVolume(WHOLE_SCAN, out, to_scan, series.geometry.affine, present, float(pixel), series.shape)
