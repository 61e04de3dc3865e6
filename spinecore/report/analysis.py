"""Every result file of one analysed series (what ``spinecore grade`` writes)."""
from __future__ import annotations

from pathlib import Path

from spinecore.pipeline import Analysis
from spinecore.report.gradings import write_grading_overview, write_gradings_csv, write_gradings_json
from spinecore.report.hotspots import write_hotspots
from spinecore.report.localisation import write_vertebrae_json
from spinecore.report.output import staged_output

#: The files :func:`write_analysis` writes.
ANALYSIS_FILES = ("gradings.csv", "gradings.json", "vertebrae.json", "overview.png")


def write_analysis(analysis: Analysis, out: Path) -> None:
    """``gradings.csv``, ``gradings.json``, ``vertebrae.json``, ``overview.png`` and, when the
    analysis has hotspots, ``hotspots/`` into ``out``: all of them or, on any error, nothing."""
    with staged_output(out) as stage:
        write_gradings_csv(analysis.gradings, analysis.spine, stage / "gradings.csv")
        write_gradings_json(analysis.gradings, analysis.spine, stage / "gradings.json")
        write_vertebrae_json(analysis.spine, stage / "vertebrae.json")
        write_grading_overview(analysis.series, analysis.spine, analysis.gradings, stage / "overview.png")
        if analysis.hotspots:
            write_hotspots(analysis.series, list(analysis.volumes), analysis.hotspots, stage / "hotspots",
                           analysis.method.value)
