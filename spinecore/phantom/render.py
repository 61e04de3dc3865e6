"""Rasterising the phantom anatomy into MR-like images (T1 and T2 at once).

Every structure is a soft membership function of body coordinates (partial-volume edges),
painted in anatomical layers onto one canvas per contrast.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from spinecore.geometry import Geometry
from spinecore.levels import DISCS, VERTEBRAE
from spinecore.phantom.anatomy import DiscShape, Patient, SpineShape, VertebraShape

# Tissue intensities (T1, T2), arbitrary units on a 0..1000 scale.
TISSUE = {
    "fat": (850, 620), "muscle": (330, 170), "abdomen": (380, 300), "gas": (5, 5), "fluid": (150, 800),
    "vessel": (60, 40), "marrow": (560, 360), "cortex": (60, 50), "posterior_bone": (420, 260),
    "annulus": (280, 130), "herniated": (300, 300), "csf": (130, 1000), "cord": (380, 430),
    "ligament": (70, 60), "modic1": (230, 680), "modic2": (860, 600), "modic3": (90, 90),
    "haemangioma": (760, 720),
}
NUCLEUS_T2_BY_PFIRRMANN = (880, 700, 480, 280, 160)
NUCLEUS_T1 = 330
BULGE_MM = (0.0, 1.5, 3.0, 4.5)
HERNIATION_RADIUS_MM = (0.0, 2.5, 4.0, 6.0)
ENDPLATE_DEFECT_DEPTH_MM = (0.0, 2.0, 3.5, 5.5)
STENOSIS_NARROWING = (0.0, 0.25, 0.45, 0.65)  # fraction of the canal depth lost at the disc
CORTEX_MM = 1.3
PLL_MM = 1.5  # posterior longitudinal ligament between the vertebral wall and the canal
#: Label-mask values: vertebral bodies 1..9 (T10..S1), discs 11..18 (T10-T11..L5-S1), canal CSF 20.
LABELS = {**{v: n for n, v in enumerate(VERTEBRAE, start=1)}, **{d: n for n, d in enumerate(DISCS, start=11)},
          "canal": 20}
#: Values of the lesion mask (a second label map: lesions overlap the anatomy of LABELS).
LESIONS = {"endplate_defect": 1, "marrow": 2, "herniation": 3, "stenosis": 4}


def _soft(signed_distance: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume membership: 1 inside, 0 outside, linear ramp ``width`` mm wide."""
    return np.clip(0.5 - signed_distance / max(width, 1e-3), 0.0, 1.0)


def _edges(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start points, unit directions and outward unit normals of a convex polygon's edges."""
    starts = corners
    ends = np.roll(corners, -1, axis=0)
    directions = (ends - starts) / np.linalg.norm(ends - starts, axis=1, keepdims=True)
    normals = np.stack([directions[:, 1], -directions[:, 0]], axis=1)
    centre = corners.mean(axis=0)
    flip = np.einsum("ij,ij->i", normals, centre - starts) > 0
    normals[flip] *= -1
    return starts, directions, normals


def polygon_distance(y: np.ndarray, z: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) to a convex polygon, exact along its edges."""
    starts, _, normals = _edges(corners)
    d = (y[:, None] - starts[None, :, 0]) * normals[None, :, 0] + (z[:, None] - starts[None, :, 1]) * normals[None, :, 1]
    return d.max(axis=1)


class Canvas:
    """Images of one scan grid in several contrasts, painted layer by layer."""

    def __init__(self, geometry: Geometry, body_from_lps: tuple[np.ndarray, np.ndarray],
                 contrasts: tuple[str, ...], rng: np.random.Generator):
        self.geometry = geometry
        self.contrasts = contrasts
        rotation, translation = body_from_lps
        index = np.indices(geometry.shape, dtype=np.float32).reshape(3, -1).T
        lps = geometry.vox_to_mm(index)
        body = (lps - translation) @ rotation.T
        self.x, self.y, self.z = (body[:, n].astype(np.float32) for n in range(3))
        self.images = {c: np.zeros(self.x.size, np.float32) for c in contrasts}
        self.labels = np.zeros(self.x.size, np.uint8)
        self.lesions = np.zeros(self.x.size, np.uint8)
        spacing = geometry.spacing
        self.inplane_width = float(np.mean(spacing[1:]))
        self.lateral_width = float(spacing[0])
        texture = gaussian_filter(rng.standard_normal(geometry.shape).astype(np.float32), sigma=(0.7, 5, 5))
        self.texture = (texture / (texture.std() + 1e-6)).ravel()

    def select(self, lo, hi) -> np.ndarray:
        """Flat indices of voxels inside the body-coordinate box ``lo``..``hi`` (x, y, z)."""
        m = (self.x >= lo[0]) & (self.x <= hi[0]) & (self.y >= lo[1]) & (self.y <= hi[1])
        m &= (self.z >= lo[2]) & (self.z <= hi[2])
        return np.flatnonzero(m)

    def paint(self, idx: np.ndarray, membership: np.ndarray, tissue: str | dict[str, float],
              texture: float = 0.0, label: int | None = None, lesion: int | None = None) -> None:
        """Blend ``tissue`` into the voxels ``idx`` with weights ``membership``; voxels at least
        half covered also take ``label`` (see :data:`LABELS`) and ``lesion`` (:data:`LESIONS`)
        when given."""
        if idx.size == 0:
            return
        if label is not None:
            self.labels[idx[membership >= 0.5]] = label
        if lesion is not None:
            self.lesions[idx[membership >= 0.5]] = lesion
        values = tissue if isinstance(tissue, dict) else dict(zip(("T1", "T2"), TISSUE[tissue]))
        scale = 1.0 + texture * self.texture[idx] if texture else 1.0
        for contrast in self.contrasts:
            image = self.images[contrast]
            image[idx] = image[idx] * (1 - membership) + membership * values[contrast] * scale

    # -- primitives -------------------------------------------------------------------
    def prism(self, corners: np.ndarray, half_width: float, tissue, shrink: float = 0.0,
              texture: float = 0.0, x_centre: float = 0.0, label: int | None = None, lesion: int | None = None) -> None:
        """A convex sagittal polygon extruded laterally over ``|x - x_centre| <= half_width``."""
        pad = 2 * self.inplane_width + 2 * self.lateral_width
        lo = (x_centre - half_width - pad, *(corners.min(axis=0) - pad))
        hi = (x_centre + half_width + pad, *(corners.max(axis=0) + pad))
        idx = self.select(lo, hi)
        sd = polygon_distance(self.y[idx], self.z[idx], corners) + shrink
        m = _soft(sd, self.inplane_width) * _soft(np.abs(self.x[idx] - x_centre) - half_width + shrink, self.lateral_width)
        self.paint(idx, m, tissue, texture, label, lesion)

    def ellipsoid(self, centre, axes: np.ndarray, radii, tissue, texture: float = 0.0, label: int | None = None,
                  lesion: int | None = None) -> None:
        """An ellipsoid with centre (x, y, z), unit axes (rows) and radii."""
        reach = float(max(radii)) + 2 * self.inplane_width + self.lateral_width
        idx = self.select(np.asarray(centre) - reach, np.asarray(centre) + reach)
        offset = np.stack([self.x[idx], self.y[idx], self.z[idx]], axis=1) - np.asarray(centre)
        local = offset @ np.asarray(axes).T / np.asarray(radii)
        r = np.sqrt((local**2).sum(axis=1))
        m = _soft((r - 1) * float(min(radii)), self.inplane_width)
        self.paint(idx, m, tissue, texture, label, lesion)


def _local_frame(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(anterior, up) unit vectors in the sagittal (y, z) plane."""
    anterior = np.array([up[1], -up[0]])
    if anterior[0] > 0:
        anterior = -anterior
    return anterior, up


def _axes3(anterior: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rows: lateral, anterior, up as 3-D (x, y, z) unit vectors."""
    return np.array([[1.0, 0, 0], [0, anterior[0], anterior[1]], [0, up[0], up[1]]])


def paint_body(canvas: Canvas, patient: Patient, spine: SpineShape, rng: np.random.Generator) -> None:
    """Skin fat, muscle, abdomen (with bowel gas and fluid), psoas, aorta and vena cava."""
    front = min(v.corners[:, 0].min() for v in spine.vertebrae.values())
    back = max(v.corners[:, 0].max() for v in spine.vertebrae.values()) + patient.canal_depth + 8
    anterior_skin = front - patient.abdomen_depth - patient.fat_anterior
    posterior_skin = back + patient.back_muscle + patient.fat_posterior
    centre_y, half_ap = (anterior_skin + posterior_skin) / 2, (posterior_skin - anterior_skin) / 2
    hw = patient.body_half_width
    idx = np.arange(canvas.x.size)
    x, y = canvas.x[idx], canvas.y[idx]

    def ellipse_sd(cy: float, ay: float, ax: float) -> np.ndarray:
        r = np.sqrt(((y - cy) / ay) ** 2 + (x / ax) ** 2)
        return (r - 1) * min(ay, ax)

    canvas.paint(idx, _soft(ellipse_sd(centre_y, half_ap, hw), canvas.inplane_width), "fat", texture=0.05)
    inner_cy = centre_y + (patient.fat_anterior - patient.fat_posterior) / 2
    inner_ay = half_ap - (patient.fat_anterior + patient.fat_posterior) / 2
    canvas.paint(idx, _soft(ellipse_sd(inner_cy, inner_ay, hw - 20), canvas.inplane_width), "muscle", texture=0.08)
    cavity = _soft(ellipse_sd(inner_cy - 10, inner_ay - 12, hw - 35), canvas.inplane_width)
    cavity *= _soft(y - (front - 4), canvas.inplane_width)
    canvas.paint(idx, cavity, "abdomen", texture=0.15)
    # bowel: a few gas and fluid pockets in the abdomen
    z_lo, z_hi = float(canvas.z.min()), float(canvas.z.max())
    for _ in range(int(rng.integers(6, 14))):
        centre = (rng.uniform(-60, 60), rng.uniform(anterior_skin + 30, front - 15), rng.uniform(z_lo, z_hi))
        radius = rng.uniform(5, 16)
        canvas.ellipsoid(centre, np.eye(3), (radius, radius * rng.uniform(0.6, 1.0), radius * rng.uniform(0.8, 1.6)),
                         "gas" if rng.random() < 0.5 else "fluid")
    # psoas and great vessels run alongside the lumbar bodies
    lumbar = [spine.vertebrae[v] for v in ("L1", "L2", "L3", "L4", "L5")]
    for side in (-1, 1):
        for v, radius in zip(lumbar, (8, 12, 16, 20, 23)):
            c = v.centre
            canvas.ellipsoid((side * (v.half_width + radius * 0.7), c[0] + 3, c[1]), np.eye(3),
                             (radius, radius * 0.9, v.height * 0.9), "muscle", texture=0.08)
    for v in lumbar[:4] + [spine.vertebrae[t] for t in ("T10", "T11", "T12")]:
        c, a = v.centre, min(v.corners[:, 0])
        canvas.ellipsoid((12.0, a - 12, c[1]), np.eye(3), (10, 10, v.height), "vessel")
        canvas.ellipsoid((-20.0, a - 10, c[1]), np.eye(3), (11, 9, v.height), "vessel")


def _canal_line(spine: SpineShape) -> np.ndarray:
    """The anterior wall of the spinal canal as a dense (y, z) polyline, cranial first."""
    points = []
    for v in spine.vertebrae.values():
        points += [v.corners[1], v.corners[2]]
    points += [seg[1] for seg in spine.sacrum[:3]]
    points = np.array(points)
    dense = [points[0]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(2, int(np.linalg.norm(b - a) / 0.5))
        dense += list(a + (b - a) * t for t in np.linspace(0, 1, n)[1:])
    dense = np.array(dense)
    tangent = np.gradient(dense, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal[normal[:, 0] < 0] *= -1  # point posteriorly (+y)
    return np.concatenate([dense + normal * PLL_MM, normal], axis=1)


def paint_canal(canvas: Canvas, patient: Patient, spine: SpineShape) -> None:
    """Posterior elements, ligamentum flavum, the CSF-filled canal and the cord/conus."""
    for level, v in spine.vertebrae.items():
        if level != "S1":
            _posterior_elements(canvas, patient, v)
    line = _canal_line(spine)
    points, normals = line[:, :2], line[:, 2:]
    arclength = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    depth = np.full(len(points), patient.canal_depth)
    depth[points[:, 1] > spine.vertebrae["T12"].centre[1]] *= 0.85  # thoracic canal is smaller
    sacral_top = spine.vertebrae["S1"].corners[1][1]
    taper = np.clip((points[:, 1] - (sacral_top - 40)) / 40, 0.15, 1)
    depth *= taper
    narrowed = depth.copy()
    for disc in spine.discs.values():
        s_disc = arclength[np.argmin(np.linalg.norm(points - (disc.corners[1] + disc.corners[2]) / 2, axis=1))]
        narrowed *= 1 - STENOSIS_NARROWING[disc.grades.stenosis] * np.exp(-0.5 * ((arclength - s_disc) / 3.5) ** 2)

    hw = patient.canal_half_width
    lo = (-hw - 6, points[:, 0].min() - 5, points[:, 1].min() - 5)
    hi = (hw + 6, points[:, 0].max() + patient.canal_depth + 10, points[:, 1].max() + 5)
    idx = canvas.select(lo, hi)
    yz = np.stack([canvas.y[idx], canvas.z[idx]], axis=1)
    _, nearest = cKDTree(points).query(yz)
    t = np.einsum("ij,ij->i", yz - points[nearest], normals[nearest])
    x = canvas.x[idx]
    full, eff = depth[nearest], narrowed[nearest]
    beyond_ends = (nearest == 0) | (nearest == len(points) - 1)

    def canal_membership(d: np.ndarray, half_width: np.ndarray, front: np.ndarray | float = 0.0) -> np.ndarray:
        r = np.sqrt((x / half_width) ** 2 + ((t - front - d / 2) / np.maximum(d / 2, 0.5)) ** 2)
        return _soft((r - 1) * np.minimum(half_width, np.maximum(d / 2, 0.5)), canvas.inplane_width) * ~beyond_ends

    canvas.paint(idx, canal_membership(full + 3.0, np.full_like(full, hw + 2)), "ligament")
    # stenosis: at the disc level, disc material (intermediate signal) pushes the sac back from the front
    csf_front = full - eff
    csf_half_width = hw * np.sqrt(np.maximum(eff, 0.5) / np.maximum(full, 0.5))
    sac = canal_membership(eff, csf_half_width, csf_front)
    lost = np.clip(canal_membership(full, np.full_like(full, hw)) - sac, 0.0, 1.0)
    canvas.paint(idx, lost, "herniated")
    canvas.paint(idx, sac, "csf", label=LABELS["canal"])
    canvas.lesions[idx[(lost >= 0.5) & (full - eff > 0.1 * full)]] = LESIONS["stenosis"]  # visibly narrowed
    conus = spine.vertebrae["L1"].corners[2][1]  # the cord ends at the L1 lower endplate
    r = np.sqrt((x / 5.0) ** 2 + ((t - csf_front - eff / 2) / 4.0) ** 2)
    cord = _soft((r - 1) * 4.0, canvas.inplane_width) * _soft(conus - canvas.z[idx], 3.0) * ~beyond_ends
    canvas.paint(idx, cord, "cord")


def _posterior_elements(canvas: Canvas, patient: Patient, v: VertebraShape) -> None:
    """Pedicles, lamina, facets and spinous process of one vertebra."""
    anterior, up = _local_frame(v.up)
    c, h, d = v.centre, v.height, v.depth
    wall = -d / 2
    canal_back = wall - PLL_MM - patient.canal_depth
    hw = patient.canal_half_width
    # (u range along anterior, v range along up, x range)
    boxes = [
        ((canal_back + 2, wall + 1), (-0.05 * h, 0.45 * h), (hw - 1, hw + 7)),          # pedicles
        ((canal_back - 7, canal_back), (-0.75 * h, 0.3 * h), (0, hw + 9)),               # lamina
        ((canal_back - 6, canal_back + 4), (-0.9 * h, -0.35 * h), (hw + 3, hw + 14)),    # inferior facets
        ((canal_back - 7 - 26 * patient.size, canal_back - 6), (-0.6 * h, 0.05 * h), (0, 4)),  # spinous
    ]
    for (u0, u1), (v0, v1), (x0, x1) in boxes:
        corners = np.array([c + anterior * u1 + up * v1, c + anterior * u0 + up * v1,
                            c + anterior * u0 + up * v0, c + anterior * u1 + up * v0])
        half_width, x_centre = (x1 - x0) / 2, (x1 + x0) / 2
        if x0 == 0:
            canvas.prism(corners, x1, "posterior_bone", texture=0.05)
        else:
            for side in (-1, 1):
                canvas.prism(corners, half_width, "posterior_bone", texture=0.05, x_centre=side * x_centre)


def paint_vertebrae(canvas: Canvas, patient: Patient, spine: SpineShape, rng: np.random.Generator) -> None:
    """Vertebral bodies (cortex + marrow, the patient's marrow foci), sacrum, Modic bands and endplate defects."""
    def marrow(level: str) -> dict[str, float]:
        factor = patient.marrow_signal.get(level, 1.0)
        return {contrast: value * factor for contrast, value in zip(("T1", "T2"), TISSUE["marrow"])}

    for level, v in spine.vertebrae.items():
        canvas.prism(v.corners, v.half_width, "cortex", label=LABELS[level])
        canvas.prism(v.corners, v.half_width, marrow(level), shrink=CORTEX_MM, texture=0.1)
        for focus in patient.marrow_foci.get(level, ()):
            upper = v.corners[0] + focus.depth * (v.corners[1] - v.corners[0])
            lower = v.corners[3] + focus.depth * (v.corners[2] - v.corners[3])
            centre = (focus.side * v.half_width, *(upper + focus.height * (lower - upper)))
            canvas.ellipsoid(centre, np.eye(3), (focus.radius_mm,) * 3, "haemangioma", texture=0.05)
    for segment in spine.sacrum:
        width = spine.vertebrae["S1"].half_width * 0.8
        canvas.prism(segment, width, "cortex")
        canvas.prism(segment, width, marrow("S1"), shrink=CORTEX_MM, texture=0.1)
    for disc in spine.discs.values():
        upper, lower = disc.level.split("-")
        g = disc.grades
        for vertebra, modic, defect, endplate in (
            (spine.vertebrae[upper], g.marrow_upper, g.endplate_upper, (2, 3)),
            (spine.vertebrae[lower], g.marrow_lower, g.endplate_lower, (0, 1)),
        ):
            a, b = vertebra.corners[endplate[0]], vertebra.corners[endplate[1]]
            inward = vertebra.centre - (a + b) / 2
            inward /= np.linalg.norm(inward)
            if modic:  # a focal zone under the endplate: part of its length and width, 5–10 mm deep
                band = rng.uniform(5, 10)
                length = rng.uniform(0.45, 0.7)
                start = rng.uniform(0.0, 1.0 - length)
                a0, b0 = a + (b - a) * start, a + (b - a) * (start + length)
                zone = np.array([a0, b0, b0 + inward * band, a0 + inward * band])
                half_width = vertebra.half_width * rng.uniform(0.45, 0.7)
                canvas.prism(zone, half_width, f"modic{modic}", shrink=CORTEX_MM, texture=0.1,
                             x_centre=rng.uniform(-0.15, 0.15) * vertebra.half_width, lesion=LESIONS["marrow"])
            if defect:
                depth = ENDPLATE_DEFECT_DEPTH_MM[defect]
                along = (b - a) / np.linalg.norm(b - a)
                position = (a + b) / 2 + along * patient.endplate_position[disc.level] * np.linalg.norm(b - a) / 2
                axes = np.array([[1.0, 0, 0], [0, *along], [0, *inward]])
                canvas.ellipsoid((0.0, *position), axes, (vertebra.half_width * 0.5, 3 + 1.5 * defect, depth), "herniated",
                                 lesion=LESIONS["endplate_defect"])


def paint_discs(canvas: Canvas, patient: Patient, spine: SpineShape) -> None:
    """Annulus (with bulges), nucleus (signal by Pfirrmann grade), clefts and herniations."""
    for disc in spine.discs.values():
        _paint_disc(canvas, disc, patient.herniation_side[disc.level])


def _paint_disc(canvas: Canvas, disc: DiscShape, herniation_x: float) -> None:
    g = disc.grades
    corners = disc.corners
    bulge_posterior, bulge_anterior = BULGE_MM[g.bulging_posterior], BULGE_MM[g.bulging_anterior]
    pad = max(bulge_posterior, bulge_anterior) + 2 * canvas.inplane_width + canvas.lateral_width
    lo = (-disc.half_width - pad, *(corners.min(axis=0) - pad))
    hi = (disc.half_width + pad, *(corners.max(axis=0) + pad))
    idx = canvas.select(lo, hi)
    y, z, x = canvas.y[idx], canvas.z[idx], canvas.x[idx]
    starts, directions, normals = _edges(corners)
    lengths = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
    sd = []
    for e in range(4):
        offset_y, offset_z = y - starts[e, 0], z - starts[e, 1]
        d = offset_y * normals[e, 0] + offset_z * normals[e, 1]
        bulge = {1: bulge_posterior, 3: bulge_anterior}.get(e, 0.0)
        if bulge:
            along = (offset_y * directions[e, 0] + offset_z * directions[e, 1]) / lengths[e] * 2 - 1
            d = d - bulge * np.clip(1 - along**2, 0, 1)
        sd.append(d)
    sd = np.max(sd, axis=0)
    canvas.paint(idx, _soft(sd, canvas.inplane_width) * _soft(np.abs(x) - disc.half_width, canvas.lateral_width),
                 "annulus", texture=0.05, label=LABELS[disc.level])

    up = disc.normal
    anterior, _ = _local_frame(up)
    depth = float(np.linalg.norm((corners[0] + corners[3] - corners[1] - corners[2]) / 2))
    centre = disc.centre - anterior * 0.08 * depth
    axes = _axes3(anterior, up)
    nucleus = {"T1": NUCLEUS_T1, "T2": NUCLEUS_T2_BY_PFIRRMANN[g.pfirrmann - 1]}
    radii = (disc.half_width * 0.55, 0.33 * depth, max(0.3 * disc.height, 1.0))
    softness = 0.6 + 1.2 * (g.pfirrmann - 1)
    reach = max(radii) + softness + 2
    idx = canvas.select((-reach, *(centre - reach)), (reach, *(centre + reach)))
    offset = np.stack([canvas.x[idx], canvas.y[idx] - centre[0], canvas.z[idx] - centre[1]], axis=1)
    local = offset @ axes.T
    r = np.sqrt(((local / np.asarray(radii)) ** 2).sum(axis=1))
    m = _soft((r - 1) * min(radii), softness)
    canvas.paint(idx, m, nucleus, texture=0.04)
    if g.pfirrmann >= 2:  # intranuclear cleft: a dark horizontal band
        canvas.paint(idx, m * _soft(np.abs(local[:, 2]) - 0.5, 0.8), "annulus")
    if g.herniation:
        radius = HERNIATION_RADIUS_MM[g.herniation]
        posterior_mid = (corners[1] + corners[2]) / 2
        h_centre = posterior_mid - anterior * (bulge_posterior + radius * 0.6)
        canvas.ellipsoid((herniation_x, *h_centre), axes, (radius * 1.3, radius, radius * 1.3), "herniated",
                         label=LABELS[disc.level], lesion=LESIONS["herniation"])

