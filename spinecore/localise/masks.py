"""Vertebral bodies and discs as voxel masks in the scan's own grid, drawn from the per-slice
quadrilaterals: a body is its quadrilateral; a disc is the quadrilateral between the upper body's
inferior corners and the lower body's superior corners, on every slice both bodies share."""
from __future__ import annotations

import numpy as np
from skimage.draw import polygon

from spinecore.localise.spine import Spine, discs_between


def _filled(shape: tuple[int, int, int], outlines: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """A mask with each ``(slice, (4, 3) corners_vox)`` quadrilateral filled in."""
    mask = np.zeros(shape, bool)
    for k, corners in outlines:
        rows, cols = polygon(corners[:, 1], corners[:, 2], shape[1:])
        mask[k, rows, cols] = True
    return mask


def structure_masks(spine: Spine) -> dict[str, np.ndarray]:
    """``{name: bool (slice, row, column) mask}`` for every vertebra and every disc between two
    labelled neighbours, cranial → caudal with each disc after the vertebra above it. Disc masks
    exclude the bodies, so no voxel belongs to two structures."""
    shape = spine.geometry.shape
    bodies = {v.level: _filled(shape, [(s.slice, s.corners_vox) for s in v.slices]) for v in spine.vertebrae}
    discs = {d.level for d in discs_between(spine.vertebrae)}
    masks: dict[str, np.ndarray] = {}
    for upper, lower in zip(spine.vertebrae, (*spine.vertebrae[1:], None)):
        masks[upper.level] = bodies[upper.level]
        name = f"{upper.level}-{lower.level}" if lower is not None else ""
        if name not in discs:
            continue
        # upper anterior-, posterior-inferior corners, then lower posterior-, anterior-superior
        outlines = [(s.slice, np.stack([s.corners_vox[3], s.corners_vox[2], below.corners_vox[1], below.corners_vox[0]]))
                    for s in upper.slices if (below := lower.on_slice(s.slice)) is not None]
        masks[name] = _filled(shape, outlines) & ~bodies[upper.level] & ~bodies[lower.level]
    return masks
