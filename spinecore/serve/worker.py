"""What a worker process of the service runs: one uploaded study graded into its job folder.

Models are loaded once per process (:func:`load_models`, the pool's initializer). Progress goes to a
small JSON file in the job folder, which the server reads; a job whose folder is gone (the user
deleted it) stops at its next progress report.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path

from spinecore.errors import SpineCoreError, brief

#: The files a finished job holds besides those of :data:`spinecore.report.ANALYSIS_FILES`.
SLICES_FOLDER = "slices"
PROGRESS_FILE = "progress.json"
#: Share of a job's progress spent before / after :func:`spinecore.pipeline.analyse`.
READ_SHARE, WRITE_SHARE = 0.05, 0.15

_models: dict = {}


@dataclass(frozen=True)
class JobSpec:
    """One job as the worker sees it: where its files are and what to compute.

    Attributes:
        folder: the job's private folder (``upload`` / ``results`` / :data:`PROGRESS_FILE` inside).
        upload: the uploaded file, named by the server (never by the user).
        display_name: the file name the user gave, for messages and reports only.
        tta: 54-view test-time augmentation.
        hotspots: also compute evidence hotspots for every task.
    """

    folder: Path
    upload: Path
    display_name: str
    tta: bool = True
    hotspots: bool = False

    @property
    def results(self) -> Path:
        return self.folder / "results"


def load_models(localiser: Path | None, grader: Path | None, threads: int) -> None:
    """Pool initializer: load the models once for this process (``None``: the bundled ones). A
    failure is kept and reported by every job, so the process never dies on a bad model file.
    Ctrl+C is left to the server, which stops the workers itself."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from spinecore.grade import Grader
    from spinecore.localise import Localiser

    torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _models.update(localiser=Localiser.load(localiser), grader=Grader.load(grader))
    except SpineCoreError as exc:
        _models["error"] = str(exc)


def models_ready() -> str | None:
    """``None`` once this process has its models, else why it has not."""
    return _models.get("error")


class _Reporter:
    """The progress callback of one job: writes :data:`PROGRESS_FILE`, stops a deleted job."""

    def __init__(self, spec: JobSpec):
        self.spec = spec

    def __call__(self, fraction: float, message: str) -> None:
        from spinecore.pipeline import Cancelled

        if not self.spec.folder.is_dir():
            raise Cancelled()
        path = self.spec.folder / PROGRESS_FILE
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"progress": round(fraction, 3), "message": message}))
        os.replace(partial, path)

    def analysing(self, fraction: float, message: str) -> None:
        self(READ_SHARE + (1 - READ_SHARE - WRITE_SHARE) * fraction, message)


def run_job(spec: JobSpec) -> str | None:
    """Grade ``spec.upload`` into ``spec.results`` as ``spinecore grade`` does (``--dicom-out`` for
    DICOM input when highdicom is installed), plus :data:`SLICES_FOLDER` for the slice viewer.
    Returns ``None`` when done, else the reason in one line. The upload is deleted either way."""
    if "error" in _models:
        return _models["error"]
    report = _Reporter(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _grade(spec, report)
    except SpineCoreError as exc:
        return _public(str(exc), spec)
    except Exception as exc:  # noqa: BLE001 - untrusted input: any failure is one line, the server goes on
        from spinecore.pipeline import Cancelled

        if isinstance(exc, Cancelled):
            return "deleted"
        return _public(f"internal error: {type(exc).__name__}: {brief(exc)}", spec)
    finally:
        shutil.rmtree(spec.upload.parent, ignore_errors=True)
    return None


def _grade(spec: JobSpec, report: _Reporter) -> None:
    from spinecore.io import load_study
    from spinecore.pipeline import analyse
    from spinecore.report import staged_output, write_analysis, write_slice_images

    report(0.0, "reading the upload")
    series = dataclasses.replace(load_study(spec.upload).sagittal(), source=spec.display_name)
    grader = _models["grader"]
    analysis = analyse(series, _models["localiser"], grader, tta=spec.tta,
                       hotspot_tasks=grader.scheme.task_names if spec.hotspots else (), progress=report.analysing)
    report(1 - WRITE_SHARE, "writing the results")
    dicom_out = bool(series.dicom) and importlib.util.find_spec("highdicom") is not None
    with staged_output(spec.results) as stage:
        write_analysis(analysis, stage, dicom_out=dicom_out)
        write_slice_images(series, analysis.spine, stage / SLICES_FOLDER)
        report(1.0, "done")


def _public(message: str, spec: JobSpec) -> str:
    """``message`` with the server's own paths replaced by the user's file name."""
    return message.replace(str(spec.upload), spec.display_name).replace(str(spec.folder), "")
