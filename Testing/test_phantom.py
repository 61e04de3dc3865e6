"""The phantom: determinism, ground truth that matches the image, grades that change it."""
import numpy as np
import pytest

from spinecore.phantom import DiscGrades, PhantomSpec, make_phantom
from spinecore.phantom.anatomy import build_spine, independent_grades, progress, sample_patient

from conftest import in_full_view

SMALL = dict(t1=False, axial=False, n_slices=3)


def disc_mean(study, level: str, radius_mm: float = 3.0) -> float:
    """Mean T2 signal in a small sphere at a disc's centre (from the ground truth)."""
    series = study.get("sag_t2")
    disc = next(d for d in study.truth["discs"] if d["level"] == level)
    g = series.geometry
    index = np.indices(g.shape).reshape(3, -1).T
    near = np.linalg.norm(g.vox_to_mm(index) - np.array(disc["center_mm"]), axis=1) < radius_mm
    return float(series.array.reshape(-1)[near].mean())


def test_same_seed_same_study_different_seed_different():
    a, b = make_phantom(PhantomSpec(seed=5, **SMALL)), make_phantom(PhantomSpec(seed=5, **SMALL))
    assert np.array_equal(a.get("sag_t2").array, b.get("sag_t2").array)
    assert a.truth == b.truth
    c = make_phantom(PhantomSpec(seed=6, **SMALL))
    assert a.truth["vertebrae"][0]["centroid_mm"] != c.truth["vertebrae"][0]["centroid_mm"]


def test_ground_truth_corners_lie_on_bone_edges(phantom_dir):
    """Each quad's interior is vertebral marrow and its corners sit at the body's edge."""
    from spinecore.phantom.study import make_phantom as render

    study = render(PhantomSpec(seed=3))
    series = study.get("sag_t2")
    for vertebra in in_full_view(study.truth["vertebrae"]):
        mid = vertebra["slices"][len(vertebra["slices"]) // 2]
        corners = np.array(mid["corners_vox"])
        assert np.allclose(series.geometry.vox_to_mm(corners), mid["corners_mm"], atol=1e-3)
        centre = corners.mean(axis=0)
        inside = series.array[int(round(centre[0])), int(round(centre[1])), int(round(centre[2]))]
        marrow = 360  # T2 marrow intensity before bias and noise
        assert 0.4 * marrow < inside < 2.5 * marrow, vertebra["level"]


def test_top_level_controls_what_is_in_view():
    no_t12 = make_phantom(PhantomSpec(seed=2, top_level="L1", **SMALL))
    assert [v["level"] for v in in_full_view(no_t12.truth["vertebrae"])] == ["L1", "L2", "L3", "L4", "L5", "S1"]
    assert [d["level"] for d in in_full_view(no_t12.truth["discs"])] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    # the view cuts through T12-L1 with its centre in view: it is listed, with T12, as partly in view
    geometry = no_t12.get("sag_t2").geometry
    t12_l1 = next(d for d in no_t12.truth["discs"] if d["level"] == "T12-L1")
    t12 = next(v for v in no_t12.truth["vertebrae"] if v["level"] == "T12")
    assert t12_l1["partial_view"] and t12["partial_view"]
    assert 0 <= geometry.mm_to_vox(np.array([t12_l1["center_mm"]]))[0, 1] < geometry.shape[1]
    assert min(np.array(s["corners_vox"])[:, 1].min() for s in t12["slices"]) < 0
    with_t11 = make_phantom(PhantomSpec(seed=2, top_level="T11", **SMALL))
    assert in_full_view(with_t11.truth["vertebrae"])[0]["level"] == "T11"


def test_single_slice_phantom():
    study = make_phantom(PhantomSpec(seed=4, n_slices=1, t1=False, axial=False))
    assert study.get("sag_t2").array.shape[0] == 1
    assert all(len(v["slices"]) == 1 and v["slices"][0]["slice"] == 0 for v in study.truth["vertebrae"])


def test_pfirrmann_grade_darkens_the_nucleus():
    bright = make_phantom(PhantomSpec(seed=8, noise=0.0, grades={"L3-L4": {"pfirrmann": 1, "narrowing": 0}}, **SMALL))
    dark = make_phantom(PhantomSpec(seed=8, noise=0.0, grades={"L3-L4": {"pfirrmann": 5, "narrowing": 0}}, **SMALL))
    assert disc_mean(bright, "L3-L4") > 2 * disc_mean(dark, "L3-L4")


def test_narrowing_lowers_disc_height_and_listhesis_slips():
    base = make_phantom(PhantomSpec(seed=9, grades={"L4-L5": {"narrowing": 0, "spondylolisthesis": 0}}, **SMALL))
    worse = make_phantom(PhantomSpec(seed=9, grades={"L4-L5": {"narrowing": 3, "spondylolisthesis": 2}}, **SMALL))

    def disc(study):
        return next(d for d in study.truth["discs"] if d["level"] == "L4-L5")

    assert disc(worse)["height_mm"] < 0.5 * disc(base)["height_mm"]
    spine_base = build_spine(sample_patient(9))
    grades = dict(spine_base.discs["L4-L5"].grades.as_dict(), spondylolisthesis=2)
    patient = sample_patient(9)
    slipped = build_spine(type(patient)(**{**patient.__dict__, "grades": {**patient.grades, "L4-L5": DiscGrades(**grades)}}))
    shift = slipped.vertebrae["L4"].corners[2] - slipped.vertebrae["L5"].corners[1]
    shift0 = spine_base.vertebrae["L4"].corners[2] - spine_base.vertebrae["L5"].corners[1]
    assert shift[0] < shift0[0] - 0.4 * spine_base.vertebrae["L4"].depth  # L4 moved anteriorly (−y)


@pytest.mark.parametrize("field, values", [
    ("stenosis", (0, 3)), ("herniation", (0, 3)), ("bulging_posterior", (0, 3)),
    ("endplate_lower", (0, 3)), ("marrow_upper", (0, 1)),
])
def test_every_grade_changes_the_image(field, values):
    images = []
    for value in values:
        grades = {"L4-L5": {field: value}}
        if field == "marrow_upper":
            grades["L4-L5"]["endplate_upper"] = 0
        study = make_phantom(PhantomSpec(seed=12, noise=0.0, grades=grades, **SMALL))
        images.append(study.get("sag_t2").array)
    changed = np.abs(images[0] - images[1]) > 20
    assert changed.sum() > 20, f"{field} {values} changed {changed.sum()} voxels"


def test_follow_up_keeps_vertebrae_and_degenerates_discs():
    patient = sample_patient(21)
    later = progress(patient, 10)
    assert all(later.grades[d].pfirrmann >= patient.grades[d].pfirrmann for d in patient.grades)
    total = sum(later.grades[d].pfirrmann - patient.grades[d].pfirrmann for d in patient.grades)
    assert total >= 1
    base, follow = make_phantom(PhantomSpec(seed=21, **SMALL)), make_phantom(PhantomSpec(seed=21, follow_up_years=10, **SMALL))
    assert base.truth["patient_id"] == follow.truth["patient_id"]
    heights = {v["level"]: v["height_mm"] for v in base.truth["vertebrae"]}
    for v in follow.truth["vertebrae"]:
        if v["level"] in heights:
            assert v["height_mm"] == pytest.approx(heights[v["level"]], abs=1e-6)
    assert base.truth["scan"]["affine"] != follow.truth["scan"]["affine"]  # a new scan session


def test_invalid_spec_and_grades_are_rejected():
    with pytest.raises(ValueError):
        PhantomSpec(top_level="C5")
    with pytest.raises(ValueError):
        DiscGrades(pfirrmann=6)
    with pytest.raises(ValueError):
        PhantomSpec(grades={"L9-L10": {"pfirrmann": 2}})


def test_label_mask_matches_ground_truth_quads_and_discs(phantom_dir, phantom_truth):
    from skimage.draw import polygon2mask

    from spinecore.io import load_study

    labels = load_study(phantom_dir / "nifti" / "sag_labels.nii.gz").series[0]
    values = phantom_truth["labels"]["values"]
    mask = np.rint(labels.array).astype(int)
    for vertebra in phantom_truth["vertebrae"]:
        mid = vertebra["slices"][len(vertebra["slices"]) // 2]
        corners = np.array(mid["corners_vox"])
        quad = polygon2mask(mask.shape[1:], corners[:, 1:])
        body = mask[mid["slice"]] == values[vertebra["level"]]
        overlap = (quad & body).sum()
        assert overlap / body.sum() > 0.85 and overlap / quad.sum() > 0.85, vertebra["level"]
    g = labels.geometry
    for disc in phantom_truth["discs"]:
        k, j, i = np.rint(g.mm_to_vox(disc["center_mm"])).astype(int)
        assert mask[k, j, i] == values[disc["level"]], disc["level"]
    assert (mask == values["canal"]).sum() > 1000


def test_independent_grades_draw_findings_apart_from_degeneration():
    rng = np.random.default_rng(0)
    grades = [independent_grades(rng) for _ in range(3000)]
    pfirrmann = np.array([g.pfirrmann for g in grades])
    assert set(pfirrmann) == {1, 2, 3, 4, 5}
    for name in ("endplate_upper", "marrow_lower", "stenosis", "herniation", "bulging_posterior"):
        present = np.array([getattr(g, name) > 0 for g in grades])
        assert 0.25 < present.mean() < 0.35, name
        assert abs(np.corrcoef(present, pfirrmann)[0, 1]) < 0.06, name
    herniation = np.array([g.herniation > 0 for g in grades])
    stenosis = np.array([g.stenosis > 0 for g in grades])
    assert abs(np.corrcoef(herniation, stenosis)[0, 1]) < 0.06


def _lesion_and_labels(grades: dict, code: str):
    from spinecore.phantom.render import LABELS, LESIONS

    study = make_phantom(PhantomSpec(seed=12, noise=0.0, t1=False, axial=False, grades={"L4-L5": grades}))
    g = study.get("sag_t2").geometry
    mm = g.vox_to_mm(np.indices(g.shape).reshape(3, -1).T).reshape(*g.shape, 3)
    return study.lesions == LESIONS[code], study.labels, mm, LABELS


def test_modic_change_is_a_focal_zone_under_the_endplate():
    lesion, labels, _, codes = _lesion_and_labels({"marrow_lower": 1, "endplate_lower": 0}, "marrow")
    body = labels == codes["L5"]
    under_l4_l5 = (lesion & body).sum()  # (the patient's own grades may add zones at other discs)
    assert under_l4_l5 > 50
    assert np.isin(labels[lesion], [codes[v] for v in ("L1", "L2", "L3", "L4", "L5", "S1")]).mean() > 0.95
    assert under_l4_l5 < 0.15 * body.sum()  # part of the endplate's length and width, not a whole band


def test_stenosis_narrows_the_sac_from_the_disc_side():
    lesion, labels, mm, codes = _lesion_and_labels({"stenosis": 3}, "stenosis")
    mid = lesion.shape[0] // 2  # the mid-sagittal slice (the lateral ones also lose the sac's sides)
    pinched, sac, disc = lesion[mid], labels[mid] == codes["canal"], labels[mid] == codes["L4-L5"]
    assert pinched.sum() > 20
    rows = np.flatnonzero(pinched.any(1))
    posterior = mm[mid, ..., 1]  # LPS y grows posteriorly
    near_rows = np.zeros_like(sac)
    near_rows[rows] = True
    assert posterior[pinched].mean() < posterior[sac & near_rows].mean()  # in front of what is left of the sac
    assert posterior[pinched].min() - posterior[disc].max() < 4.0         # against the back of the disc


def test_haemangiomas_mark_the_patient_and_are_painted_where_drawn():
    from dataclasses import replace

    from spinecore.geometry import Geometry
    from spinecore.phantom.render import Canvas, paint_vertebrae

    patient = sample_patient(21)
    assert progress(patient, 10).marrow_foci == patient.marrow_foci
    assert sample_patient(22).marrow_foci != patient.marrow_foci
    level, focus = next((level, f) for level, foci in patient.marrow_foci.items() for f in foci)
    body = build_spine(patient).vertebrae[level]
    upper = body.corners[0] + focus.depth * (body.corners[1] - body.corners[0])
    lower = body.corners[3] + focus.depth * (body.corners[2] - body.corners[3])
    expected = np.array([focus.side * body.half_width, *(upper + focus.height * (lower - upper))])
    # a 0.5 mm grid around the focus in body coordinates (identity pose), painted with and without it
    geometry = Geometry.from_parts(expected - 8, [0.5] * 3, np.eye(3), (33, 33, 33))
    images = []
    for foci in (patient.marrow_foci, {}):
        canvas = Canvas(geometry, (np.eye(3), np.zeros(3)), ("T2",), np.random.default_rng(0))
        paint_vertebrae(canvas, replace(patient, marrow_foci=foci), build_spine(patient), np.random.default_rng(1))
        images.append(canvas.images["T2"])
    brighter = images[0] - images[1] > 100
    points = np.stack([canvas.x, canvas.y, canvas.z], axis=1)[brighter]
    assert np.linalg.norm(points.mean(axis=0) - expected) < 0.5
    assert brighter.sum() * 0.5**3 == pytest.approx(4 / 3 * np.pi * focus.radius_mm**3, rel=0.35)
