"""Grading QC flags: a grade the grader is unsure of, intensities or spacing outside the training
range; they reach gradings.csv/json next to the localisation flags."""
import csv
import json

import numpy as np
import pytest

from spinecore import cli
from spinecore.grade import Grader
from spinecore.grade.qc import (CONTRAST_RANGE, GRADING_FLAGS, INTENSITY_OUT_OF_RANGE, LOW_CONFIDENCE,
                                LOW_CONFIDENCE_BELOW, SPACING_OUT_OF_RANGE, disc_flags, volume_statistics)
from spinecore.grade.schemes import SPIDER
from spinecore.io.volume import series_from_array
from spinecore.io.write import write_volume
from spinecore.localise import Localiser
from spinecore.localise.spine import PARTIAL_VIEW
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.pipeline import analyse
from spinecore.report.gradings import FLAG_SEPARATOR

#: A phantom inside the training range: 4 mm slices, 0.7 mm pixels.
NORMAL = {"n_slices": 9, "slice_spacing_mm": 4.0, "pixel_spacing_mm": (0.7, 0.7), "t1": False, "axial": False}
OFFSET = 3000.0  # added to every voxel (a rescale intercept): the disc volume loses its contrast


@pytest.fixture(scope="module")
def models():
    return Localiser.load(), Grader.load()


def phantom_series(seed: int = 3, **spec):
    return make_phantom(PhantomSpec(seed=seed, **{**NORMAL, **spec})).get("sag_t2").to_series(f"phantom{seed}")


def graded(series, models):
    return analyse(series, *models, tta=False)


def test_a_normal_phantom_is_inside_the_training_range(models):
    analysis = graded(phantom_series(), models)
    assert len(analysis.gradings.discs) >= 5
    assert all(INTENSITY_OUT_OF_RANGE not in g.flags and SPACING_OUT_OF_RANGE not in g.flags
               for g in analysis.gradings.discs)


def test_low_confidence_flags_exactly_the_discs_with_a_grade_below_the_threshold(models):
    gradings = graded(phantom_series(), models).gradings
    for disc in gradings.discs:
        lowest = min(gradings.predicted(disc, task)[1] for task in gradings.scheme.task_names)
        assert (LOW_CONFIDENCE in disc.flags) == (lowest < LOW_CONFIDENCE_BELOW), disc
    assert len({LOW_CONFIDENCE in d.flags for d in gradings.discs}) == 2  # this phantom has both kinds


def test_an_intensity_offset_flags_every_disc_but_a_rescale_does_not(models):
    series = phantom_series()
    shifted = graded(series_from_array(series.array + OFFSET, series.geometry, "offset", ""), models)
    statistics = {v.level: volume_statistics(v) for v in shifted.volumes}
    compared = [g for g in shifted.gradings.discs if statistics[g.level] is not None]
    assert len(compared) >= 5 and all(INTENSITY_OUT_OF_RANGE in g.flags for g in compared)
    assert all(statistics[g.level][1] < CONTRAST_RANGE[0] for g in compared)
    scaled = graded(series_from_array(series.array * 1000, series.geometry, "scaled", ""), models)
    assert all(INTENSITY_OUT_OF_RANGE not in g.flags for g in scaled.gradings.discs)  # the extractor normalises it


@pytest.mark.parametrize("spec", [{"pixel_spacing_mm": (1.5, 1.5)}, {"slice_spacing_mm": 6.0}],
                         ids=["coarse pixels", "thick slices"])
def test_spacing_outside_the_training_range_flags_every_disc(models, spec):
    analysis = graded(phantom_series(**spec), models)
    assert analysis.gradings.discs and all(SPACING_OUT_OF_RANGE in g.flags for g in analysis.gradings.discs)


def test_a_disc_volume_the_edge_of_the_scan_cuts_is_not_held_to_the_intensity_range(models):
    """The disc the top of the view cuts through: its volume is part padding, part one body."""
    analysis = graded(series_from_array(phantom_series().array + OFFSET, phantom_series().geometry, "offset", ""), models)
    partial = {d.level for d in analysis.spine.discs if PARTIAL_VIEW in d.flags}
    cut = {v.level for v in analysis.volumes if not v.in_view[v.present].all()}
    assert partial and partial == cut
    assert all(volume_statistics(v) is None for v in analysis.volumes if v.level in cut)
    assert all(INTENSITY_OUT_OF_RANGE not in g.flags for g in analysis.gradings.discs if g.level in partial)


def test_disc_flags_follow_their_order_and_threshold(models):
    series = phantom_series()
    volume = next(v for v in graded(series, models).volumes if volume_statistics(v) is not None)
    assert disc_flags(volume, [0.9, LOW_CONFIDENCE_BELOW]) == ()
    assert disc_flags(volume, [0.9, LOW_CONFIDENCE_BELOW - 0.01]) == (LOW_CONFIDENCE,)
    thick = graded(phantom_series(slice_spacing_mm=6.0), models).volumes[0]
    assert disc_flags(thick, [0.3]) == (LOW_CONFIDENCE, SPACING_OUT_OF_RANGE)
    assert GRADING_FLAGS.index(LOW_CONFIDENCE) < GRADING_FLAGS.index(SPACING_OUT_OF_RANGE)


def test_grade_writes_the_grading_flags_into_gradings_csv_and_json(tmp_path, capsys):
    series = phantom_series(slice_spacing_mm=6.0)
    scan = write_volume(tmp_path / "thick_t2.nii.gz", series.array + OFFSET, series.geometry)
    assert cli.main(["grade", str(scan), "--out", str(tmp_path / "out"), "--no-tta"]) == 0, capsys.readouterr().err
    with (tmp_path / "out" / "gradings.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    document = json.loads((tmp_path / "out" / "gradings.json").read_text())
    assert rows and [r["flags"].split(FLAG_SEPARATOR) for r in rows] == [d["flags"] for d in document["discs"]]
    in_view = [d for d in document["discs"] if PARTIAL_VIEW not in d["flags"]]
    assert in_view and all({INTENSITY_OUT_OF_RANGE, SPACING_OUT_OF_RANGE} <= set(d["flags"]) for d in in_view)


def test_training_range_measures_the_manifest_scans(tmp_path, models):
    from spinecore.evaluate.training_range import training_range

    spacings = [(3.5, 0.6, 0.8), (4.5, 0.9, 0.7)]
    for n, (slices, row, column) in enumerate(spacings):
        series = phantom_series(slice_spacing_mm=slices, pixel_spacing_mm=(row, column), n_slices=5)
        write_volume(tmp_path / f"p{n}_t2.nii.gz", series.array, series.geometry)
    tasks = ",".join(SPIDER.task_names)
    (tmp_path / "manifest.csv").write_text(f"patient,scan,level,{tasks}\n1,p0_t2.nii.gz,L4-L5,3\n2,p1_t2.nii.gz,L4-L5,2\n")
    measured = training_range(tmp_path / "manifest.csv")
    assert measured["scans"] == 2 and measured["discs"] >= 8
    assert np.allclose(measured["slice_mm"], [3.5, 4.5]) and np.allclose(measured["in_plane_mm"], [0.6, 0.9])
    assert CONTRAST_RANGE[0] < measured["contrast"][0] <= measured["contrast"][1] < CONTRAST_RANGE[1]
