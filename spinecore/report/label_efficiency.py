"""The label-efficiency study as files: ``label_efficiency.json`` (everything), ``label_efficiency.md``
(Pfirrmann and the mean over tasks per share, scratch against pretrained and their paired
difference) and ``label_efficiency.png`` (accuracy against the share of patients, thesis Fig. 7.12)."""
from __future__ import annotations

import json
from pathlib import Path

from spinecore.evaluate.label_efficiency import MEAN
from spinecore.report.localisation import pyplot, save_png

#: The scores the table and the figure show: Pfirrmann and the mean over tasks.
SHOWN = {"pfirrmann": "Pfirrmann", MEAN: "mean over tasks"}
COLOURS = {"scratch": "tab:grey", "pretrained": "tab:blue"}
#: Each start's points drawn a little apart on the log axis, so both intervals show.
NUDGE = {"scratch": 0.97, "pretrained": 1.03}


def _score(entry: dict, key: str = "accuracy") -> str:
    low, high = entry["ci95"]
    return f"{100 * entry[key]:.1f} [{100 * low:.1f}, {100 * high:.1f}]" if low is not None else f"{100 * entry[key]:.1f}"


def _runs(results: dict, fraction: float) -> dict[str, dict]:
    return {r["start"]: r for r in results["runs"] if r["fraction"] == fraction}


def label_efficiency_table(results: dict) -> str:
    """Markdown: per share and shown score, scratch, pretrained and pretrained − scratch (95 % CIs)."""
    lines = [f"Graders of {results['steps']} steps, seed {results['seed']}, on a share of "
             f"{results['train_patients']} training patients; validation: {results['validation_discs']} discs of "
             f"{results['validation_patients']} patients, no test-time augmentation. Pretrained: `{results['init']}`"
             f"{' (convolutions frozen)' if results['freeze_conv'] else ''}. Average per-class accuracy, % [95 % CI].",
             "", "| patients | discs | score | scratch | pretrained | pretrained − scratch |", "|---|---|---|---|---|---|"]
    for difference in results["differences"]:
        runs = _runs(results, difference["fraction"])
        for task, name in SHOWN.items():
            change = difference["tasks"][task]
            marker = " *" if change["outside_zero"] else ""
            lines.append(f"| {difference['fraction']:.0%} ({runs['scratch']['patients']}) | {runs['scratch']['discs']} "
                         f"| {name} | {_score(runs['scratch']['tasks'][task])} "
                         f"| {_score(runs['pretrained']['tasks'][task])} | {_score(change, 'difference')}{marker} |")
    lines += ["", "\\* the paired interval excludes zero."]
    return "\n".join(lines) + "\n"


def write_label_efficiency(results: dict, folder: Path) -> None:
    """``results`` of :func:`spinecore.train.label_efficiency.label_efficiency`."""
    (folder / "label_efficiency.json").write_text(json.dumps(results, indent=1))
    (folder / "label_efficiency.md").write_text(label_efficiency_table(results))
    _figure(results, folder / "label_efficiency.png")


def _figure(results: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(SHOWN), figsize=(4.5 * len(SHOWN), 3.6), squeeze=False)
    for axis, (task, name) in zip(axes[0], SHOWN.items()):
        for start, colour in COLOURS.items():
            runs = [r for r in results["runs"] if r["start"] == start]
            x = [100 * r["fraction"] * NUDGE[start] for r in runs]
            y = [100 * r["tasks"][task]["accuracy"] for r in runs]
            low = [y_ - 100 * r["tasks"][task]["ci95"][0] for y_, r in zip(y, runs)]
            high = [100 * r["tasks"][task]["ci95"][1] - y_ for y_, r in zip(y, runs)]
            axis.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, color=colour, label=start)
        axis.set_xscale("log")
        axis.set_xticks([100 * f for f in sorted({r["fraction"] for r in results["runs"]})])
        axis.set_xticklabels([f"{100 * f:g}" for f in sorted({r["fraction"] for r in results["runs"]})])
        axis.set_xlabel("training patients (%)", fontsize=8)
        axis.set_ylabel("average per-class accuracy (%)", fontsize=8)
        axis.set_title(name, fontsize=9)
        axis.legend(fontsize=7)
    save_png(fig, path, 90)
    plt.close(fig)
