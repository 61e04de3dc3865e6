"""Disc volumes of the other streams of a study, in register with the sagittal T2 (thesis 6.1.1, 6.2.1).

* **Sagittal T1** (:func:`t1_disc_volumes`): the T1 sampled at the very LPS positions of the T2 disc
  volume's voxels, through both scans' affines (never assuming the two grids are aligned), so a
  T1 volume voxel shows the same anatomy as the T2 volume voxel of the same index. ``float32``
  ``(9, 112, 224)``, each slice scaled so the median of the two vertebral bodies is 0.5 (the bodies'
  outlines come from the T2 localisation), clipped to [0, 1]; zero where the T1 has no data.
* **Axial** (:func:`axial_disc_volumes`): ``float32`` ``(3, 224, 224)`` = (axial slices feet → head,
  rows anterior → posterior, columns towards patient left): the scan's
  mid-axial slice of the disc and its two neighbours; in-plane centred on the mid-sagittal point of
  the disc (halfway between where the disc's anterior and posterior lines cross the mid-axial plane),
  rows along that anterior → posterior line, square pixels, a box twice the anterior–posterior
  distance wide; each volume scaled so its :data:`AXIAL_REFERENCE_PERCENTILE` th percentile is 1,
  clipped to [0, 1].

Each comes as a :class:`~spinecore.extract.StructureVolume` whose ``to_scan`` / ``to_mm`` map
volume indices to *its own* scan's indices / LPS mm. Slices (or voxels) the scan lacks are zero,
and a stream a disc lacks altogether is absent from the returned dict.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import polygon

from spinecore.errors import StreamError
from spinecore.extract.volumes import StructureVolume, in_plane_frame
from spinecore.io.series import Plane, Series
from spinecore.localise.spine import Spine

AXIAL_SHAPE = (3, 224, 224)
#: Axial box side as a multiple of the disc's anterior–posterior distance (thesis 6.1.1).
AXIAL_SIDE_PER_DEPTH = 2.0
#: The percentile of an axial volume scaled to 1.
AXIAL_REFERENCE_PERCENTILE = 99.0
#: Header values that must agree (when both series carry them) for two series to be fused.
SAME_STUDY_KEYS = ("PatientID", "StudyInstanceUID")


def _check_same_study(series: Series, reference: Series) -> None:
    for key in SAME_STUDY_KEYS:
        mine, theirs = series.metadata.get(key), reference.metadata.get(key)
        if mine and theirs and mine != theirs:
            raise StreamError(series.source, f"{key} {mine!r} differs from the sagittal T2's {theirs!r}: "
                                             "not the same patient and study")


def _sample(series: Series, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear samples of ``series`` at fractional scan indices ``index`` ``(3, n)`` and which of
    them lie inside the scan (within half a voxel of a voxel centre); 0 outside."""
    upper = np.array(series.shape, float)[:, None] - 0.5
    inside = np.all((index >= -0.5) & (index <= upper), axis=0)
    clamped = np.clip(index, 0, np.array(series.shape, float)[:, None] - 1)
    values = ndimage.map_coordinates(series.array, clamped, order=1, mode="nearest")
    return np.where(inside, values, 0.0).astype(np.float32), inside


def _volume_slices(series: Series, to_scan: np.ndarray, shape: tuple[int, int, int]):
    """For each slice ``s`` of a volume of ``shape`` whose indices ``to_scan`` maps into ``series``
    and that touches the scan: ``(s, samples, inside)``, both ``(rows, cols)`` (see :func:`_sample`)."""
    rr, cc = np.mgrid[0:shape[1], 0:shape[2]].astype(np.float64)
    for s in range(shape[0]):
        grid = np.stack([np.full(rr.size, float(s)), rr.ravel(), cc.ravel(), np.ones(rr.size)])
        raw, inside = _sample(series, (to_scan @ grid)[:3])
        if inside.any():
            yield s, raw.reshape(shape[1:]), inside.reshape(shape[1:])


def _body_reference(raw: np.ndarray, inside: np.ndarray, outlines: list[np.ndarray]) -> float:
    """Median of ``raw`` (one volume slice) inside the body outlines (volume (row, col) corners)."""
    mask = np.zeros(raw.shape, bool)
    for corners in outlines:
        rows, cols = polygon(corners[:, 0], corners[:, 1], raw.shape)
        mask[rows, cols] = True
    mask &= inside
    values = raw[mask] if mask.any() else raw[inside]
    return float(np.median(values)) if values.size else 1.0


def t1_disc_volume(t1: Series, t2_volume: StructureVolume, spine: Spine) -> StructureVolume | None:
    """The T1 disc volume on the grid of ``t2_volume`` (a :func:`~spinecore.extract.disc_volume` of
    the T2 that ``spine`` was localised on); ``None`` when the T1 does not hold the disc's centre."""
    to_scan = np.linalg.inv(t1.geometry.affine) @ t2_volume.to_mm
    shape = t2_volume.array.shape
    centre = to_scan[:3, :3] @ ((np.array(shape) - 1) / 2) + to_scan[:3, 3]
    if not _sample(t1, centre[:, None])[1][0]:
        return None
    from_mm = np.linalg.inv(t2_volume.to_mm)
    upper, lower = (spine.vertebra(level) for level in t2_volume.level.split("-"))
    out = np.zeros(shape, np.float32)
    present = np.zeros(shape[0], bool)
    for s, raw, inside in _volume_slices(t1, to_scan, shape):
        k = round(float(t2_volume.to_scan[0, 0] * s + t2_volume.to_scan[0, 3]))
        outlines = [(np.c_[(v.on_slice(k) or v.mid).corners_mm, np.ones(4)] @ from_mm.T)[:, 1:3] for v in (upper, lower)]
        reference = _body_reference(raw, inside, outlines)
        out[s] = np.clip(raw * (0.5 / max(reference, 1e-6)), 0.0, 1.0)
        present[s] = True
    return StructureVolume(t2_volume.level, out, to_scan, t1.geometry.affine, present, t2_volume.pixel_mm, t1.shape)


def t1_disc_volumes(t1: Series, t2_volumes: list[StructureVolume], spine: Spine,
                    t2: Series) -> dict[str, StructureVolume]:
    """T1 volumes of the discs of ``t2_volumes`` that the T1 holds, by level; raises
    :class:`~spinecore.errors.StreamError` when it holds none of them (another patient's or
    another frame of reference's geometry: fusing would be silently wrong) or its headers name
    another patient or study than ``t2``'s."""
    _check_same_study(t1, t2)
    found = {v.level: t1_disc_volume(t1, v, spine) for v in t2_volumes}
    found = {level: v for level, v in found.items() if v is not None}
    if t2_volumes and not found:
        raise StreamError(t1.source, "the T1 series does not overlap any disc of the sagittal T2 (another patient's "
                                     "or another frame of reference's geometry?)")
    return found


def _line_crossing(a: np.ndarray, b: np.ndarray, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Where the line through LPS points ``a`` and ``b`` crosses the plane (``point``, ``normal``)."""
    direction = b - a
    denominator = direction @ normal
    if abs(denominator) < 1e-6:
        return (a + b) / 2
    return a + direction * ((point - a) @ normal) / denominator


def axial_disc_volume(axial: Series, spine: Spine, level: str) -> StructureVolume | None:
    """The 3×224×224 axial volume of disc ``level`` (thesis 6.1.1); ``None`` when the disc's
    centre lies outside the axial slab."""
    disc = next(d for d in spine.discs if d.level == level)
    upper, lower = (spine.vertebra(name).on_slice(disc.slice) for name in level.split("-"))
    mid = float(axial.geometry.mm_to_vox(disc.center_mm)[0])
    if not -0.5 <= mid <= axial.shape[0] - 0.5:
        return None
    k = round(float(np.clip(mid, 0, axial.shape[0] - 1)))
    point = axial.geometry.vox_to_mm([k, 0, 0])
    normal = axial.geometry.directions[:, 0]
    anterior = _line_crossing(upper.corners_mm[3], lower.corners_mm[0], point, normal)
    posterior = _line_crossing(upper.corners_mm[2], lower.corners_mm[1], point, normal)
    a, p = axial.geometry.mm_to_vox(np.stack([anterior, posterior]))[:, 1:]
    row_mm, col_mm = axial.spacing[1:]
    down = (p - a) * (row_mm, col_mm)
    depth = float(np.linalg.norm(down))
    pixel = AXIAL_SIDE_PER_DEPTH * depth / AXIAL_SHAPE[2]
    to_scan = in_plane_frame(axial, (a + p) / 2, np.array([-down[1], down[0]]), pixel, AXIAL_SHAPE, k)
    out = np.zeros(AXIAL_SHAPE, np.float32)
    present = np.zeros(AXIAL_SHAPE[0], bool)
    for s, raw, _ in _volume_slices(axial, to_scan, AXIAL_SHAPE):
        out[s], present[s] = raw, True
    reference = np.percentile(out[present], AXIAL_REFERENCE_PERCENTILE)
    out = np.clip(out / max(float(reference), 1e-6), 0.0, 1.0)
    return StructureVolume(level, out, to_scan, axial.geometry.affine, present, float(pixel), axial.shape)


def axial_disc_volumes(axials: list[Series], spine: Spine, levels: list[str], t2: Series) -> dict[str, StructureVolume]:
    """Axial volumes of the discs ``levels`` that an axial series of ``axials`` holds, by level
    (per disc, the series whose slab centre is nearest the disc centre); raises
    :class:`~spinecore.errors.StreamError` when a series is not axial, names another patient or
    study than ``t2``, or when no disc lies in any of them."""
    for axial in axials:
        if axial.plane != Plane.AXIAL:
            raise StreamError(axial.source, f"a {axial.plane.value} series, not an axial one")
        _check_same_study(axial, t2)
    found = {}
    for level in levels:
        centre = next(d.center_mm for d in spine.discs if d.level == level)
        by_distance = sorted(axials, key=lambda a: abs(a.geometry.mm_to_vox(centre)[0] - (a.shape[0] - 1) / 2))
        volume = next((v for v in (axial_disc_volume(a, spine, level) for a in by_distance) if v is not None), None)
        if volume is not None:
            found[level] = volume
    if axials and levels and not found:
        raise StreamError(axials[0].source, "no axial series holds any disc of the sagittal T2 (another patient's "
                                            "or another frame of reference's geometry?)")
    return found
