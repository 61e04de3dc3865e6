"""Grading end to end with the bundled models: the `grade` command, its files, and bad model files."""
import csv
import json

import numpy as np
import pytest
import torch

from spinecore.errors import ModelError
from spinecore.grade import SPIDER, Grader, GradingNet, compact
from spinecore.io import load_study
from spinecore.localise import localise
from spinecore.models import TrainedModel, default_model_path, save_model
from spinecore.localise.spine import FLAGS, INFERRED_VERTEBRA, PARTIAL_VIEW
from spinecore.report.gradings import FLAG_SEPARATOR, MEASUREMENTS

from conftest import REPO, SAMPLE_T2, in_full_view, run_cli


def test_grade_command_on_a_phantom_dicom_study(phantom_dir, phantom_truth, tmp_path):
    out = tmp_path / "out"
    result = run_cli("grade", phantom_dir / "dicom", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["gradings.csv", "gradings.json", "overview.png", "vertebrae.json"]
    with (out / "gradings.csv").open() as f:
        rows = list(csv.DictReader(f))
    expected_levels = [d["level"] for d in phantom_truth["discs"]]
    assert [r["level"] for r in rows] == expected_levels  # levels not in view are absent
    assert list(rows[0]) == ["level", "flags", *MEASUREMENTS, *SPIDER.task_names,
                             *(f"{t}_confidence" for t in SPIDER.task_names)]
    in_view = {d["level"]: d for d in in_full_view(phantom_truth["discs"])}
    for row in rows:  # discs in full view: no localisation flag, and heights near the rendered truth
        flags = set(row["flags"].split(FLAG_SEPARATOR)) & set(FLAGS)
        if row["level"] not in in_view:  # the disc the top of the view cuts through
            assert flags == {PARTIAL_VIEW, INFERRED_VERTEBRA} and row["middle_height_mm"] == ""
            continue
        assert not flags
        assert float(row["middle_height_mm"]) == pytest.approx(in_view[row["level"]]["height_mm"], abs=4.5)
    document = json.loads((out / "gradings.json").read_text())
    assert document["scheme"]["name"] == "spider" and document["tta"] is True and document["model"]
    for row, disc in zip(rows, document["discs"]):
        assert disc["flags"] == [f for f in row["flags"].split(FLAG_SEPARATOR) if f]
        if disc["measurements"] is not None:
            assert disc["measurements"]["slip_mm"] == pytest.approx(float(row["slip_mm"]))
        for task in SPIDER.tasks:
            probabilities = disc["tasks"][task.name]["probabilities"]
            assert list(probabilities) == [str(v) for v in task.values]
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
            best = max(probabilities, key=probabilities.get)
            assert row[task.name] == best == str(disc["tasks"][task.name]["grade"])
            assert float(row[f"{task.name}_confidence"]) == pytest.approx(probabilities[best], abs=1e-3)
    vertebrae = json.loads((out / "vertebrae.json").read_text())
    assert [v["level"] for v in vertebrae["vertebrae"]] == [v["level"] for v in phantom_truth["vertebrae"]]


def test_tta_off_grades_from_the_centre_view_only():
    series = load_study(SAMPLE_T2).sagittal()
    spine = localise(series)
    grader = Grader.load()
    plain, augmented = grader(series, spine, tta=False), grader(series, spine, tta=True)
    assert [d.level for d in plain.discs] == [d.level for d in augmented.discs] == [d.level for d in spine.discs]
    differs = [not np.allclose(a.probabilities["pfirrmann"], b.probabilities["pfirrmann"])
               for a, b in zip(plain.discs, augmented.discs)]
    assert any(differs)


@pytest.mark.parametrize("make", ["garbage", "localiser", "wrong_shapes"])
def test_bad_grader_files_are_one_line_errors(make, tmp_path):
    path = tmp_path / "model.pt"
    if make == "garbage":
        path.write_bytes(b"PK\x03\x04 truncated")
    elif make == "localiser":
        path.write_bytes(default_model_path("localiser").read_bytes())
    else:
        net = GradingNet(compact([2, 2]))
        save_model(path, TrainedModel("grader", {"net": compact([5, 4]).to_dict(), "scheme": SPIDER.to_dict()}, net, {}))
    with pytest.raises(ModelError) as info:
        Grader.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    result = run_cli("grade", SAMPLE_T2, "--out", tmp_path / "out", "--model", path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "model.pt" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bundled_grader_is_small_documented_and_loads_safely():
    path = default_model_path("grader")
    assert path.stat().st_size < 20e6
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["metadata"]["command"].startswith("spinecore train ")
    card = (REPO / "Resources" / "Models" / "grader.md").read_text()
    assert checkpoint["metadata"]["command"] in card
    grader = Grader.load()
    assert grader.scheme == SPIDER and torch.all(grader.net.temperature > 0)


def test_grade_writes_hotspots_in_the_scan_geometry(tmp_path):
    import SimpleITK as sitk

    out = tmp_path / "out"
    result = run_cli("grade", SAMPLE_T2, "--out", out, "--hotspots", "--augmentations", 2, "--method", "guided")
    assert result.returncode == 0, result.stderr
    with (out / "gradings.csv").open() as f:
        levels = [r["level"] for r in csv.DictReader(f)]
    files = sorted(p.name for p in (out / "hotspots").iterdir())
    assert files == sorted([f"{lv}_{t}.nii.gz" for lv in levels for t in SPIDER.task_names] + [f"{lv}.png" for lv in levels])
    scan = sitk.ReadImage(str(SAMPLE_T2))
    heat = sitk.ReadImage(str(out / "hotspots" / f"{levels[-1]}_pfirrmann.nii.gz"))
    assert heat.GetSize() == scan.GetSize() and heat.GetSpacing() == pytest.approx(scan.GetSpacing())
    assert heat.GetOrigin() == pytest.approx(scan.GetOrigin()) and heat.GetDirection() == pytest.approx(scan.GetDirection())
    values = sitk.GetArrayFromImage(heat)
    assert 0 <= values.min() and values.max() <= 1.0 + 1e-6 and values.max() > 0.5
    # the heat lies around the L5-S1 disc found by the localiser
    disc = json.loads((out / "gradings.json").read_text())["discs"][-1]
    index = np.argwhere(values > 0.5).mean(0)[::-1]  # (i, j, k) as ITK indexes
    centre = np.array(heat.TransformContinuousIndexToPhysicalPoint(index.tolist()))
    assert np.linalg.norm(centre - disc["center_mm"]) < 25.0
