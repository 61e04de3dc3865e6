"""A cohort's summary files (``spinecore batch``), rebuilt from its study folders: ``cohort.csv`` (one row per graded disc),
``cohort.png`` (grade distributions by level) and ``failures.csv`` (one row per failed study)."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from spinecore.levels import DISCS
from spinecore.report.gradings import MEASUREMENTS
from spinecore.report.localisation import pyplot, save_png
from spinecore.report.output import staged_output

COHORT_CSV, COHORT_PNG, FAILURES_CSV = "cohort.csv", "cohort.png", "failures.csv"
#: gradings.csv's columns that are not grades: the disc, its QC flags and its measurements
NOT_GRADES = ("study", "level", "flags", *MEASUREMENTS)
CONFIDENCE_SUFFIX = "_confidence"  # gradings.csv's confidence columns
PLOT_COLUMNS = 4  # panels per row of cohort.png, one panel per task


def cohort_rows(out: Path, studies: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """The columns (``study`` then those of ``gradings.csv``) and one row per graded disc of the
    graded ``studies`` (folders of ``out``), studies in name order, discs in each study's order."""
    columns, rows = ["study"], []
    for name in sorted(studies):
        with (out / name / "gradings.csv").open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns += [c for c in reader.fieldnames or () if c not in columns]
            rows += [{"study": name, **row} for row in reader]
    return columns, rows


def write_cohort_files(out: Path, studies: list[str], failures: dict[str, str]) -> None:
    """``cohort.csv`` (the graded ``studies``), ``cohort.png`` and ``failures.csv`` into ``out``,
    replacing any earlier ones, all together or none."""
    columns, rows = cohort_rows(out, studies)
    with staged_output(out) as stage:
        _write_csv(stage / COHORT_CSV, columns, rows)
        _write_csv(stage / FAILURES_CSV, ["study", "reason"],
                   [{"study": name, "reason": failures[name]} for name in sorted(failures)])
        write_distributions(columns, rows, stage / COHORT_PNG)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def _grade_key(grade: str) -> tuple[float, str]:
    """Grades sort as numbers when they are numbers (``"10"`` after ``"2"``)."""
    try:
        return float(grade), grade
    except ValueError:
        return float("inf"), grade


def write_distributions(columns: list[str], rows: list[dict[str, str]], path: Path) -> Path:
    """One panel per task: at each level, the count of discs with each grade, stacked."""
    plt = pyplot()
    tasks = [c for c in columns if c not in NOT_GRADES and not c.endswith(CONFIDENCE_SUFFIX)]
    levels = sorted({r["level"] for r in rows}, key=lambda v: (DISCS.index(v) if v in DISCS else len(DISCS), v))
    n_rows = max(1, -(-len(tasks) // PLOT_COLUMNS))
    fig, axes = plt.subplots(n_rows, PLOT_COLUMNS, figsize=(4 * PLOT_COLUMNS, 3.2 * n_rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_axis_off()
    if not rows:
        axes.flat[0].text(0.5, 0.5, "no graded disc", ha="center", va="center")
    for ax, task in zip(axes.flat, tasks):
        counts = Counter((r["level"], r[task]) for r in rows)
        grades = sorted({r[task] for r in rows}, key=_grade_key)
        colours = plt.get_cmap("viridis")([i / max(1, len(grades) - 1) for i in range(len(grades))])
        bottom = [0] * len(levels)
        for grade, colour in zip(grades, colours):
            heights = [counts[level, grade] for level in levels]
            ax.bar(levels, heights, bottom=bottom, color=colour, label=grade)
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.set_title(task, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.legend(title="grade", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{len(rows)} discs of {len({r['study'] for r in rows})} studies: grades by level")
    save_png(fig, path, 80)
    plt.close(fig)
    return path
