"""Evaluation results as files: ``metrics.json`` and a Markdown table ``metrics.md``."""
from __future__ import annotations

import json
from pathlib import Path


def _ci(pair) -> str:
    return "–" if pair[0] is None else f"{100 * pair[0]:.1f}–{100 * pair[1]:.1f}"


def evaluation_table(metrics: dict) -> str:
    lines = [f"model `{metrics['model']}`, scheme `{metrics['scheme']}`, TTA {'on' if metrics['tta'] else 'off'}: "
             f"{metrics['discs']} discs of {metrics['patients']} patients; 95 % intervals from "
             "1000 patient bootstraps",
             "",
             "| task | discs | avg per-class accuracy % | kappa | majority baseline % | beats baseline | ECE raw → calibrated |",
             "|---|---|---|---|---|---|---|"]
    for name, m in metrics["tasks"].items():
        if m["n"] == 0:
            lines.append(f"| {name} | 0 | not graded in this manifest | | | | |")
            continue
        kappa_ci = "–" if m["kappa_ci95"][0] is None else f"{m['kappa_ci95'][0]:.2f}–{m['kappa_ci95'][1]:.2f}"
        lines.append(f"| {name} | {m['n']} | {100 * m['average_class_accuracy']:.1f} ({_ci(m['accuracy_ci95'])}) | "
                     f"{m['kappa']:.2f} ({kappa_ci}, {m['kappa_weights']}) | "
                     f"{100 * m['baseline_average_class_accuracy']:.1f} (class {m['majority_class']}) | "
                     f"{'yes' if m['beats_baseline'] else 'NO'} | "
                     f"{m['ece_uncalibrated']:.3f} → {m['ece_calibrated_crossfit']:.3f} |")
    return "\n".join(lines) + "\n"


def write_evaluation(metrics: dict, folder: Path) -> None:
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (folder / "metrics.md").write_text(evaluation_table(metrics))
