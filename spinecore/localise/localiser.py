"""Sagittal series → :class:`~spinecore.localise.spine.Spine`.

1. every slice goes through the network on the 1 mm working grid (body, disc, L5-S1 maps);
2. 3-D connected components of the body map (minus discs) are candidate vertebrae; those off
   the vertebral column are dropped;
3. the chain model (:mod:`~spinecore.localise.chain`) labels them, anchored on the L5-S1 disc
   (the network's L5-S1 map, even a speck or a faint one; failing that, a faint disc just below
   the lowest body, then the lowest disc seen between two bodies);
4. each labelled body gets a quadrilateral on every slice of its extent (:mod:`~.quads`);
   bodies cut by the field of view join the chain's ends, and bodies still missing between
   or beyond the labelled ones are inferred (:mod:`~.infer`), so no visible disc is dropped;
5. each pair of consecutive levels gets its disc (centre, normal, height).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from skimage.draw import polygon

from spinecore.errors import InputError, LocalisationError, ModelError
from spinecore.io.series import Plane, Series
from spinecore.levels import VERTEBRAE
from spinecore.localise.chain import Detection, label_chain, typical_spacing
from spinecore.localise.grid import GRID_MM, SliceGrid, normalise_slices, pad_to_multiple, to_grid
from spinecore.localise.infer import INFERIOR_CORNERS, SUPERIOR_CORNERS, fill_gaps, mirrored, share_in_view
from spinecore.localise.network import CHANNELS, LocaliserNet
from spinecore.localise.quads import quad_from_region
from spinecore.localise.spine import PARTIAL_VIEW, WEAK_ANCHOR, Spine, Vertebra, VertebraSlice, discs_between
from spinecore.models import load_model

#: A body must cover this much of one slice (mm²) to count (a lumbar body is ~1000 mm²).
MIN_BODY_AREA_MM2 = 150.0
#: Slices where a body covers at least this share of its largest area form its slice extent.
EXTENT_SHARE = 0.3
BATCH_SLICES = 8
#: L5-S1 evidence below which the network's anchor is not trusted, and the evidence given
#: instead to the lowest disc seen between two bodies.
ANCHOR_MIN = 0.3
FALLBACK_ANCHOR = 0.7
#: Failing that too, a disc the network shows only faintly (above this probability over at least
#: MIN_ANCHOR_PX pixels) just below the lowest body is the lowest disc seen (:func:`_faint_disc_below`).
FAINT_DISC = 0.3
#: Bodies reaching this close (mm) to the top or bottom edge are cut by the field of view.
BORDER_MM = 2.0
#: Candidates further than this (mm, across the image) from the fitted column are dropped.
OFF_COLUMN_MM = 30.0
#: Disc components smaller than this (working-grid pixels) are noise, unless they show the
#: L5-S1 disc (at least MIN_ANCHOR_PX pixels, one confident): that anchors the labels.
MIN_DISC_PX = 30
MIN_ANCHOR_PX = 5
#: In-plane erosion (working-grid pixels) before splitting the body map into vertebrae.
ERODE_PX = 2
#: A voxel belongs to a body or disc where the network's probability exceeds this.
PRESENT = 0.5
#: A component larger than this multiple of the median body area may be two bodies merged.
MERGED_AREA = 1.2
#: Extra working-grid pixels around a body's mask when its quadrilateral is fitted.
QUAD_MARGIN_PX = 3
#: A disc lies between two body centres when its projection on the segment joining them falls
#: within this span of it (0 = upper centre, 1 = lower) and it is closer to the segment than
#: OFF_SEGMENT times the segment's length.
BETWEEN_BODIES = (0.1, 0.9)
OFF_SEGMENT = 0.6
#: The typical distance between consecutive vertebral centres, used when fewer than two
#: confident bodies give it (a lumbar vertebra plus its disc is 35–40 mm).
TYPICAL_SPACING_MM = 38.0
#: A body at the edge of the view smaller than this share of a typical body is cut by it: its
#: centre is off, so it joins the labelled chain only at an end, after labelling.
CUT_SHARE = 0.6
#: A cut body or a disc joins an end of the chain when it lies within this many typical spacings.
END_REACH = 1.5
#: A body inferred beyond an end of the chain is kept when this share of its height is in view,
#: when the body map shows a sliver of it at least MIN_SLIVER_MM high (rows of its outline in
#: view at least half bone), or when the disc between it and the chain is at least half in view
#: (:func:`_disc_centre_in_view`; SPIDER's graders grade a disc the edge of the view cuts through);
#: otherwise that disc is barely in view, not one to grade.
MIN_SHARE_IN_VIEW = 0.25
MIN_SLIVER_MM = 4.0


@dataclass(frozen=True)
class _Candidate:
    mask: np.ndarray          # (slices, rows, cols) bool on the working grid
    areas: np.ndarray         # per-slice area (mm²)
    centre: np.ndarray        # (row, col) on the mid slice, working grid
    centroid: np.ndarray      # (slice, row, col), working grid
    body: float
    at_border: bool = False   # reaches the top or bottom edge of the view


@dataclass(frozen=True)
class _DiscCandidate:
    centre: np.ndarray        # (row, col), working grid
    normal: np.ndarray        # unit (row, col) across the disc, towards the feet
    l5s1: float


class Localiser:
    """A localiser model: ``Localiser.load(path)`` reads a model file (default: the bundled one);
    ``localiser(series)`` localises a sagittal :class:`Series`."""

    def __init__(self, network: LocaliserNet, metadata: dict):
        self.network, self.metadata = network.eval(), metadata

    @classmethod
    def load(cls, path: Path | None = None) -> "Localiser":
        checkpoint = load_model(path, "localiser")
        try:
            network = LocaliserNet(tuple(checkpoint["config"]["widths"]))
            network.load_state_dict(checkpoint["state_dict"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ModelError(path, f"localiser weights do not fit the network ({type(exc).__name__})") from None
        return cls(network, checkpoint.get("metadata", {}))

    def probabilities(self, series: Series) -> tuple[SliceGrid, np.ndarray]:
        """Channel probabilities ``(slices, channels, rows, cols)`` on the working grid."""
        grid = SliceGrid.for_spacing(series.shape[1:], series.spacing[1:])
        image = pad_to_multiple(to_grid(normalise_slices(series.array), grid))
        outputs = []
        with torch.inference_mode():
            for start in range(0, image.shape[0], BATCH_SLICES):
                batch = torch.from_numpy(image[start:start + BATCH_SLICES, None])
                outputs.append(torch.sigmoid(self.network(batch)).numpy())
        rows, cols = grid.shape
        return grid, np.concatenate(outputs)[:, :, :rows, :cols]

    def __call__(self, series: Series) -> Spine:
        if series.plane != Plane.SAGITTAL:
            raise InputError(series.source, f"localisation needs a sagittal series, not {series.plane.value}")
        return spine_from_maps(series, *self.probabilities(series))


def spine_from_maps(series: Series, grid: SliceGrid, prob: np.ndarray) -> Spine:
    """The labelled spine of ``series`` from the network's maps ``prob`` (:meth:`Localiser.probabilities`)."""
    body, disc, l5s1 = (prob[:, CHANNELS.index(c)] for c in ("body", "disc", "l5s1"))
    discs = _disc_candidates((disc > PRESENT) | (l5s1 > PRESENT), l5s1)
    candidates, cut = _candidates(body, disc > PRESENT, discs)
    if not candidates:
        raise LocalisationError(series.source, "no vertebral bodies found (is this a sagittal spine scan?)")
    spacing = typical_spacing([Detection(c.centre, c.body, 0, 0) for c in candidates],
                              default=TYPICAL_SPACING_MM / GRID_MM)
    gaps = _anchor_gaps(candidates, discs, spacing)
    if gaps.max() < ANCHOR_MIN:
        discs += _faint_disc_below(candidates, gaps, np.maximum(disc, l5s1), l5s1, spacing)
        gaps = _anchor_gaps(candidates, discs, spacing)
    detections = [Detection(c.centre, c.body, below, above)
                  for c, (below, above) in zip(candidates, _scores_from_gaps(gaps))]
    if max(max(d.l5s1_below, d.l5s1_above) for d in detections) < ANCHOR_MIN:
        raise LocalisationError(series.source, f"found {len(candidates)} vertebral bodies but no L5-S1 disc "
                                "to anchor the level labels (is the lumbosacral junction in view?)")
    labels, confidence = label_chain(detections, spacing)
    flags = (WEAK_ANCHOR,) if gaps.max() < FALLBACK_ANCHOR else ()
    labelled = _with_cut_ends([(labels[i], candidates[i]) for i in sorted(labels)], cut, spacing)
    vertebrae = []
    for n, (level, c) in enumerate(labelled):
        above = labelled[n - 1][1].centre if n > 0 else None
        below = labelled[n + 1][1].centre if n + 1 < len(labelled) else None
        down = _down_direction(c.centre, above, below)
        vertebrae.append(_vertebra(level, c, body, down, grid, series, confidence, flags))
    vertebrae = _mirror_ends(fill_gaps(vertebrae, flags), labelled, discs, spacing, body, grid, series, flags)
    return Spine(series.geometry, tuple(vertebrae), discs_between(vertebrae), series.source)


def _in_plane_structure() -> np.ndarray:
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    return structure


def _split_merged(mask: np.ndarray, discs: list[_DiscCandidate]) -> list[np.ndarray]:
    """Split a component holding two bodies joined where a thin disc was only partly seen: cut
    it along the plane of a disc whose centre lies in its middle half."""
    points = np.argwhere(mask)[:, 1:]
    top, bottom = points[:, 0].min(), points[:, 0].max()
    left, right = points[:, 1].min(), points[:, 1].max()
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in mask.shape[1:]], indexing="ij"), axis=-1)
    for d in discs:
        row, col = d.centre
        if not (left <= col <= right and top + 0.25 * (bottom - top) <= row <= bottom - 0.25 * (bottom - top)):
            continue
        below = ((grid - d.centre) @ d.normal) > 0
        parts = [mask & below[None], mask & ~below[None]]
        if min(p.sum() for p in parts) >= 0.25 * mask.sum():
            return parts
    return [mask]


def _candidates(body: np.ndarray, disc: np.ndarray,
                discs: list[_DiscCandidate]) -> tuple[list[_Candidate], list[_Candidate]]:
    """Candidate bodies on the column, head → feet: those for the chain, and the small ones cut
    by the top or bottom of the view (kept apart: their centres are off)."""
    # eroding in-plane cuts the thin bridges a narrow disc can leave between two bodies
    solid = ndimage.binary_erosion((body > PRESENT) & ~disc, _in_plane_structure(), iterations=ERODE_PX)
    components, _ = ndimage.label(solid)
    area = lambda m: m.sum(axis=(1, 2)) * GRID_MM ** 2  # noqa: E731  per-slice area (mm²)
    masks = []
    for index, region in enumerate(ndimage.find_objects(components), start=1):
        mask = np.zeros_like(solid)
        mask[region] = components[region] == index
        if area(mask).max() >= MIN_BODY_AREA_MM2:
            masks.append(mask)
    if not masks:
        return [], []
    typical = np.median([area(m).max() for m in masks])
    masks = [part for m in masks for part in (_split_merged(m, discs) if area(m).max() > MERGED_AREA * typical else [m])]
    border = max(1, int(round(BORDER_MM / GRID_MM))) + ERODE_PX  # the erosion also pulls bodies off the edge
    found = []
    for mask in masks:
        areas = area(mask)
        points = np.argwhere(mask)
        centroid = points.mean(axis=0)
        mid = int(round(centroid[0]))
        centre = np.argwhere(mask[mid]).mean(axis=0) if areas[mid] else centroid[1:]
        at_border = bool(mask[:, :border].any() or mask[:, -border:].any())
        found.append(_Candidate(mask, areas, centre, centroid, float(body[mask].mean()), at_border))
    on_column = sorted(_on_the_column(found), key=lambda c: c.centre[0])
    is_cut = [c.at_border and c.areas.max() < CUT_SHARE * typical for c in on_column]
    return [c for c, x in zip(on_column, is_cut) if not x], [c for c, x in zip(on_column, is_cut) if x]


def _on_the_column(candidates: list[_Candidate]) -> list[_Candidate]:
    """Drop candidates off the vertebral column: fit the column (column ~ quadratic in row,
    weighted by body area) and remove the worst outlier while it lies more than
    :data:`OFF_COLUMN_MM` from the fit."""
    kept = list(candidates)
    while len(kept) >= 4:
        rows = np.array([c.centre[0] for c in kept])
        cols = np.array([c.centre[1] for c in kept])
        weights = np.sqrt([c.areas.max() for c in kept])
        fit = np.polyval(np.polyfit(rows, cols, 2, w=weights), rows)
        worst = int(np.argmax(np.abs(cols - fit)))
        if abs(cols[worst] - fit[worst]) * GRID_MM <= OFF_COLUMN_MM:
            break
        kept.pop(worst)
    return kept


def disc_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit normal (towards the feet) of a disc from its in-plane (row, col) points:
    the normal is the direction of least spread."""
    centre = points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    return centre, (vectors[:, 0] if vectors[0, 0] >= 0 else -vectors[:, 0])


def _disc_candidates(disc: np.ndarray, l5s1: np.ndarray, min_px: int = MIN_DISC_PX) -> list[_DiscCandidate]:
    components, _ = ndimage.label(disc)
    found = []
    for index, region in enumerate(ndimage.find_objects(components), start=1):
        inside = components[region] == index
        # the L5-S1 map alone may show the lumbosacral disc as a speck: keep it as the anchor
        if inside.sum() < min_px and (inside.sum() < MIN_ANCHOR_PX or l5s1[region][inside].max() < ANCHOR_MIN):
            continue
        centre, normal = disc_plane((np.argwhere(inside) + [s.start for s in region])[:, 1:].astype(float))
        # the mean of the most confident fifth: a disc seen well on only a few slices still counts
        scores = np.sort(l5s1[region][inside])[::-1]
        found.append(_DiscCandidate(centre, normal, float(scores[:max(1, len(scores) // 5)].mean())))
    return found


def _discs_between(a: np.ndarray, b: np.ndarray, discs: list[_DiscCandidate]) -> list[_DiscCandidate]:
    """The discs lying between body centres ``a`` and ``b``, nearest ``a`` first."""
    segment = b - a
    length2 = max(float(segment @ segment), 1e-6)
    found = []
    for d in discs:
        t = float((d.centre - a) @ segment) / length2
        lateral = np.linalg.norm(d.centre - a - t * segment)
        if BETWEEN_BODIES[0] < t < BETWEEN_BODIES[1] and lateral < OFF_SEGMENT * np.sqrt(length2):
            found.append((t, d))
    return [d for _, d in sorted(found, key=lambda x: x[0])]


def _between(a: np.ndarray, b: np.ndarray, discs: list[_DiscCandidate]) -> float:
    """Highest L5-S1 probability among the discs lying between body centres ``a`` and ``b``
    (-1 when no disc lies there)."""
    return max((d.l5s1 for d in _discs_between(a, b, discs)), default=-1.0)


def _chain_ends(candidates: list[_Candidate], spacing: float) -> list[np.ndarray]:
    """The body centres head → feet, with one typical spacing further along the chain at each end."""
    centres = [c.centre for c in candidates]
    if len(centres) == 1:
        down = np.array([spacing, 0.0])
        return [centres[0] - down] + centres + [centres[0] + down]
    first = (centres[1] - centres[0]) / np.linalg.norm(centres[1] - centres[0]) * spacing
    last = (centres[-1] - centres[-2]) / np.linalg.norm(centres[-1] - centres[-2]) * spacing
    return [centres[0] - first] + centres + [centres[-1] + last]


def _faint_disc_below(candidates: list[_Candidate], gaps: np.ndarray, disc: np.ndarray, l5s1: np.ndarray,
                      spacing: float) -> list[_DiscCandidate]:
    """The disc the ``disc`` map shows only faintly (:data:`FAINT_DISC`) below the lowest body, when
    none is seen there and the chain is regular down to that body (a disc between it and the body
    above: not, say, a second piece of the sacrum). The sacrum under the lumbosacral disc is what
    the network misses most often (a T1's L5-S1 may show at ~0.5 on a few pixels)."""
    if len(gaps) < 3 or gaps[-1] >= 0 or gaps[-2] < 0:
        return []
    faint = _disc_candidates(disc > FAINT_DISC, l5s1, min_px=MIN_ANCHOR_PX)
    return _discs_between(*_chain_ends(candidates, spacing)[-2:], faint)[:1]


def _anchor_gaps(candidates: list[_Candidate], discs, spacing: float) -> np.ndarray:
    """L5-S1 probability of the disc in each gap of the chain, ends included (-1: no disc there)."""
    ends = _chain_ends(candidates, spacing)
    return np.array([_between(a, b, discs) for a, b in zip(ends[:-1], ends[1:])])


def _scores_from_gaps(gaps: np.ndarray) -> list[tuple[float, float]]:
    """Per candidate: the L5-S1 evidence of the disc between it and the next body below, and of
    the one above (beyond the ends: one typical spacing further along the chain), from the
    :func:`_anchor_gaps`."""
    if gaps.max() < ANCHOR_MIN and (gaps >= 0).any():
        # the network did not recognise L5-S1: fall back to the lowest disc seen between two
        # bodies (the usual counting convention), with weaker evidence
        lowest = int(np.flatnonzero(gaps >= 0)[-1])
        gaps = np.where(np.arange(len(gaps)) == lowest, FALLBACK_ANCHOR, 0.0)
    elif ANCHOR_MIN <= gaps.max() < FALLBACK_ANCHOR:
        # the network saw L5-S1 only faintly (below 0.5 the chain would rather name no body L5):
        # its best disc still counts as much as the fallback's
        gaps = gaps * (FALLBACK_ANCHOR / gaps.max())
    gaps = np.clip(gaps, 0.0, 1.0)
    return [(float(gaps[i + 1]), float(gaps[i])) for i in range(len(gaps) - 1)]


def _down_direction(centre, above, below) -> np.ndarray:
    if above is None and below is None:
        return np.array([1.0, 0.0])
    direction = (below if below is not None else centre) - (above if above is not None else centre)
    return direction / max(np.linalg.norm(direction), 1e-6)


def _vertebra(level, c: _Candidate, body, down, grid: SliceGrid, series: Series, confidence: float,
              flags: tuple[str, ...]) -> Vertebra:
    slices = []
    for k in np.flatnonzero(c.areas >= EXTENT_SHARE * c.areas.max()):
        rows, cols = np.nonzero(c.mask[k])
        margin = ERODE_PX + QUAD_MARGIN_PX
        r0, c0 = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
        window = (slice(r0, rows.max() + margin + 1), slice(c0, cols.max() + margin + 1))
        near = ndimage.binary_dilation(c.mask[k][window], iterations=ERODE_PX + 1)
        quad = quad_from_region(np.where(near, body[k][window], 0.0), (GRID_MM, GRID_MM), down)
        if quad is None:
            continue
        corners_vox = np.column_stack([np.full(4, float(k)), grid.to_scan(quad + [r0, c0])])
        slices.append(VertebraSlice(int(k), corners_vox, series.geometry.vox_to_mm(corners_vox)))
    extent = [s.slice for s in slices]
    mid = min(extent, key=lambda k: abs(k - c.centroid[0]))
    centroid = np.concatenate([[c.centroid[0]], grid.to_scan(c.centroid[1:])])
    flags = (*flags, *((PARTIAL_VIEW,) if c.at_border else ()))
    return Vertebra(level, c.body * confidence, series.geometry.vox_to_mm(centroid), tuple(slices), mid, flags)


def _with_cut_ends(labelled: list[tuple[str, _Candidate]], cut: list[_Candidate],
                   spacing: float) -> list[tuple[str, _Candidate]]:
    """``labelled`` with the body cut by the view just above its top and just below its bottom
    (when there is one within :data:`END_REACH` spacings and its level exists)."""
    if not labelled:
        return labelled
    top, bottom = labelled[0], labelled[-1]
    extended = list(labelled)
    for (level, end), step in ((top, -1), (bottom, 1)):
        index = VERTEBRAE.index(level) + step
        near = [c for c in cut if np.sign(c.centre[0] - end.centre[0]) == step
                and np.linalg.norm(c.centre - end.centre) < END_REACH * spacing]
        if near and 0 <= index < len(VERTEBRAE):
            nearest = min(near, key=lambda c: np.linalg.norm(c.centre - end.centre))
            extended.insert(0 if step < 0 else len(extended), (VERTEBRAE[index], nearest))
    return extended


def _mirror_ends(vertebrae: list[Vertebra], labelled: list[tuple[str, _Candidate]], discs: list[_DiscCandidate],
                 spacing: float, body: np.ndarray, grid: SliceGrid, series: Series,
                 flags: tuple[str, ...]) -> list[Vertebra]:
    """``vertebrae`` with a body inferred beyond each end of the chain where a disc is seen past
    the end body (:func:`~spinecore.localise.infer.mirrored` across that disc) and enough of the
    inferred body is in view (:data:`MIN_SHARE_IN_VIEW`, :data:`MIN_SLIVER_MM`)."""
    if not labelled:
        return vertebrae
    centres = [c.centre for _, c in labelled]
    out = list(vertebrae)
    for end, towards, step in ((0, 1, -1), (-1, -2, 1)):
        level = VERTEBRAE.index(out[end].level) + step
        if not 0 <= level < len(VERTEBRAE):
            continue
        along = np.array([step, 0.0]) if len(centres) == 1 else _down_direction(centres[end], centres[towards], None)
        beyond = _discs_between(centres[end], centres[end] + along * spacing * END_REACH, discs)
        if not beyond:
            continue
        disc_mm = series.geometry.vox_to_mm(np.concatenate([[out[end].mid_slice], grid.to_scan(beyond[0].centre)]))
        inferred = mirrored(out[end], VERTEBRAE[level], disc_mm, series.geometry, flags)
        if share_in_view(inferred, series.geometry) < MIN_SHARE_IN_VIEW and \
                _sliver_mm(inferred, body, grid) < MIN_SLIVER_MM and \
                not _disc_centre_in_view(out[end], out[towards] if len(out) > 1 else None, step, series.geometry):
            continue
        out.insert(0 if step < 0 else len(out), inferred)
    return out


def _disc_centre_in_view(end: Vertebra, inner: Vertebra | None, step: int, geometry) -> bool:
    """Whether the disc beyond the chain's ``end`` vertebra (towards the head for ``step`` -1, the
    feet for +1) has its centre inside the image rows on the end's mid slice: half a disc height
    (that of the disc between ``end`` and its ``inner`` neighbour) beyond the end's facing endplate."""
    if inner is None:
        return False
    upper, lower = (end, inner) if step < 0 else (inner, end)
    disc = discs_between([upper, lower])
    if not disc:
        return False
    facing = end.mid.corners_mm[SUPERIOR_CORNERS if step < 0 else INFERIOR_CORNERS]
    centre = facing.mean(axis=0) - step * disc[0].normal * disc[0].height_mm / 2
    row = geometry.mm_to_vox(centre[None])[0, 1]
    return bool(-0.5 <= row <= geometry.shape[1] - 0.5)


def _sliver_mm(vertebra: Vertebra, body: np.ndarray, grid: SliceGrid) -> float:
    """Height (mm) of bone the body map shows inside the in-view part of the vertebra's mid-slice
    outline: the working-grid rows of it that are at least half bone."""
    corners = grid.from_scan(vertebra.mid.corners_vox[:, 1:])
    rows, cols = polygon(corners[:, 0], corners[:, 1], shape=body.shape[1:])
    if not rows.size:
        return 0.0
    counts = np.bincount(rows)
    bone = np.bincount(rows, weights=body[vertebra.mid_slice, rows, cols] > PRESENT)
    return float((bone[counts > 0] >= 0.5 * counts[counts > 0]).sum() * GRID_MM)


_DEFAULT: Localiser | None = None


def localise(series: Series, model: Path | Localiser | None = None) -> Spine:
    """Find, label and outline the vertebrae of a sagittal ``series`` (default: bundled model)."""
    global _DEFAULT
    if isinstance(model, Localiser):
        return model(series)
    if model is not None:
        return Localiser.load(model)(series)
    if _DEFAULT is None:
        _DEFAULT = Localiser.load()
    return _DEFAULT(series)
