"""Patient-head evaluation as files: ``patient_metrics.json``, ``patient_metrics.md``,
``patient_scores.csv`` (true and predicted scores per patient) and ``patient_scores.png`` (one
scatter of predicted against true per score)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from spinecore.report.localisation import pyplot


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def patient_table(metrics: dict) -> str:
    """Markdown: one row per score."""
    lines = ["| score | patients | Pearson r | Spearman ρ | MAE | RMSE |", "|---|---|---|---|---|---|"]
    for name, m in metrics["scores"].items():
        lines.append(f"| {name} | {m['patients']} | {_number(m['pearson_r'])} | {_number(m['spearman_rho'])} | "
                     f"{_number(m['mae'], 2)} | {_number(m['rmse'], 2)} |")
    return "\n".join(lines) + "\n"


def write_patient_evaluation(metrics: dict, folder: Path) -> None:
    """``metrics`` from :func:`spinecore.evaluate.patient.evaluate_patient_head`."""
    (folder / "patient_metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "predictions"},
                                                            indent=1))
    (folder / "patient_metrics.md").write_text(patient_table(metrics))
    rows = metrics["predictions"]
    with (folder / "patient_scores.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _scatter(metrics, folder / "patient_scores.png")


def _scatter(metrics: dict, path: Path) -> None:
    plt = pyplot()
    names = list(metrics["scores"])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    for name, axis in zip(names, axes[0]):
        truth = np.array([r[name] for r in metrics["predictions"]])
        guess = np.array([r[f"{name}_predicted"] for r in metrics["predictions"]])
        axis.scatter(truth, guess, s=14)
        finite = np.isfinite(truth)
        if finite.any():
            low, high = min(truth[finite].min(), guess.min()), max(truth[finite].max(), guess.max())
            axis.plot([low, high], [low, high], ":", color="grey")
        axis.set_title(f"{name}: r = {_number(metrics['scores'][name]['pearson_r'], 2)}", fontsize=9)
        axis.set_xlabel("true", fontsize=8)
        axis.set_ylabel("predicted", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
