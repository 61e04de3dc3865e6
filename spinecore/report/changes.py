"""A longitudinal comparison as files: ``changes.csv``, ``comparison.json``, ``changes.png`` and
each study's own results in ``baseline/`` and ``follow-up/``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from spinecore.longitudinal import Comparison
from spinecore.report.analysis import write_analysis
from spinecore.report.localisation import draw_overview, pyplot, save_png
from spinecore.report.output import staged_output

VISITS = ("baseline", "follow-up")


def write_comparison(comparison: Comparison, out: Path) -> None:
    """Every file of the comparison into ``out``: all of them or, on any error, nothing."""
    with staged_output(out) as stage:
        rows = comparison.rows()
        with (stage / "changes.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, list(rows[0]) if rows else ["level"])
            writer.writeheader()
            writer.writerows(rows)
        (stage / "comparison.json").write_text(json.dumps({
            "same_subject": comparison.same_subject, "score": round(comparison.score, 4),
            "same_subject_below": comparison.threshold, "distance": round(comparison.distance, 4),
            "body_distances": comparison.body_distances,
            "siamese_model": comparison.siamese_model,
            "studies": {visit: a.series.source for visit, a in zip(VISITS, (comparison.baseline, comparison.follow_up))},
            "changed_levels": changed_levels(rows)}, indent=1))
        _figure(comparison, rows, stage / "changes.png")
        for visit, analysis in zip(VISITS, (comparison.baseline, comparison.follow_up)):
            write_analysis(analysis, stage / visit)


def changed_levels(rows: list[dict]) -> list[str]:
    """Levels where a grade changed between the visits."""
    return [r["level"] for r in rows if any(v for k, v in r.items() if k.endswith("_change") and v is not None
                                            and not k.startswith("middle_height"))]


def _figure(comparison: Comparison, rows: list[dict], path: Path) -> None:
    """Both mid slices side by side; discs whose grades changed ringed in red."""
    plt = pyplot()
    changed = set(changed_levels(rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 7))
    verdict = "same subject" if comparison.same_subject else "probably NOT the same subject"
    for ax, visit, analysis in zip(axes, VISITS, (comparison.baseline, comparison.follow_up)):
        draw_overview(ax, analysis.series, analysis.spine, title=f"{visit}: {Path(analysis.series.source).name}")
        for disc in analysis.spine.discs:
            if disc.level in changed:
                r, c = analysis.series.geometry.mm_to_vox(disc.center_mm)[1:]
                ax.plot(c, r, "o", markersize=18, fillstyle="none", color="red", markeredgewidth=2)
    fig.suptitle(f"{verdict} (Siamese score {comparison.score:.2f}, threshold {comparison.threshold:.2f}); "
                 f"red: grade changed at {', '.join(sorted(changed)) or 'no level'}", fontsize=9)
    save_png(fig, path, 90)
    plt.close(fig)
