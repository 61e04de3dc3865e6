"""Boxes from hotspots and their overlap with reference boxes (thesis 5.3.2).

A box is ``(row0, col0, row1, col1)`` in volume pixels, end-exclusive; a volume's boxes are a list
with one entry per slice, ``None`` where the slice has none.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[int, int, int, int]


def box_of(mask: np.ndarray) -> Box | None:
    """The smallest box around the ``True`` pixels of a 2-D mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def hotspot_boxes(heatmap: np.ndarray, percentile: float = 95.0, hottest_region: bool = True) -> list[Box | None]:
    """Threshold ``heatmap`` ``(slices, rows, cols)`` at the ``percentile`` of its values (whole
    volume) and take the minimum box per slice of the mask (thesis 5.3.2). With ``hottest_region``
    only the mask's connected region (3-D, face neighbours) holding the most heat is boxed, so
    scattered speckle away from the finding does not stretch the boxes."""
    threshold = np.percentile(heatmap, percentile)
    mask = (heatmap > threshold) if threshold > 0 else (heatmap > 0)
    if hottest_region and mask.any():
        regions, count = ndimage.label(mask)
        heat = ndimage.sum(heatmap, regions, index=np.arange(1, count + 1))
        mask = regions == 1 + int(np.argmax(heat))
    return [box_of(m) for m in mask]


def whole_volume_boxes(shape: tuple[int, int, int], present=None) -> list[Box | None]:
    """The baseline: every (present) slice boxed whole."""
    present = np.ones(shape[0], bool) if present is None else np.asarray(present)
    return [(0, 0, shape[1], shape[2]) if p else None for p in present]


def _area(b: Box | None) -> int:
    return 0 if b is None else (b[2] - b[0]) * (b[3] - b[1])


def _intersection(a: Box | None, b: Box | None) -> int:
    if a is None or b is None:
        return 0
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def volume_iou(predicted: list[Box | None], reference: list[Box | None]) -> float:
    """Summed intersection over summed union across the slices (thesis Fig. 5.17's overall IoU)."""
    inter = sum(_intersection(p, r) for p, r in zip(predicted, reference))
    union = sum(_area(p) + _area(r) - _intersection(p, r) for p, r in zip(predicted, reference))
    return inter / union if union else 0.0
