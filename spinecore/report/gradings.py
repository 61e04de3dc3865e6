"""Grading results as files: ``gradings.csv``, ``gradings.json`` and the overview with its table."""
from __future__ import annotations

import csv
import json
from dataclasses import fields
from pathlib import Path
from typing import Sequence

from spinecore.grade.grader import Gradings
from spinecore.grade.schemes import GradingScheme
from spinecore.io.series import Series
from spinecore.localise.measure import DiscMeasurements
from spinecore.localise.spine import Spine
from spinecore.report.localisation import draw_overview, overview_slice, pyplot, save_png


#: The measurement columns of ``gradings.csv`` (:class:`~spinecore.localise.measure.DiscMeasurements`).
MEASUREMENTS = tuple(f.name for f in fields(DiscMeasurements))
#: Separates a disc's QC flags in one CSV cell.
FLAG_SEPARATOR = ";"


def grading_columns(scheme: GradingScheme) -> list[tuple[str, type]]:
    """The columns of ``gradings.csv`` and their types: ``level``, ``flags`` (QC flags joined by
    ``;``, empty when none), the measurements (mm, index, %), the grade per task (in the scheme's
    values), then ``<task>_confidence``."""
    names = scheme.task_names
    return [("level", str), ("flags", str), *((m, float) for m in MEASUREMENTS), *((n, int) for n in names),
            *((f"{n}_confidence", float) for n in names)]


def disc_flags(gradings: Gradings, spine: Spine) -> dict[str, tuple[str, ...]]:
    """Every QC flag of each graded disc by level: its localisation flags, then its grading flags."""
    discs = {d.level: d for d in spine.discs}
    return {g.level: discs[g.level].flags + g.flags for g in gradings.discs}


def disc_rows(gradings: Gradings, spine: Spine) -> list[dict]:
    """One row per graded disc with the :func:`grading_columns` (measurements None where the disc
    was not measured: next to an inferred vertebra)."""
    discs, flags = {d.level: d for d in spine.discs}, disc_flags(gradings, spine)
    rows = []
    for row in gradings.rows():
        disc = discs[row["level"]]
        measured = disc.measurements.to_dict() if disc.measurements else dict.fromkeys(MEASUREMENTS)
        rows.append({"level": row["level"], "flags": FLAG_SEPARATOR.join(flags[disc.level]), **measured, **row})
    return rows


def write_gradings_csv(gradings: Gradings, spine: Spine, path: Path) -> Path:
    """``gradings.csv``: one row per graded disc, the :func:`grading_columns` (opens in Excel)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [name for name, _ in grading_columns(gradings.scheme)])
        writer.writeheader()
        writer.writerows(disc_rows(gradings, spine))
    return path


def write_gradings_json(gradings: Gradings, spine: Spine, path: Path) -> Path:
    """Every class probability per level and task, with the scheme, the model id and each disc's
    centre (LPS mm), localiser slice, QC flags, measurements and the streams its grades rest on
    (``["t2"]``, ``["t2", "t1"]``, …)."""
    discs, flags = {d.level: d for d in spine.discs}, disc_flags(gradings, spine)
    document = {
        "source": spine.source, "model": gradings.model_id, "tta": gradings.tta, "scheme": gradings.scheme.to_dict(),
        "discs": [{
            "level": g.level,
            "center_mm": [round(float(v), 3) for v in discs[g.level].center_mm],
            "slice": discs[g.level].slice,
            "flags": list(flags[g.level]),
            "measurements": discs[g.level].measurements.to_dict() if discs[g.level].measurements else None,
            "streams": list(g.streams),
            "tasks": {task.name: {"grade": gradings.predicted(g, task.name)[0],
                                  "confidence": round(gradings.predicted(g, task.name)[1], 4),
                                  "probabilities": {str(v): round(float(p), 4)
                                                    for v, p in zip(task.values, g.probabilities[task.name])}}
                      for task in gradings.scheme.tasks},
        } for g in gradings.discs],
    }
    path.write_text(json.dumps(document, indent=1))
    return path


def streams_text(streams: Sequence[str]) -> str:
    """A disc's streams as one cell of text, e.g. ``"t2 + t1"``."""
    return " + ".join(streams)


def streams_note(gradings: Gradings) -> str:
    """What the grades rest on, e.g. ``"streams: t2 + t1"`` or ``"streams: t2 + t1 (L1-L2: t2)"``."""
    common = max((d.streams for d in gradings.discs), key=len, default=("t2",))
    exceptions = [f"{d.level}: {streams_text(d.streams)}" for d in gradings.discs if d.streams != common]
    return f"streams: {streams_text(common)}" + (f" ({'; '.join(exceptions)})" if exceptions else "")


def unused_streams_note(model_streams: Sequence[str], unused: Sequence[str],
                        reasons: dict[str, str] | None = None) -> str:
    """``" (the model reads t2: t1 not used)"`` for streams given to a run that its model does not
    read (:attr:`spinecore.pipeline.Analysis.unused_streams`), ``" (t1 not used: REASON)"`` for one
    it reads that did not match (``reasons``), ``""`` when there are none."""
    reasons = reasons or {}
    unread = [s for s in unused if s not in reasons]
    parts = [f"the model reads {'+'.join(model_streams)}: {' and '.join(unread)} not used"] if unread else []
    parts += [f"{s} not used: {reasons[s]}" for s in unused if s in reasons]
    return f" ({'; '.join(parts)})" if parts else ""


def write_grading_overview(series: Series, spine: Spine, gradings: Gradings, path: Path) -> Path:
    """The labelled quadrilaterals on the middle slice beside the gradings table."""
    plt = pyplot()
    rows_mm, cols_mm = (n * s for n, s in zip(series.shape[1:], series.spacing[1:]))
    height = 7.0
    image_width = max(3.0, height * cols_mm / rows_mm)
    names = gradings.scheme.task_names
    fig, (ax_image, ax_table) = plt.subplots(1, 2, figsize=(image_width + 1.1 * len(names) + 1.5, height),
                                             gridspec_kw={"width_ratios": [image_width, 1.1 * len(names) + 1.5]})
    draw_overview(ax_image, series, spine, title=f"{Path(spine.source).name}: slice {overview_slice(spine)}")
    ax_table.set_axis_off()
    rows = disc_rows(gradings, spine)
    if rows:
        cells = [[row["level"] + (" *" if row["flags"] else ""),
                  *(f"{row[n]} ({row[n + '_confidence']:.2f})" for n in names)] for row in rows]
        table = ax_table.table(cellText=cells, colLabels=["level", *(n.replace("_", "\n") for n in names)],
                               loc="center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.scale(1.0, 2.2)
    else:
        ax_table.text(0.5, 0.5, "no disc between two labelled vertebrae", ha="center", va="center")
    ax_table.set_title(f"grade (probability) — {gradings.model_id}{', TTA' if gradings.tta else ''}\n"
                       f"{streams_note(gradings)}", fontsize=9)
    flagged = [f"{row['level']}: {row['flags'].replace(FLAG_SEPARATOR, ', ')}" for row in rows if row["flags"]]
    if flagged:
        ax_table.text(0.5, 0.02, "* QC flags — " + "; ".join(flagged), ha="center", va="bottom", fontsize=8,
                      transform=ax_table.transAxes, wrap=True)
    save_png(fig, path, 100)
    plt.close(fig)
    return path
