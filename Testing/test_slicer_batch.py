"""The batch script (``Slicer --python-script`` or plain Python with slicer-core) on a folder
holding the bundled sample, a phantom DICOM study (sagittal T2 and T1, axial stacks) and a broken
file, with spinecore installed from its wheel (test_packaging.py runs this file in a fresh venv)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import slicer
from conftest import BATCH_SCRIPT, REPO, SAMPLE_T2, needs_installed_engine
from SpineNetLib.headless import new_scene, release

pytestmark = needs_installed_engine


def run_batch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BATCH_SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, phantom_dir):
    folder = tmp_path_factory.mktemp("cohort")
    shutil.copy(SAMPLE_T2, folder / "sample.nii.gz")
    shutil.copytree(phantom_dir / "dicom", folder / "phantom")
    (folder / "broken.nii.gz").write_bytes(b"not a volume")
    return folder


@pytest.fixture(scope="module")
def batch_run(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "results"
    return run_batch("--input", cohort, "--output", out, "--hotspots", "pfirrmann", "--augmentations", "3"), out


def test_batch_grades_each_study_and_reports_the_broken_one(batch_run, cohort):
    result, out = batch_run
    assert result.returncode == 1
    engine = Path(result.stdout.splitlines()[0].split("(", 1)[1].rstrip(")"))
    assert engine == Path(sysconfig.get_paths()["purelib"]) / "spinecore" and not engine.is_relative_to(REPO)
    assert sorted(p.name for p in out.iterdir()) == ["phantom", "sample"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and str(cohort / "broken.nii.gz") in errors[0] and "Traceback" not in result.stderr
    assert "2 of 3 studies graded" in result.stdout
    # the phantom study has a T1: the bundled T1 + T2 grader reads it; its axial series are given, not used
    lines = {study: next(line for line in result.stdout.splitlines() if str(cohort / study) in line)
             for study in ("phantom", "sample.nii.gz")}
    not_used = "streams: t2 + t1 (the model reads t2+t1: axial not used)"
    assert lines["phantom"].endswith(f"{not_used}; wrote {out / 'phantom'}")
    assert "streams: t2; wrote" in lines["sample.nii.gz"]
    for study in ("phantom", "sample"):
        names = {p.relative_to(out / study).as_posix() for p in (out / study).rglob("*") if p.is_file()}
        assert {"structures.seg.nrrd", "heatmap_pfirrmann.nrrd", "gradings.csv", "scene.mrb", "overview.png",
                "quadrilaterals/L4.mrk.json"} <= names
        assert not any(n.startswith(".spinecore-partial") for n in names)


@pytest.mark.parametrize("study", ["phantom", "sample"])
def test_batch_scene_reopens_with_every_output(batch_run, study, phantom_truth):
    _, out = batch_run
    series = len(phantom_truth["series"]) if study == "phantom" else 1  # the phantom's T1 and axial series too
    scene = new_scene()
    try:
        assert scene.ReadFromMRB(str(out / study / "scene.mrb"))
        curves = scene.GetNumberOfNodesByClass("vtkMRMLMarkupsClosedCurveNode")
        assert curves == len(list((out / study / "quadrilaterals").glob("*.mrk.json"))) >= 6
        segmentation = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode").GetSegmentation()
        assert segmentation.GetNumberOfSegments() == 2 * curves - 1
        volumes = [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
                   for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
        heatmaps = {v.GetAttribute("SpineNet.Stream"): v for v in volumes
                    if v.GetAttribute("SpineNet.Task") == "pfirrmann"}
        streams = ["t1", "t2"] if study == "phantom" else ["t2"]  # the bundled T1 + T2 grader reads the phantom's T1
        assert len(volumes) == series + len(streams) and sorted(heatmaps) == streams
        assert np.array_equal(slicer.util.arrayFromVolume(heatmaps["t2"]).shape,
                              slicer.util.arrayFromVolume(volumes[0]).shape)
        table = scene.GetFirstNodeByClass("vtkMRMLTableNode")
        assert table.GetNumberOfRows() == curves - 1
    finally:
        release(scene)


def test_batch_rejects_an_unknown_task_before_writing_anything(cohort, tmp_path):
    result = run_batch("--input", cohort, "--output", tmp_path / "out", "--hotspots", "pfirrmann,sharpness")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "sharpness" in result.stderr
    assert not (tmp_path / "out").exists()


def test_batch_on_an_empty_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_batch("--input", tmp_path / "empty", "--output", tmp_path / "out")
    assert result.returncode == 2 and "empty" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
