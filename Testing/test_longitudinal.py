"""spinecore compare: a phantom and its follow-up (same bodies, degenerated discs) against the truth,
and two different phantoms, with the bundled Siamese model."""
from __future__ import annotations

import csv
import json

import pytest
from conftest import run_cli

from spinecore.grade import Grader
from spinecore.io.write import write_volume
from spinecore.localise import Localiser
from spinecore.longitudinal import compare
from spinecore.phantom import PhantomSpec, make_phantom

#: Thesis-free target of the issue: disc height change within this of the truth (mm).
HEIGHT_CHANGE_TOLERANCE_MM = 1.5
FOLLOW_UP_YEARS = 8.0


def phantom(seed: int, years: float = 0.0):
    study = make_phantom(PhantomSpec(seed=seed, follow_up_years=years, n_slices=9, t1=False, axial=False))
    return study.get("sag_t2").to_series(f"phantom{seed}_{years:g}y.nii.gz"), study.truth


@pytest.fixture(scope="module")
def models():
    return Localiser.load(), Grader.load()


@pytest.fixture(scope="module")
def follow_up(models):
    (baseline, before), (later, after) = phantom(31), phantom(31, FOLLOW_UP_YEARS)
    return compare(baseline, later, *models, tta=False), before, after


def test_a_phantom_and_its_follow_up_are_one_subject_and_their_disc_height_losses_match_the_truth(follow_up):
    comparison, before, after = follow_up
    assert comparison.same_subject, (comparison.distance, comparison.threshold)
    heights = [{d["level"]: d["height_mm"] for d in visit["discs"]} for visit in (before, after)]
    checked = 0
    for row in comparison.rows():
        if row["middle_height_change_mm"] is None or not all(row["level"] in h for h in heights):
            continue
        true_change = heights[1][row["level"]] - heights[0][row["level"]]
        assert abs(row["middle_height_change_mm"] - true_change) <= HEIGHT_CHANGE_TOLERANCE_MM, (row["level"], row, true_change)
        checked += 1
    assert checked >= 4


def test_two_different_phantoms_are_not_one_subject(models):
    comparison = compare(phantom(31)[0], phantom(32)[0], *models, tta=False)
    assert not comparison.same_subject, (comparison.distance, comparison.threshold)


def test_compare_writes_the_changes_the_verdict_and_both_studies(tmp_path):
    for seed, years in ((33, 0.0), (33, FOLLOW_UP_YEARS)):
        series, _ = phantom(seed, years)
        write_volume(tmp_path / f"{years:g}.nii.gz", series.array, series.geometry)
    done = run_cli("compare", tmp_path / "0.nii.gz", tmp_path / f"{FOLLOW_UP_YEARS:g}.nii.gz", "--out", tmp_path / "out",
                   "--no-tta")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    verdict = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert verdict["same_subject"] is True and verdict["distance"] < verdict["same_subject_below"]
    rows = list(csv.DictReader((tmp_path / "out" / "changes.csv").open()))
    assert rows and {"pfirrmann_baseline", "pfirrmann_follow_up", "pfirrmann_change", "middle_height_change_mm"} <= set(rows[0])
    for visit in ("baseline", "follow-up"):
        assert (tmp_path / "out" / visit / "gradings.csv").is_file()
    assert (tmp_path / "out" / "changes.png").stat().st_size > 10_000


def test_compare_of_a_bad_file_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("no scan")
    series, _ = phantom(34)
    write_volume(tmp_path / "scan.nii.gz", series.array, series.geometry)
    done = run_cli("compare", tmp_path / "scan.nii.gz", tmp_path / "notes.txt", "--out", tmp_path / "out")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "notes.txt" in done.stderr
    assert not (tmp_path / "out").exists()
