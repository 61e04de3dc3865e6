"""Every result file of one analysed series (what ``spinecore grade`` writes)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from spinecore.errors import InputError, SpineCoreError
from spinecore.io.series import Series

from spinecore.pipeline import Analysis
from spinecore.report.gradings import write_grading_overview, write_gradings_csv, write_gradings_json
from spinecore.report.hotspots import write_hotspots
from spinecore.report.localisation import write_vertebrae_json
from spinecore.report.output import staged_output

#: The files :func:`write_analysis` always writes; the hotspots folder; the DICOM SEG and SR.
ANALYSIS_FILES = ("gradings.csv", "gradings.json", "vertebrae.json", "overview.png")
HOTSPOTS_FOLDER = "hotspots"
DICOM_FILES = ("seg.dcm", "sr.dcm")


def require_highdicom() -> None:
    """Raise when highdicom (the ``dicom`` extra, which ``--dicom-out`` needs) is not installed."""
    if importlib.util.find_spec("highdicom") is None:
        raise SpineCoreError(None, "--dicom-out needs highdicom: pip install 'spinecore[dicom]'")


def check_dicom_out(series: Series, source: str | Path) -> None:
    """Raise, before any work, when ``--dicom-out`` cannot be honoured: highdicom missing, or
    ``series`` (read from ``source``) not DICOM."""
    require_highdicom()
    if not series.dicom:
        raise InputError(source, "--dicom-out needs DICOM input")


def write_analysis(analysis: Analysis, out: Path, dicom_out: bool = False) -> None:
    """:data:`ANALYSIS_FILES`, when the analysis has hotspots :data:`HOTSPOTS_FOLDER`, and with
    ``dicom_out`` (DICOM input only) :data:`DICOM_FILES`
    (:mod:`spinecore.report.dicom`) into ``out``: all of them or, on any error, nothing."""
    with staged_output(out) as stage:
        write_gradings_csv(analysis.gradings, analysis.spine, stage / "gradings.csv")
        write_gradings_json(analysis.gradings, analysis.spine, stage / "gradings.json")
        write_vertebrae_json(analysis.spine, stage / "vertebrae.json")
        write_grading_overview(analysis.series, analysis.spine, analysis.gradings, stage / "overview.png")
        if analysis.hotspots:
            write_hotspots(analysis, stage / HOTSPOTS_FOLDER)
        if dicom_out:
            from spinecore.report.dicom import write_dicom  # highdicom: an optional dependency

            write_dicom(analysis.series, analysis.spine, analysis.gradings, tuple(stage / f for f in DICOM_FILES))
