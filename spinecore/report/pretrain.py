"""Siamese evaluation as files: ``pretrain_metrics.json``, ``pretrain_metrics.md`` (next to thesis
Table 7.1) and ``pair_distances.png`` (distance histograms and ROC per kind, thesis Fig. 7.8–7.11)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from spinecore.report.localisation import pyplot, save_png

#: Thesis Table 7.1 (AUC % of same-subject pairs, longitudinal scans of one sequence).
THESIS_AUC = {"Siamese-B (TwinsUK, VB+IVD)": (96.4, 95.5), "Siamese-D (OSCLMRIC, VB+IVD)": (99.5, 99.2)}
HISTOGRAM_BINS = 40


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _with_interval(result: dict) -> str:
    low, high = result.get("auc_interval") or (None, None)
    return _percent(result.get("auc")) + ("" if low is None else f" [{_percent(low)}, {_percent(high)}]")


def pretrain_table(results: dict[str, dict]) -> str:
    """Markdown: our AUCs per data set and kind beside the thesis' Table 7.1 (whose bodies and discs were
    told apart by appearance alone)."""
    lines = ["| pairs | AUC bodies (%) [95 % CI] | bodies by appearance alone (%) | AUC discs (%) [95 % CI] "
             "| discs by appearance alone (%) | level accuracy bodies / discs (%) | positive / negative pairs "
             "| scan pairs: AUC of the body distance / of the score (%) | scan pairs at threshold: same / different "
             "called right (%) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, kinds in results.items():
        body, disc = kinds.get("body", {}), kinds.get("disc", {})
        counts = " · ".join(f"{r['positive_pairs']} / {r['negative_pairs']}" for r in (body, disc) if r)
        lines.append(f"| {name} | {_with_interval(body)} | {_percent(body.get('appearance_auc'))} | "
                     f"{_with_interval(disc)} | {_percent(disc.get('appearance_auc'))} | "
                     f"{_percent(body.get('level_accuracy'))} / "
                     f"{_percent(disc.get('level_accuracy'))} | {counts} | "
                     f"{_percent(body.get('study_distance_auc'))} / {_percent(body.get('study_score_auc'))} | "
                     f"{_percent(body.get('same_called_same'))} / {_percent(body.get('different_called_different'))} |")
    for name, (vb, ivd) in THESIS_AUC.items():
        lines.append(f"| thesis {name}: longitudinal, same sequence | | {vb} | | {ivd} | | | | |")
    lines += ["", "Per pair of sequences:", "", "| pairs | sequences | AUC bodies (%) | AUC discs (%) |", "|---|---|---|---|"]
    for name, kinds in results.items():
        body, disc = kinds.get("body", {}).get("auc_by_sequences", {}), kinds.get("disc", {}).get("auc_by_sequences", {})
        for sequences in sorted(set(body) | set(disc)):
            lines.append(f"| {name} | {sequences} | {_percent(body.get(sequences))} | {_percent(disc.get(sequences))} |")
    return "\n".join(lines) + "\n"


def write_pretrain_evaluation(results: dict[str, dict], folder: Path) -> None:
    """``results[data set][kind]`` from :func:`spinecore.evaluate.pretrain.subject_identification`."""
    plain = {name: {kind: {k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for kind, r in kinds.items()}
             for name, kinds in results.items()}
    (folder / "pretrain_metrics.json").write_text(json.dumps(plain, indent=1))
    (folder / "pretrain_metrics.md").write_text(pretrain_table(plain))
    _histograms(results, folder / "pair_distances.png")


def _histograms(results: dict[str, dict], path: Path) -> None:
    plt = pyplot()
    panels = [(name, kind, r) for name, kinds in results.items() for kind, r in kinds.items()]
    fig, axes = plt.subplots(len(panels), 2, figsize=(9, 3 * len(panels)), squeeze=False)
    for (name, kind, r), (hist, roc) in zip(panels, axes):
        distances, same = r["distances"], r["same"]
        bins = np.linspace(0, max(distances.max(), 1e-6), HISTOGRAM_BINS)
        hist.hist(distances[~same], bins, density=True, alpha=0.6, color="tab:red", label="different subjects")
        hist.hist(distances[same], bins, density=True, alpha=0.6, color="tab:blue", label="same subject")
        hist.set_title(f"{name}: {kind} pair distances", fontsize=9)
        hist.legend(fontsize=7)
        if r["auc"] is not None:
            false_positive, true_positive, _ = roc_curve(same, -distances)
            roc.plot(false_positive, true_positive, color="tab:blue")
        roc.plot([0, 1], [0, 1], ":", color="grey")
        roc.set_title(f"ROC, AUC {_percent(r['auc'])} %", fontsize=9)
        roc.set_xlabel("false positive rate", fontsize=8)
        roc.set_ylabel("true positive rate", fontsize=8)
    save_png(fig, path, 90)
    plt.close(fig)
