"""Evaluation results as files: grader metrics (``metrics.json``, ``metrics.md``), a comparison of
several graders (``comparison.json``, ``comparison.md``), localiser
metrics and contact sheets, hotspot metrics (``hotspot_metrics.json``/``.md``) and the real-disc
hotspot sheet."""
from __future__ import annotations

import json
from pathlib import Path

from spinecore.evaluate.hotspots import BOX_VARIANTS, PERCENTILES, RealDiscHotspot
from spinecore.evaluate.localisation import LocaliserEvaluation, SheetCase
from spinecore.report.hotspots import overlay_heatmap
from spinecore.report.localisation import draw_overview, pyplot, save_png
from spinecore.saliency import Method

#: Cases on a contact sheet of a large set.
SHEET_CASES = 40


def _ci(pair) -> str:
    return "–" if pair[0] is None else f"{100 * pair[0]:.1f}–{100 * pair[1]:.1f}"


def evaluation_table(metrics: dict) -> str:
    """The results of all discs, then one section per sequence (T1, T2, …) of the same table."""
    lines = [(f"model `{metrics['model']}`, scheme `{metrics['scheme']}`, TTA {'on' if metrics['tta'] else 'off'}: "
              f"{metrics['discs']} discs of {metrics['patients']} patients; 95 % intervals from "
              "1000 patient bootstraps"), *_harmonisation_note(metrics), "", *_results_table(metrics)]
    for sequence, results in metrics["by_sequence"].items():
        lines += ["", f"### {sequence}: {results['discs']} discs of {results['patients']} patients", "",
                  *_results_table(results)]
    return "\n".join(lines) + "\n"


def _harmonisation_note(results: dict) -> list[str]:
    """A line naming the manifest the intensities were mapped onto (``evaluate --harmonise-to``), if any."""
    if "harmonisation" not in results:
        return []
    h = results["harmonisation"]
    return ["", f"intensities harmonised per sequence ({', '.join(h['landmarks']) or 'none in common'}) onto the "
                f"discs of `{h['onto']}`"]


def _results_table(results: dict) -> list[str]:
    """Coverage, then a row per task: accuracies with intervals, kappa, baseline, calibration."""
    coverage = results["coverage"]
    lines = [f"coverage: {coverage['found']} of {coverage['graded']} graded discs found ({100 * coverage['share']:.1f} %)"
             + (f", L5-S1 {100 * coverage['l5s1_share']:.1f} %" if coverage["l5s1_share"] is not None else ""),
             "",
             ("| task | discs | avg per-class accuracy % | end to end % (missed = wrong) | kappa | majority baseline % "
              "| beats baseline | ECE raw → calibrated |"),
             "|---|---|---|---|---|---|---|---|"]
    for name, m in results["tasks"].items():
        if m["n"] == 0:
            lines.append(f"| {name} | 0 | not graded in this manifest | | | | | |")
            continue
        kappa_ci = "–" if m["kappa_ci95"][0] is None else f"{m['kappa_ci95'][0]:.2f}–{m['kappa_ci95'][1]:.2f}"
        end = m["end_to_end"]
        lines.append(f"| {name} | {m['n']} | {100 * m['average_class_accuracy']:.1f} ({_ci(m['accuracy_ci95'])}) | "
                     f"{100 * end['average_class_accuracy']:.1f} ({_ci(end['accuracy_ci95'])}) | "
                     f"{m['kappa']:.2f} ({kappa_ci}, {m['kappa_weights']}) | "
                     f"{100 * m['baseline_average_class_accuracy']:.1f} (class {m['majority_class']}) | "
                     f"{'yes' if m['beats_baseline'] else 'NO'} | "
                     f"{m['ece_uncalibrated']:.3f} → {m['ece_calibrated_crossfit']:.3f} |")
    return lines


def write_evaluation(metrics: dict, folder: Path) -> None:
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (folder / "metrics.md").write_text(evaluation_table(metrics))


def comparison_table(comparison: dict) -> str:
    """Per task: each model's average per-class accuracy with its interval, and each later model's
    paired difference from the first (``*`` where its interval excludes zero)."""
    models = comparison["models"]
    reference = comparison["reference"]
    first = models[reference]
    lines = [(f"{first['discs']} discs of {first['patients']} patients, TTA {'on' if comparison['tta'] else 'off'}; "
              "average per-class accuracy % (95 % interval of 1000 patient bootstraps); Δ: paired difference from "
              f"`{reference}` in points (its interval; * when it excludes 0)"), *_harmonisation_note(comparison), "",
             "| task | " + " | ".join(f"`{name}`" for name in models) + " |", "|---|" + "---|" * len(models)]
    for task, m in first["tasks"].items():
        if m["n"] == 0:
            continue
        cells = []
        for name, results in models.items():
            t = results["tasks"][task]
            cell = f"{100 * t['average_class_accuracy']:.1f} ({_ci(t['accuracy_ci95'])})"
            if name != reference:
                d = comparison["differences"][task][name]
                cell += (f"; Δ {100 * d['difference']:+.1f} ({100 * d['ci95'][0]:+.1f} to {100 * d['ci95'][1]:+.1f})"
                         + ("*" if d["outside_zero"] else ""))
            cells.append(cell)
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(comparison: dict, folder: Path) -> None:
    """``comparison.json``/``.md`` and each model's own ``<name>/metrics.json``/``.md``."""
    (folder / "comparison.json").write_text(json.dumps(comparison, indent=1))
    (folder / "comparison.md").write_text(comparison_table(comparison))
    for name, metrics in comparison["models"].items():
        (folder / name).mkdir()
        write_evaluation(metrics, folder / name)


def hotspot_table(metrics: dict) -> str:
    """One Markdown table per box variant: mean volume IoU (× baseline) per lesion, method and
    percentile, and the lowest × over the lesions (the done-when asks ≥ 5 for every lesion)."""
    lesions = metrics["lesions"]
    columns = [(m.value, str(p)) for m in Method for p in PERCENTILES]
    lines = [(f"model `{metrics['model']}`, {metrics['augmentations']} augmentations per hotspot; mean volume IoU of "
              "the percentile boxes with the true lesion boxes (× the whole-volume baseline)")]
    for variant in BOX_VARIANTS:
        lines += ["", f"**{variant.replace('_', ' ')}**", "",
                  "| lesion (task) | cases | baseline IoU | " + " | ".join(f"{m} p{p[:2]}" for m, p in columns) + " |",
                  "|---|---|---|" + "---|" * len(columns)]
        for lesion, s in lesions.items():
            cells = [s["methods"][m][variant][p] for m, p in columns]
            lines.append(f"| {lesion} ({s['task']}) | {s['cases']} | {s['baseline_iou']:.3f} | "
                         + " | ".join(f"{c['iou']:.3f} (×{c['times_baseline']})" for c in cells) + " |")
        lowest = [min(s["methods"][m][variant][p]["times_baseline"] or 0.0 for s in lesions.values())
                  for m, p in columns]
        lines.append("| lowest × | | | " + " | ".join(f"×{x}" for x in lowest) + " |")
    return "\n".join(lines) + "\n"


def write_hotspot_evaluation(metrics: dict, folder: Path) -> None:
    (folder / "hotspot_metrics.json").write_text(json.dumps(metrics, indent=1))
    (folder / "hotspot_metrics.md").write_text(hotspot_table(metrics))


def write_real_hotspot_sheet(discs: list[RealDiscHotspot], folder: Path, method: Method, columns: int = 6) -> None:
    """``real_hotspots.png`` (each disc's slice with its hotspot) and ``real_hotspots.json``."""
    plt = pyplot()
    rows = -(-len(discs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.0 * rows), squeeze=False)
    for ax, disc in zip(axes.ravel(), discs):
        overlay_heatmap(ax, disc.image, disc.heatmap)
        ax.set_title(disc.title, fontsize=7)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(f"evidence hotspots ({method.value}) on validation discs with endplate defects or Modic changes",
                 fontsize=10)
    save_png(fig, folder / "real_hotspots.png", 80)
    plt.close(fig)
    (folder / "real_hotspots.json").write_text(json.dumps([d.record for d in discs], indent=1))


def contact_sheet(cases: list[SheetCase], path: Path, columns: int = 8) -> Path:
    """One panel per case with the labelled quadrilaterals (or the mid slice marked FAILED)."""
    plt = pyplot()
    rows = -(-len(cases) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 4.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (title, series, spine) in zip(axes.ravel(), cases):
        if spine is None:
            ax.imshow(series.array[series.shape[0] // 2], cmap="gray", aspect=series.spacing[1] / series.spacing[2])
            ax.set_title(f"{title}: FAILED", fontsize=8, color="red")
        else:
            draw_overview(ax, series, spine, title=title)
    save_png(fig, path, 70)
    plt.close(fig)
    return path


def write_localiser_evaluation(evaluation: LocaliserEvaluation, folder: Path) -> None:
    """``metrics.json``, one contact sheet per dataset, ``midsag_contact_sheet.png`` (when cases were asked for) and
    ``coverage_contact_sheet.png`` (the grading validation patients' mid-sagittal images) and
    ``sudirman_contact_sheet.png`` (the first :data:`SHEET_CASES` of our Sudirman validation images)."""
    for dataset, cases in evaluation.sheets.items():
        contact_sheet(cases, folder / f"validation_{dataset}.png")
    if evaluation.midsag:
        contact_sheet(evaluation.midsag, folder / "midsag_contact_sheet.png")
    contact_sheet(evaluation.coverage, folder / "coverage_contact_sheet.png")
    if evaluation.sudirman:
        contact_sheet(evaluation.sudirman[:SHEET_CASES], folder / "sudirman_contact_sheet.png")
    (folder / "metrics.json").write_text(json.dumps({"summary": evaluation.summary, "scans": evaluation.per_dataset},
                                                    indent=1))
