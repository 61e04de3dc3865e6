"""Localisation with the bundled model on phantoms: levels, corners, discs, and clear failures."""
import json

import numpy as np
import pytest

from spinecore.errors import LocalisationError
from spinecore.geometry import Geometry
from spinecore.io import load_study
from spinecore.io.series import Plane, Series, Weighting
from spinecore.localise import Localiser
from spinecore.localise.spine import INFERRED_VERTEBRA, PARTIAL_VIEW
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.phantom.study import SAGITTAL_AXES

from conftest import in_full_view, run_cli


@pytest.fixture(scope="module")
def localiser() -> Localiser:
    return Localiser.load()


def _phantom(**spec):
    study = make_phantom(PhantomSpec(axial=False, **spec))
    return study.get("sag_t2").to_series("phantom"), study.truth


def _corner_errors(spine, truth) -> np.ndarray:
    """Corner errors of the vertebrae in view (a body cut by the view is inferred, not measured)."""
    errors = []
    for reference in in_full_view(truth["vertebrae"]):
        found = spine.vertebra(reference["level"])
        for s in reference["slices"]:
            predicted = found.on_slice(s["slice"]) if found else None
            if predicted is not None:
                errors += np.linalg.norm(predicted.corners_mm - np.array(s["corners_mm"]), axis=1).tolist()
    return np.array(errors)


#: In-plane distance (mm) within which the centre of a disc the view cuts through is placed.
PARTIAL_CENTRE_MM = 6.0


def _check(spine, truth, height_tolerance=6.0):
    """Levels exact, a body the view cuts through inferred and flagged partial; corners of the
    bodies in view: median under 2 mm and at least 85 % within 2.8 mm; discs in view: centre
    within 4 mm in the slice plane (and 1.5 slices across it), normal within 10°, height within
    6 mm (two pairs of corners; phantom bodies come out ~1 mm short at each endplate, so
    phantom disc heights run ~2 mm long on average); a disc cut by the view: centre within
    PARTIAL_CENTRE_MM in the slice plane."""
    assert spine.levels == [v["level"] for v in truth["vertebrae"]]
    partial = {v["level"] for v in truth["vertebrae"] if v.get("partial_view")}
    assert {v.level for v in spine.vertebrae if PARTIAL_VIEW in v.flags and INFERRED_VERTEBRA in v.flags} == partial
    errors = _corner_errors(spine, truth)
    assert errors.size >= 4 * (len(truth["vertebrae"]) - len(partial))
    assert np.median(errors) < 2.0 and np.mean(errors <= 2.8) >= 0.85, f"median {np.median(errors):.2f} mm"
    across = spine.geometry.directions[:, 0]
    for disc in spine.discs:
        reference = next(d for d in truth["discs"] if d["level"] == disc.level)
        offset = disc.center_mm - reference["center_mm"]
        if reference.get("partial_view"):  # cut by the view: inferred, placed roughly, not measured
            assert PARTIAL_VIEW in disc.flags and disc.measurements is None
            assert np.linalg.norm(offset - (offset @ across) * across) < PARTIAL_CENTRE_MM
            continue
        assert abs(offset @ across) <= 1.5 * spine.geometry.spacing[0]
        assert np.linalg.norm(offset - (offset @ across) * across) < 4.0
        assert np.dot(disc.normal, reference["normal"]) > np.cos(np.radians(10))
        assert abs(disc.height_mm - reference["height_mm"]) < height_tolerance


def test_phantom_dicom_study(localiser, phantom_dir, phantom_truth):
    series = load_study(phantom_dir / "dicom").sagittal()
    spine = localiser(series)
    _check(spine, phantom_truth)
    assert [d.level for d in spine.discs] == [f"{a}-{b}" for a, b in zip(spine.levels[:-1], spine.levels[1:])]
    assert all(0.5 < v.score <= 1.0 for v in spine.vertebrae if INFERRED_VERTEBRA not in v.flags)


def test_without_t12(localiser):
    series, truth = _phantom(seed=11, top_level="L1")
    spine = localiser(series)
    assert [v.level for v in spine.vertebrae if INFERRED_VERTEBRA not in v.flags][0] == "L1"
    _check(spine, truth)


def test_single_slice(localiser):
    series, truth = _phantom(seed=12, n_slices=1)
    spine = localiser(series)
    assert all(len(v.slices) == 1 and v.slices[0].slice == 0 for v in spine.vertebrae)
    _check(spine, truth)


def test_rotated_scan(localiser):
    series, truth = _phantom(seed=13, in_plane_rotation_deg=18.0)
    _check(localiser(series), truth)


def test_t1_series(localiser):
    # the phantom's T1 bodies come out short at the endplates (dark cortex), so disc heights
    # are over-estimated by up to ~7 mm there; levels and corners are held to the T2 standard
    study = make_phantom(PhantomSpec(seed=14, axial=False))
    _check(localiser(study.get("sag_t1").to_series("phantom-t1")), study.truth,
           height_tolerance=8.0)


def test_nothing_spine_like_is_an_error(localiser):
    rng = np.random.default_rng(0)
    noise = rng.normal(100, 20, size=(9, 256, 256)).astype(np.float32)
    series = Series(noise, Geometry.from_parts([0, 0, 0], [4, 1, 1], SAGITTAL_AXES, noise.shape), Plane.SAGITTAL,
                    Weighting.T2, "noise.nii.gz")
    with pytest.raises(LocalisationError, match="noise.nii.gz: no vertebral bodies found"):
        localiser(series)


def test_axial_series_is_refused(localiser):
    series, _ = _phantom(seed=3)
    axial = Series(series.array, series.geometry, Plane.AXIAL, Weighting.T2, "ax.nii.gz")
    with pytest.raises(Exception, match="needs a sagittal series"):
        localiser(axial)


def test_cli_writes_json_and_overview(phantom_dir, phantom_truth, tmp_path):
    out = tmp_path / "loc"
    result = run_cli("localise", phantom_dir / "nifti" / "sag_t2.nii.gz", "--out", out)
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "vertebrae.json").read_text())
    assert (out / "overview.png").stat().st_size > 10_000
    affine = np.array(document["scan"]["affine"])
    assert [v["level"] for v in document["vertebrae"]] == [v["level"] for v in phantom_truth["vertebrae"]]
    for v in document["vertebrae"]:
        for s in v["slices"]:
            vox = np.column_stack([np.array(s["corners_vox"]), np.ones(4)])
            assert np.allclose((vox @ affine.T)[:, :3], s["corners_mm"], atol=0.01)
    reference = {v["level"]: np.array(v["centroid_mm"]) for v in in_full_view(phantom_truth["vertebrae"])}
    assert len(reference) >= 6
    for v in (v for v in document["vertebrae"] if v["level"] in reference):  # a cut body's centroid is elsewhere
        assert np.linalg.norm(np.array(v["centroid_mm"]) - reference[v["level"]]) < 4.0
    assert {"level", "center_mm", "normal", "height_mm"} <= set(document["discs"][0])


def test_cli_nothing_found_and_foreign_model(tmp_path):
    from spinecore.io.write import write_volume

    noise = np.random.default_rng(1).normal(100, 20, size=(5, 200, 200)).astype(np.float32)
    scan = tmp_path / "noise.nii.gz"
    write_volume(scan, noise, Geometry.from_parts([0, 0, 0], [4, 1, 1], SAGITTAL_AXES, noise.shape))
    result = run_cli("localise", scan, "--out", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "noise.nii.gz" in result.stderr
    assert not (tmp_path / "out").exists()
    foreign = tmp_path / "model.pt"
    foreign.write_bytes(b"\x00" * 100)
    result = run_cli("localise", scan, "--out", tmp_path / "out", "--model", foreign)
    assert result.returncode == 2 and "model.pt" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_weak_l5s1_map_falls_back_to_the_lowest_disc():
    from spinecore.localise.localiser import (FALLBACK_ANCHOR, _anchor_gaps, _Candidate, _DiscCandidate,
                                             _scores_from_gaps)

    bodies = [_Candidate(None, None, np.array([40.0 * i, 50.0]), None, 0.99) for i in range(4)]
    discs = [_DiscCandidate(np.array([40.0 * i + 20, 50.0]), np.array([1.0, 0.0]), 0.1) for i in range(3)]
    scores = _scores_from_gaps(_anchor_gaps(bodies, discs, 40.0))
    assert scores[2] == (FALLBACK_ANCHOR, 0.0) and scores[3] == (0.0, FALLBACK_ANCHOR)
    assert all(s == (0.0, 0.0) for s in scores[:2])
    confident = discs[:2] + [_DiscCandidate(discs[2].centre, discs[2].normal, 0.95)]
    assert _scores_from_gaps(_anchor_gaps(bodies, confident, 40.0))[2][0] == 0.95
