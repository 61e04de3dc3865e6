"""A complete phantom study: scans placed around the anatomy, rendered, with ground truth."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from spinecore.geometry import Geometry, rotation_matrix
from spinecore.io.series import Plane, Series, Weighting
from spinecore.io.write import DicomSeriesInfo, write_dicom_series, write_volume
from spinecore.levels import DISCS, VERTEBRAE
from spinecore.phantom.anatomy import DiscGrades, DiscShape, Patient, SpineShape, build_spine, progress, sample_patient
from spinecore.phantom.render import LABELS, Canvas, paint_body, paint_canal, paint_discs, paint_vertebrae

TOP_LEVEL_CHOICES = ("T11", "T12", "L1", "L2")
AXIAL_DISCS = ("L3-L4", "L4-L5", "L5-S1")
#: Canonical sagittal axes (columns: slice → R, row → I, column → P) in body/LPS coordinates.
SAGITTAL_AXES = np.stack([[-1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]], axis=1)
#: The (LPS) axis a T1 on its own grid is rotated about (:attr:`PhantomSpec.t1_rotation_deg`).
T1_ROTATION_AXIS = (1.0, 0.3, 0.2)
#: Acquisition orders written to DICOM (the reader must restore the canonical one).
ACQUISITION_CODES = (("R", "I", "P"), ("L", "I", "P"), ("R", "I", "A"), ("R", "P", "I"))


@dataclass(frozen=True)
class PhantomSpec:
    """What to generate. ``None`` fields are drawn from ``seed`` (deterministically).

    Attributes:
        seed: the patient (anatomy, baseline grades) and, with the visit, the scan.
        follow_up_years: 0 for the baseline visit; > 0 for the same patient later on
            (discs degenerate, vertebrae keep their shape; new scan pose and noise).
        top_level: most cranial vertebra fully in view (``T11``, ``T12``, ``L1``, ``L2``).
        n_slices: sagittal slices (1 gives a single mid-sagittal slice).
        slice_spacing_mm / pixel_spacing_mm: sagittal slice spacing; (row, column) spacing.
        in_plane_rotation_deg: rotation of the spine in the sagittal image.
        tilt_deg: (coronal tilt, axial rotation) of the slab relative to the spine.
        noise: Rician noise level as a fraction of the CSF T2 signal.
        grades: per-disc overrides, e.g. ``{"L4-L5": {"pfirrmann": 5}}``.
        t1 / axial: also write the sagittal T1 / the axial T2 stacks.
        t1_rotation_deg / t1_shift_mm / t1_spacing_mm: the T1 on its own grid (another pose and
            spacing, as a clinical T1 often is): its slab rotated about its centre by this angle (about
            an oblique axis), moved by this LPS shift, with these (slice, row, column) spacings; the
            defaults keep the T2's grid.
    """

    seed: int = 0
    follow_up_years: float = 0.0
    top_level: str | None = None
    n_slices: int | None = None
    slice_spacing_mm: float | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    in_plane_rotation_deg: float | None = None
    tilt_deg: tuple[float, float] | None = None
    noise: float | None = None
    grades: dict[str, dict[str, int]] = field(default_factory=dict)
    t1: bool = True
    axial: bool = True
    t1_rotation_deg: float = 0.0
    t1_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    t1_spacing_mm: tuple[float, float, float] | None = None

    @property
    def t1_own_grid(self) -> bool:
        return bool(self.t1_rotation_deg or any(self.t1_shift_mm) or self.t1_spacing_mm)

    def __post_init__(self) -> None:
        if self.top_level is not None and self.top_level not in TOP_LEVEL_CHOICES:
            raise ValueError(f"top_level must be one of {', '.join(TOP_LEVEL_CHOICES)}")
        if self.n_slices is not None and self.n_slices < 1:
            raise ValueError("n_slices must be at least 1")
        if self.follow_up_years < 0:
            raise ValueError("follow_up_years must not be negative")
        unknown = set(self.grades) - set(DISCS)
        if unknown:
            raise ValueError(f"unknown disc levels in grades: {', '.join(sorted(unknown))}")


@dataclass
class PhantomSeries:
    """A rendered series in canonical orientation and how it is written to DICOM."""

    name: str
    array: np.ndarray
    geometry: Geometry
    plane: Plane
    weighting: Weighting
    acquisition_codes: tuple[str, str, str]
    description: str
    labels: np.ndarray | None = None  # label mask (``render.LABELS``) of a series off the T2's grid (T1, axial)

    def to_series(self, source: str) -> Series:
        """The same voxels as an :class:`~spinecore.io.series.Series`, as if read from ``source``."""
        return Series(self.array, self.geometry, self.plane, self.weighting, source, self.description)


@dataclass
class PhantomStudy:
    """Rendered series, the sagittal label mask (values: ``render.LABELS``), the sagittal lesion
    mask (``render.LESIONS``) and the ground truth (JSON-ready dict)."""

    patient: Patient
    spine: SpineShape
    series: list[PhantomSeries]
    labels: np.ndarray
    truth: dict
    lesions: np.ndarray

    def get(self, name: str) -> PhantomSeries:
        return next(s for s in self.series if s.name == name)

    def reference_spine(self):
        """The exact localisation (a :class:`spinecore.localise.Spine`) of the sagittal series:
        true corners, levels and discs (a body the view cuts through flagged partial)."""
        from spinecore.localise.spine import PARTIAL_VIEW, Spine, Vertebra, VertebraSlice, discs_between

        geometry = self.series[0].geometry
        vertebrae = []
        for v in self.truth["vertebrae"]:
            slices = tuple(VertebraSlice(s["slice"], np.array(s["corners_vox"]), np.array(s["corners_mm"]))
                           for s in v["slices"])
            centre_slice = geometry.mm_to_vox(v["centroid_mm"])[0]
            mid = min(slices, key=lambda s: abs(s.slice - centre_slice)).slice
            flags = (PARTIAL_VIEW,) if v.get("partial_view") else ()
            vertebrae.append(Vertebra(v["level"], 1.0, np.array(v["centroid_mm"]), slices, mid, flags))
        return Spine(geometry, tuple(vertebrae), discs_between(vertebrae), f"phantom-{self.truth['seed']}")


def _patient(spec: PhantomSpec) -> Patient:
    patient = progress(sample_patient(spec.seed), spec.follow_up_years)
    if spec.grades:
        grades = dict(patient.grades)
        for level, overrides in spec.grades.items():
            grades[level] = DiscGrades(**{**grades[level].as_dict(), **overrides})
        patient = Patient(**{**patient.__dict__, "grades": grades})
    return patient


def _scan_frame(rng: np.random.Generator, spec: PhantomSpec) -> np.ndarray:
    """Rotation of the sagittal slab relative to the body (columns: slice, row, column axes)."""
    rotation = spec.in_plane_rotation_deg if spec.in_plane_rotation_deg is not None else rng.uniform(-8, 8)
    tilt = spec.tilt_deg if spec.tilt_deg is not None else (rng.uniform(-4, 4), rng.uniform(-4, 4))
    r = rotation_matrix((1, 0, 0), rotation) @ rotation_matrix((0, 1, 0), tilt[0]) @ rotation_matrix((0, 0, 1), tilt[1])
    return r @ SAGITTAL_AXES


def _sagittal_geometry(rng, spec: PhantomSpec, patient: Patient, spine: SpineShape, axes: np.ndarray,
                       pose: tuple[np.ndarray, np.ndarray]) -> Geometry:
    """Slab that shows ``top_level``..S1 fully and cuts through the disc above ``top_level``."""
    top = spec.top_level or str(rng.choice(TOP_LEVEL_CHOICES, p=(0.4, 0.35, 0.2, 0.05)))
    n_slices = spec.n_slices or int(rng.integers(11, 18))
    slice_spacing = spec.slice_spacing_mm or float(rng.uniform(3.0, 4.5) * rng.uniform(1.0, 1.2))
    if spec.pixel_spacing_mm:
        row_spacing, column_spacing = spec.pixel_spacing_mm
    else:
        row_spacing = float(rng.uniform(0.55, 0.95))
        column_spacing = row_spacing if rng.random() < 0.5 else float(rng.uniform(0.55, 0.95))

    def scan_coords(points_yz: np.ndarray) -> np.ndarray:
        p = np.concatenate([np.zeros((len(points_yz), 1)), points_yz], axis=1)
        return p @ axes  # (slice, row, column) mm along the scan axes

    top_v = spine.vertebrae[top]
    bony = np.concatenate([v.corners for v in spine.vertebrae.values()][VERTEBRAE.index(top):])
    row_top = scan_coords(top_v.corners[:2])[:, 1].min() - rng.uniform(3, 9)
    row_bottom = scan_coords(spine.vertebrae["S1"].corners[2:])[:, 1].max() + rng.uniform(25, 70)
    cols = scan_coords(bony)[:, 2]
    col_front = cols.min() - rng.uniform(45, 90)
    col_back = cols.max() + patient.canal_depth + rng.uniform(60, 100)
    shape = (n_slices, int(np.ceil((row_bottom - row_top) / row_spacing)) + 1,
             int(np.ceil((col_back - col_front) / column_spacing)) + 1)
    lateral = rng.uniform(-3, 3)
    origin_body = axes @ np.array([-lateral - (n_slices - 1) / 2 * slice_spacing, row_top, col_front])
    # body → LPS
    rotation, translation = pose
    directions = rotation @ axes
    origin = rotation @ origin_body + translation
    return Geometry.from_parts(origin, (slice_spacing, row_spacing, column_spacing), directions, shape)


def _axial_geometry(rng, disc_centre: np.ndarray, disc_up: np.ndarray, pose) -> Geometry:
    """Five slices parallel to a disc, centred on it (canonical axial: S, P, L)."""
    anterior = np.array([disc_up[1], -disc_up[0]])
    if anterior[0] > 0:
        anterior = -anterior
    slice_axis = np.array([0.0, *disc_up])
    row_axis = np.array([0.0, *(-anterior)])
    column_axis = np.array([1.0, 0.0, 0.0])
    pixel = float(rng.uniform(0.6, 0.8))
    spacing = (4.0, pixel, pixel)
    shape = (5, int(180 / pixel), int(180 / pixel))
    centre = np.array([0.0, *disc_centre])
    axes = np.stack([slice_axis, row_axis, column_axis], axis=1)
    origin_body = centre - axes @ (np.array([shape[0] - 1, shape[1] - 1, shape[2] - 1]) / 2 * np.array(spacing))
    rotation, translation = pose
    return Geometry.from_parts(rotation @ origin_body + translation, spacing, rotation @ axes, shape)


def _moved_geometry(geometry: Geometry, spec: PhantomSpec) -> Geometry:
    """``geometry``'s slab rotated about its centre, shifted and resampled to ``spec``'s T1 grid
    (the same field of view)."""
    spacing = np.array(spec.t1_spacing_mm or geometry.spacing, float)
    extent = (np.array(geometry.shape) - 1) * np.array(geometry.spacing)
    shape = tuple(int(n) for n in np.round(extent / spacing) + 1)
    centre = geometry.vox_to_mm((np.array(geometry.shape) - 1) / 2) + np.asarray(spec.t1_shift_mm, float)
    directions = rotation_matrix(T1_ROTATION_AXIS, spec.t1_rotation_deg) @ geometry.directions
    origin = centre - directions @ ((np.array(shape) - 1) / 2 * spacing)
    return Geometry.from_parts(origin, spacing, directions, shape)


def _render(geometry: Geometry, contrasts: tuple[str, ...], patient: Patient, spine: SpineShape, pose,
            rng: np.random.Generator, noise: float) -> dict[str, np.ndarray]:
    rotation, translation = pose
    canvas = Canvas(geometry, (rotation.T, translation), contrasts, rng)
    paint_body(canvas, patient, spine, np.random.default_rng([patient.seed, 7]))
    paint_canal(canvas, patient, spine)
    paint_vertebrae(canvas, patient, spine, np.random.default_rng([patient.seed, 8]))
    paint_discs(canvas, patient, spine)
    # receive-coil bias: brighter posteriorly (spine coil) with a gentle random tilt
    body_y, body_z = canvas.y, canvas.z
    slope_y, slope_z = rng.uniform(0.002, 0.006), rng.uniform(-0.002, 0.002)
    bias = np.exp(slope_y * (body_y - body_y.mean()) + slope_z * (body_z - body_z.mean())).astype(np.float32)
    out = {"labels": canvas.labels.reshape(geometry.shape), "lesions": canvas.lesions.reshape(geometry.shape)}
    for contrast in contrasts:
        clean = canvas.images[contrast] * bias
        sigma = noise * 1000
        noisy = np.hypot(clean + rng.normal(0, sigma, clean.shape), rng.normal(0, sigma, clean.shape))
        out[contrast] = noisy.reshape(geometry.shape).astype(np.float32)
    return out


def _slice_quads(geometry: Geometry, corners_yz: np.ndarray, half_width: float, pose) -> list[dict]:
    """Per-slice intersection of a vertebral prism with the slice planes."""
    rotation, translation = pose
    # body point (x, y, z) → index: solve index such that vox_to_mm(index) = R·body + t
    inverse = np.linalg.inv(geometry.affine[:3, :3])
    d_index = inverse @ rotation[:, 0]  # index change per mm of lateral x
    out = []
    for k in range(geometry.shape[0]):
        corners = []
        lateral = []
        for y, z in corners_yz:
            # unknowns (x, j, i) with slice index fixed at k
            base = inverse @ (rotation @ np.array([0.0, y, z]) + translation - geometry.affine[:3, 3])
            x = (k - base[0]) / d_index[0]
            index = base + d_index * x
            corners.append(index)
            lateral.append(x)
        if abs(np.mean(lateral)) <= half_width - 1.0:
            corners = np.array(corners)
            corners[:, 0] = k
            out.append({"slice": k, "corners_vox": np.round(corners, 4).tolist(),
                        "corners_mm": np.round(geometry.vox_to_mm(corners), 4).tolist()})
    return out


def _disc_measurements(disc: DiscShape, body_height: float) -> dict[str, float]:
    """The disc's true measurements (definitions: :class:`spinecore.localise.measure.DiscMeasurements`),
    from the anatomy; ``body_height`` is the mean height of the two adjacent bodies (mm)."""
    return {"anterior_height_mm": round(disc.anterior_height, 3),
            "posterior_height_mm": round(disc.posterior_height, 3),
            "height_index": round(disc.height / body_height, 4), "slip_mm": round(disc.slip, 3),
            "slip_percent": round(100 * disc.slip / disc.lower_depth, 2)}


def _truth(spec: PhantomSpec, patient: Patient, spine: SpineShape, sagittal: PhantomSeries, pose) -> dict:
    geometry = sagittal.geometry
    rotation, translation = pose

    def to_mm(yz) -> list[float]:
        return np.round(rotation @ np.array([0.0, *yz]) + translation, 4).tolist()

    def in_view(rows_cols: np.ndarray) -> bool:
        return bool(np.all(rows_cols >= 0) and np.all(rows_cols <= np.array(geometry.shape[1:]) - 1))

    slices = {level: _slice_quads(geometry, v.corners, v.half_width, pose) for level, v in spine.vertebrae.items()}
    mids = {level: min(s, key=lambda q: abs(q["slice"] - (geometry.shape[0] - 1) / 2)) for level, s in slices.items() if s}
    visible = {level for level, mid in mids.items() if in_view(np.array(mid["corners_vox"])[:, 1:])}
    discs, partial = [], set()
    for level, d in spine.discs.items():
        upper, lower = level.split("-")
        if not {upper, lower} & visible or not {upper, lower} <= set(mids):
            continue
        if not {upper, lower} <= visible:
            # a disc the edge of the view cuts through counts when its centre is in view
            centre_row = geometry.mm_to_vox(np.array([to_mm(d.centre)]))[0, 1]
            if not 0 <= centre_row <= geometry.shape[1] - 1:
                continue
            partial |= {upper, lower} - visible
        normal = rotation @ np.array([0.0, *d.normal])
        body_height = (spine.vertebrae[upper].height + spine.vertebrae[lower].height) / 2
        discs.append({"level": level, "center_mm": to_mm(d.centre), "normal": np.round(normal, 6).tolist(),
                      "height_mm": round(d.height, 3), "grades": d.grades.as_dict(),
                      **_disc_measurements(d, body_height), **({"partial_view": True} if partial & {upper, lower} else {})})
    vertebrae = [{"level": level, "centroid_mm": to_mm(v.centre), "height_mm": round(v.height, 3),
                  "depth_mm": round(v.depth, 3), "slices": slices[level], **({"partial_view": True} if level in partial else {})}
                 for level, v in spine.vertebrae.items() if level in visible | partial]
    return {
        "format": "spinecore-phantom-truth/1",
        "seed": spec.seed,
        "follow_up_years": spec.follow_up_years,
        "patient_id": f"PHANTOM-{spec.seed:06d}",
        "coordinates": "corners_vox are (slice, row, column) indices of the canonical sagittal series "
                       "(as spinecore.load_study returns it); *_mm are patient LPS millimetres",
        "in_view": "vertebrae fully in view on the mid slice, and the discs between them; a disc the edge of "
                   "the view cuts through is listed when its centre is in view, it and the body beyond it "
                   "marked partial_view",
        "scan": {"series": sagittal.name, "shape": list(geometry.shape),
                 "spacing_mm": [round(s, 6) for s in geometry.spacing], "affine": geometry.affine.tolist()},
        "vertebrae": vertebrae,
        "discs": discs,
    }


def make_phantom(spec: PhantomSpec = PhantomSpec()) -> PhantomStudy:
    """Render a phantom study (nothing is written; see :func:`write_phantom`)."""
    patient = _patient(spec)
    spine = build_spine(patient)
    visit = int(round(spec.follow_up_years * 12))
    rng = np.random.default_rng([spec.seed, 100 + visit])
    axes = _scan_frame(rng, spec)
    # half the slabs are oblique in scanner space; the others are pure sagittal (body rotated instead)
    oblique = rng.random() < 0.5
    pose_rotation = rotation_matrix(rng.normal(size=3), rng.uniform(1, 4)) if oblique else SAGITTAL_AXES @ axes.T
    pose = (pose_rotation, rng.uniform(-40, 40, size=3))
    noise = spec.noise if spec.noise is not None else float(rng.uniform(0.01, 0.035))
    sagittal_geometry = _sagittal_geometry(rng, spec, patient, spine, axes, pose)
    contrasts = ("T1", "T2") if spec.t1 and not spec.t1_own_grid else ("T2",)
    images = _render(sagittal_geometry, contrasts, patient, spine, pose, rng, noise)
    acquisition = ACQUISITION_CODES[int(rng.integers(len(ACQUISITION_CODES)))]
    series = [PhantomSeries("sag_t2", images["T2"], sagittal_geometry, Plane.SAGITTAL, Weighting.T2, acquisition,
                            "SAG T2 TSE")]
    if spec.t1 and spec.t1_own_grid:
        t1_geometry = _moved_geometry(sagittal_geometry, spec)
        t1 = _render(t1_geometry, ("T1",), patient, spine, pose, rng, noise)
        series.append(PhantomSeries("sag_t1", t1["T1"], t1_geometry, Plane.SAGITTAL, Weighting.T1, acquisition,
                                    "SAG T1 TSE", t1["labels"]))
    elif spec.t1:
        series.append(PhantomSeries("sag_t1", images["T1"], sagittal_geometry, Plane.SAGITTAL, Weighting.T1,
                                    acquisition, "SAG T1 TSE"))
    truth = _truth(spec, patient, spine, series[0], pose)
    if spec.axial:
        in_view = {d["level"] for d in truth["discs"]}
        for level in AXIAL_DISCS:
            if level in in_view:
                disc = spine.discs[level]
                geometry = _axial_geometry(rng, disc.centre, disc.normal, pose)
                rendered = _render(geometry, ("T2",), patient, spine, pose, rng, noise)
                name = f"ax_t2_{level.lower()}"
                series.append(PhantomSeries(name, rendered["T2"], geometry, Plane.AXIAL, Weighting.T2,
                                            ("S", "P", "L"), f"AX T2 {level}", rendered["labels"]))
    truth["series"] = {s.name: {"plane": s.plane.value, "weighting": s.weighting.value, "shape": list(s.geometry.shape),
                                "spacing_mm": [round(v, 6) for v in s.geometry.spacing],
                                "affine": s.geometry.affine.tolist()} for s in series}
    truth["labels"] = {"file": "nifti/sag_labels.nii.gz", "values": LABELS}
    return PhantomStudy(patient, spine, series, images["labels"], truth, images["lesions"])


def write_phantom(study: PhantomStudy, folder: Path) -> dict[str, Path]:
    """Write ``study`` under ``folder``: ``dicom/<series>/IM*.dcm`` (in each series'
    acquisition order), ``nifti/<series>.nii.gz`` (canonical order), the sagittal label
    mask ``nifti/sag_labels.nii.gz`` and ``ground_truth.json``. Returns the written top-level paths."""
    truth = study.truth
    seed = truth["seed"]
    visit = int(round(truth["follow_up_years"] * 12))
    study_uid = generate_uid(entropy_srcs=["spinecore-phantom", str(seed), str(visit), "study"])
    frame_uid = generate_uid(entropy_srcs=["spinecore-phantom", str(seed), str(visit), "frame"])
    rng = np.random.default_rng([seed, 200 + visit])
    timing = {Weighting.T2: (3500.0, 105.0), Weighting.T1: (550.0, 11.0)}
    for number, s in enumerate(study.series, start=1):
        array, geometry = s.geometry.reorient(s.array, s.acquisition_codes)
        slope, intercept = (1.0, 0.0) if rng.random() < 0.5 else (float(rng.choice([0.5, 2.0])), float(rng.choice([0, -100])))
        tr, te = timing[s.weighting]
        info = DicomSeriesInfo(
            patient_id=truth["patient_id"], study_uid=study_uid,
            series_uid=generate_uid(entropy_srcs=[study_uid, s.name]), frame_of_reference_uid=frame_uid,
            series_number=number, description=s.description, study_date=f"{2020 + visit // 12:04d}0601",
            repetition_time_ms=tr, echo_time_ms=te, rescale_slope=slope, rescale_intercept=intercept,
        )
        write_dicom_series(folder / "dicom" / s.name, array, geometry, info, uid_seed=study_uid)
        (folder / "nifti").mkdir(parents=True, exist_ok=True)
        write_volume(folder / "nifti" / f"{s.name}.nii.gz", s.array, s.geometry)
    write_volume(folder / "nifti" / "sag_labels.nii.gz", study.labels, study.series[0].geometry)
    truth_path = folder / "ground_truth.json"
    truth_path.write_text(json.dumps(truth, indent=1))
    return {"dicom": folder / "dicom", "nifti": folder / "nifti", "truth": truth_path}
