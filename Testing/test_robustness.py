"""The robustness corpus (``robustness_corpus.py``: 272 broken or odd inputs cut from a phantom study)
through ``spinecore grade`` (in this process, plus a few as real processes) and through one
``spinecore batch`` run: each case gives a valid result or one line naming the file (for batch, one
``failures.csv`` row), never a traceback, a warning or a file outside ``--out``."""
from __future__ import annotations

import contextlib
import csv
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from robustness_corpus import Case, make_corpus
from spinecore import cli
from spinecore.batch import find_cohort
from spinecore.report.analysis import ANALYSIS_FILES

MIN_CASES = 200
BATCH_TIMEOUT_S = 1200
#: Warning categories a plain ``python`` process does not show (its default filters).
HIDDEN_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
#: Cases also run as real processes, by kind: what a user meets first.
IN_A_PROCESS = ("zip_valid", "bad_Rows", "gzip_bomb", "zip_slip", "nifti_header_lie", "labelled_1.2.840.10008.1.2",
                "link_loop", "dicom_truncated")


@dataclass
class Outcome:
    code: int | str
    stdout: str
    stderr: str
    warnings: list[str]
    log: list[str]


def snapshot(folder: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every entry under ``folder`` (links not followed, ``skip`` left out): size and modification
    time of files, targets of links."""
    entries = {}
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if Path(top, d) != skip]
        for name in dirs + names:
            path = Path(top, name)
            info = path.lstat()
            entries[str(path)] = (os.readlink(path) if path.is_symlink() else (info.st_size, info.st_mtime_ns))
    return entries


@contextlib.contextmanager
def captured():
    """Standard output and error of this process at the file-descriptor level (so native libraries'
    output too) and of Python; ``text["out"]``, ``text["err"]`` once the block ends."""
    text = {}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield text
        finally:
            out.flush()
            err.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            text["out"], text["err"] = (f.seek(0) == 0 and f.read() for f in (out, err))


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


def grade_in_process(case: Path, out: Path) -> Outcome:
    """``spinecore grade CASE --out OUT --no-tta`` through :func:`spinecore.cli.main`."""
    records = Records()
    logging.getLogger().addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught, captured() as text:
            warnings.simplefilter("default")
            for category in HIDDEN_BY_DEFAULT:
                warnings.simplefilter("ignore", category)
            try:
                code = cli.main(["grade", str(case), "--out", str(out), "--no-tta"])
            except SystemExit as exc:
                code = f"SystemExit({exc.code})"
    finally:
        logging.getLogger().removeHandler(records)
    return Outcome(code, text["out"], text["err"], [str(w.message) for w in caught], records.records)


def problems(case: Case, outcome: Outcome, out: Path) -> list[str]:
    """What is wrong with ``outcome``: anything but a result or one line naming the file."""
    found = [f"warning: {w}" for w in outcome.warnings] + [f"log: {r}" for r in outcome.log]
    lines = outcome.stderr.splitlines()
    if outcome.code == 0:
        if outcome.stderr or not all((out / f).is_file() for f in ANALYSIS_FILES):
            found.append(f"graded, but stderr {outcome.stderr!r} and outputs {sorted(p.name for p in out.iterdir())}")
    elif outcome.code != cli.EXIT_INPUT_ERROR or len(lines) != 1 or "Traceback" in outcome.stderr:
        found.append(f"exit {outcome.code}, stderr {outcome.stderr!r}")
    elif not lines[0].startswith(f"spinecore: error: {case.path}") or out.exists():
        found.append(f"the line does not name the file, or output was left: {lines[0]!r}")
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, list[Case]]:
    folder = tmp_path_factory.mktemp("robustness")
    root, cases = make_corpus(folder)
    return folder, root, cases


@pytest.fixture(scope="module")
def graded(corpus) -> dict[Path, Outcome]:
    """Every case through ``spinecore grade`` in this process; nothing may change outside ``outs/``."""
    folder, _, cases = corpus
    outs = folder / "outs"
    before = snapshot(folder, skip=outs)
    outcomes = {case.path: grade_in_process(case.path, outs / case.path.name) for case in cases}
    assert snapshot(folder, skip=outs) == before, "a case changed something outside its --out"
    return outcomes


def test_the_corpus_has_enough_cases_of_every_kind(corpus):
    _, root, cases = corpus
    assert len(cases) >= MIN_CASES
    assert len({c.path for c in cases}) == len(cases) == len(list(root.iterdir()))
    kinds = {c.kind for c in cases}
    assert {"dicom_truncated", "nifti_truncated", "zip_truncated", "zip_slip", "zip_bomb", "zip_symlink", "gzip_bomb",
            "link_loop", "t2_and_t1", "empty_folder", "huge_header_dims", "encoded_rle"} <= kinds


def test_every_case_grades_or_fails_in_one_line_naming_the_file(corpus, graded):
    folder, _, cases = corpus
    found = {case.path.name: p for case in cases if (p := problems(case, graded[case.path], folder / "outs" / case.path.name))}
    assert not found, "\n".join(f"{name}: {p}" for name, p in found.items())
    codes = [graded[c.path].code for c in cases]
    assert 0 in codes and cli.EXIT_INPUT_ERROR in codes  # the corpus holds both valid and broken inputs


def test_cases_as_real_processes_print_one_line_and_no_warning(corpus, graded, tmp_path):
    _, _, cases = corpus
    chosen = [next(c for c in cases if c.kind == kind) for kind in IN_A_PROCESS]
    for case in chosen:
        out = tmp_path / case.path.name
        result = subprocess.run([sys.executable, "-m", "spinecore", "grade", str(case.path), "--out", str(out),
                                 "--no-tta"], capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == graded[case.path].code, (case, result.stderr)
        assert result.stderr.count("\n") == (0 if result.returncode == 0 else 1), (case, result.stderr)
        assert "Traceback" not in result.stderr and "arning" not in result.stderr, (case, result.stderr)


def test_one_batch_run_over_the_corpus_lists_every_broken_case_once(corpus, graded):
    folder, root, cases = corpus
    out = folder / "batch"
    before = snapshot(folder, skip=out)
    result = subprocess.run([sys.executable, "-m", "spinecore", "batch", str(root), "--out", str(out), "--workers", "2",
                             "--no-tta"], capture_output=True, text=True, timeout=BATCH_TIMEOUT_S, check=False)
    assert snapshot(folder, skip=out) == before, "the batch changed something outside its --out"
    assert result.returncode == 1 and "Traceback" not in result.stderr and "arning" not in result.stderr, result.stderr
    names = {path: name for name, path in find_cohort(root, out).studies.items()}
    with (out / "failures.csv").open(newline="", encoding="utf-8") as f:
        failures = {row["study"]: row["reason"] for row in csv.DictReader(f)}
    broken = {names[c.path] for c in cases if graded[c.path].code != 0}
    assert set(failures) == broken
    assert all(reason.startswith(str(root / name)) for name, reason in failures.items()), failures
    done = {p.name for p in out.iterdir() if p.is_dir()}
    assert done == {names[c.path] for c in cases if graded[c.path].code == 0}
    assert all((out / name / f).is_file() for name in done for f in ANALYSIS_FILES)
