"""``spinecore batch`` on a real Dask LocalCluster (2 worker processes): good studies graded, broken
ones listed in ``failures.csv``, a run killed part-way and run again ends as one run would."""
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLE_T2, run_cli
from spinecore.batch.cohort import WORKER_MALLOC, dask_client
from spinecore.batch.layout import find_cohort
from spinecore.errors import InputError
from spinecore.grade.qc import INTENSITY_OUT_OF_RANGE
from spinecore.io.write import write_volume
from spinecore.phantom import PhantomSpec, make_phantom, write_phantom
from spinecore.report.analysis import ANALYSIS_FILES, HOTSPOTS_FOLDER

GOOD = ("a", "b", "c", "phantom")
BROKEN = ("text", "truncated")
KILL_WAIT_S = 240  # the killed run must have finished a first study by then


@pytest.fixture(scope="module")
def cohort_root(tmp_path_factory) -> Path:
    """Three copies of the bundled sample, a 5-slice phantom DICOM study, a text file and a truncated
    NIfTI, each named ``.nii.gz``."""
    root = tmp_path_factory.mktemp("cohort")
    for name in GOOD[:3]:
        shutil.copy(SAMPLE_T2, root / f"{name}.nii.gz")
    phantom = tmp_path_factory.mktemp("phantom")
    write_phantom(make_phantom(PhantomSpec(seed=11, n_slices=5, t1=False, axial=False)), phantom)
    shutil.copytree(phantom / "dicom", root / "phantom")
    (root / "text.nii.gz").write_text("not a scan\n")
    (root / "truncated.nii.gz").write_bytes(SAMPLE_T2.read_bytes()[:20000])
    return root


def batch_args(root: Path, out: Path) -> list[str]:
    return ["batch", str(root), "--out", str(out), "--workers", "2", "--no-tta"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def one_run(cohort_root, tmp_path_factory):
    """One uninterrupted run: (its output folder, the completed process)."""
    before = listing(cohort_root)
    out = tmp_path_factory.mktemp("uninterrupted") / "out"
    result = run_cli(*batch_args(cohort_root, out))
    assert listing(cohort_root) == before  # nothing written beside the inputs
    return out, result


def test_batch_grades_good_studies_and_lists_broken_ones(cohort_root, one_run):
    out, result = one_run
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "distributed" not in result.stderr, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*GOOD, "cohort.csv", "cohort.png", "failures.csv"])
    per_study = {name: read_csv(out / name / "gradings.csv") for name in GOOD}
    assert all(sorted(p.name for p in (out / name).iterdir()) == sorted(ANALYSIS_FILES) for name in GOOD)
    assert all(len(rows) >= 3 for rows in per_study.values())
    cohort = read_csv(out / "cohort.csv")
    assert len(cohort) == sum(len(rows) for rows in per_study.values())
    assert [r["study"] for r in cohort] == sorted(r["study"] for r in cohort)
    assert [{k: v for k, v in r.items() if k != "study"} for r in cohort if r["study"] == "b"] == per_study["b"]
    failures = read_csv(out / "failures.csv")
    assert [f["study"] for f in failures] == sorted(BROKEN)
    assert all(f["reason"].startswith(f"{cohort_root / f['study']}.nii.gz: ") for f in failures)
    assert "4 of 6 studies graded" in result.stdout and "2 failed" in result.stdout


def test_batch_killed_part_way_then_rerun_ends_as_one_run(cohort_root, one_run, tmp_path):
    reference, _ = one_run
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "spinecore", *batch_args(cohort_root, out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + KILL_WAIT_S
    while not any((out / name / ANALYSIS_FILES[-1]).is_file() for name in GOOD) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)  # the main process only, as `kill -9 PID` would
    run.wait()
    time.sleep(1)
    try:
        os.killpg(run.pid, signal.SIGKILL)  # its workers exit once it dies; never leave one behind
    except ProcessLookupError:
        pass
    assert not (out / "cohort.csv").exists(), "the run ended before it could be killed"
    rerun = run_cli(*batch_args(cohort_root, out))
    assert rerun.returncode == 1 and "Traceback" not in rerun.stderr, rerun.stderr
    assert "already done" in rerun.stdout
    assert listing(out) == listing(reference)
    for name in ("cohort.csv", "failures.csv", *(f"{s}/gradings.csv" for s in GOOD)):
        assert (out / name).read_text() == (reference / name).read_text(), name


def test_batch_bad_input_root_and_options_are_one_line_errors(tmp_path):
    missing = run_cli("batch", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0, missing.stderr
    assert missing.stderr.startswith(f"spinecore: error: {tmp_path / 'nowhere'}: ")
    both = run_cli("batch", tmp_path, "--out", tmp_path / "out", "--workers", "2", "--scheduler", "tcp://x:1")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    assert not (tmp_path / "out").exists()


def test_batch_without_the_cohort_extra_says_what_to_install(cohort_root, tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "distributed.py").write_text("raise ModuleNotFoundError(\"No module named 'distributed'\", "
                                           "name='distributed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = run_cli("batch", cohort_root, "--out", tmp_path / "out", cwd=Path(__file__).resolve().parents[1], env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "install spinecore[cohort]" in result.stderr and not (tmp_path / "out").exists()


def test_batch_with_every_study_done_only_rebuilds_the_cohort_files(one_run, tmp_path):
    reference, _ = one_run
    root, out = tmp_path / "root", tmp_path / "out"
    root.mkdir()
    shutil.copy(SAMPLE_T2, root / "a.nii.gz")
    shutil.copytree(reference / "a", out / "a")
    for leftover in (out / ".spinecore-partial-x", out / "a" / ".spinecore-partial-y"):  # as a kill leaves them
        leftover.mkdir()
    result = run_cli("batch", root, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "1 of 1 studies graded (1 already done); 0 failed" in result.stdout
    summaries = ["cohort.csv", "cohort.png", "failures.csv"]
    assert listing(out) == sorted(["a", *(f"a/{f}" for f in ANALYSIS_FILES), *summaries])
    assert len(read_csv(out / "cohort.csv")) == len(read_csv(out / "a" / "gradings.csv"))
    assert read_csv(out / "failures.csv") == []


def test_studies_are_named_after_their_file_or_folder_and_never_share_a_name(tmp_path):
    for name in ("a.nii.gz", "a.nrrd", "b.mha", "cohort.zip", "scan.v2.nii", ".hidden.nii.gz"):
        (tmp_path / name).touch()
    (tmp_path / "patient.7").mkdir()
    (tmp_path / "out").mkdir()
    cohort = find_cohort(tmp_path, tmp_path / "out")
    assert {n: p.name for n, p in cohort.studies.items()} == {
        "a.nii.gz": "a.nii.gz", "a.nrrd": "a.nrrd", "b": "b.mha", "cohort": "cohort.zip", "scan.v2": "scan.v2.nii",
        "patient.7": "patient.7"}
    assert sorted(cohort.todo()) == sorted(cohort.studies)  # nothing done yet; "out" itself is no study
    with pytest.raises(InputError, match="not a folder"):
        find_cohort(tmp_path, tmp_path / "b.mha")


def test_batch_hotspots_land_in_each_study_folder_and_flags_filter_the_cohort(tmp_path):
    """``--hotspots pfirrmann``: every graded disc of every study gets its heatmap and montage, as
    ``spinecore grade --hotspots`` writes them; ``cohort.csv``'s flags pick out the study whose
    intensities are outside the training range."""
    root = tmp_path / "root"
    root.mkdir()
    series = make_phantom(PhantomSpec(seed=3, n_slices=5, slice_spacing_mm=4.0, pixel_spacing_mm=(0.7, 0.7), t1=False,
                                      axial=False)).get("sag_t2")
    write_volume(root / "normal_t2.nii.gz", series.array, series.geometry)
    write_volume(root / "offset_t2.nii.gz", series.array + 3000, series.geometry)  # contrast squashed
    out = tmp_path / "out"
    result = run_cli(*batch_args(root, out), "--hotspots", "pfirrmann", "--augmentations", "2")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    for study in ("normal_t2", "offset_t2"):
        levels = [r["level"] for r in read_csv(out / study / "gradings.csv")]
        assert levels and sorted(p.name for p in (out / study / HOTSPOTS_FOLDER).iterdir()) == sorted(
            [f"{level}_pfirrmann.nii.gz" for level in levels] + [f"{level}.png" for level in levels])
    flagged = {r["study"] for r in read_csv(out / "cohort.csv") if INTENSITY_OUT_OF_RANGE in r["flags"].split(";")}
    assert flagged == {"offset_t2"}


def test_a_study_done_without_the_extras_asked_for_is_not_done(tmp_path):
    (tmp_path / "a.nii.gz").touch()
    (tmp_path / "out" / "a").mkdir(parents=True)
    for name in ANALYSIS_FILES:
        (tmp_path / "out" / "a" / name).touch()
    assert find_cohort(tmp_path, tmp_path / "out").todo() == []
    assert find_cohort(tmp_path, tmp_path / "out", (HOTSPOTS_FOLDER,)).todo() == ["a"]
    (tmp_path / "out" / "a" / HOTSPOTS_FOLDER).mkdir()
    assert find_cohort(tmp_path, tmp_path / "out", (HOTSPOTS_FOLDER,)).todo() == []


def test_batch_rejects_an_unknown_hotspot_task_in_one_line_before_starting(cohort_root, tmp_path):
    result = run_cli("batch", cohort_root, "--out", tmp_path / "out", "--hotspots", "pfirrmann,sharpness")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "unknown task(s) sharpness" in result.stderr and not (tmp_path / "out").exists()


def test_local_workers_keep_freed_memory_unless_the_environment_says_otherwise(monkeypatch):
    """Dask's default (trim at 64 KiB) would make every large tensor page-fault in afresh."""
    for name in WORKER_MALLOC:
        monkeypatch.delenv(name, raising=False)  # restored after the test: Dask sets them here too
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "123456")
    with dask_client(workers=1) as client:
        (seen,) = client.run(lambda: {name: os.environ.get(name) for name in WORKER_MALLOC}).values()
    assert seen == {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "123456"}
