"""Hotspots as files: one heatmap volume per disc, task and stream in that stream's own scan grid, and
a montage per disc and stream (the disc volume's slices with each task's heatmap, as thesis Fig. 5.3).

Names: ``<level>_<task>.nii.gz`` and ``<level>.png`` for the T2 (the scan the discs were found on),
``<level>_<task>_<stream>.nii.gz`` and ``<level>_<stream>.png`` for the other streams (``t1``,
``axial``) of a multi-stream grader.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spinecore.extract import StructureVolume
from spinecore.extract.volumes import SLICES
from spinecore.io.write import write_volume
from spinecore.pipeline import Analysis
from spinecore.report.localisation import pyplot, save_png
from spinecore.saliency.settings import HEATMAP_OPACITY, HEATMAP_SHOWN_FROM

#: Montage slices: 2–8 of a 9-slice sagittal volume; every slice of a thinner one (the 3 axial).
SAGITTAL_MONTAGE_SLICES = range(1, SLICES - 1)


def hotspot_name(level: str, stream: str, task: str | None = None) -> str:
    """The file name (without suffix) of a disc's heatmap of ``task``, or of its montage."""
    return "_".join([level, *([task] if task else []), *([stream] if stream != "t2" else [])])


def write_hotspots(analysis: Analysis, folder: Path) -> list[Path]:
    """``folder/<name>.nii.gz`` (float32, 0–1, in the geometry of the scan the stream's disc volume
    was cut from) and ``folder/<name>.png`` for every disc and stream with hotspots (see the
    module docstring for the names)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stream, per_level in analysis.hotspots.items():
        for volume in analysis.stream_volumes(stream):
            if volume.level not in per_level:
                continue
            scan = analysis.scan_of(stream, volume)
            for task, heatmap in per_level[volume.level].items():
                path = folder / f"{hotspot_name(volume.level, stream, task)}.nii.gz"
                written.append(write_volume(path, volume.to_scan_grid(heatmap), scan.geometry))
            title = volume.level if stream == "t2" else f"{volume.level} {stream}"
            montage = folder / f"{hotspot_name(volume.level, stream)}.png"
            written.append(write_montage(volume, per_level[volume.level], montage, analysis.method.value, title))
    return written


def overlay_heatmap(ax, image: np.ndarray, heatmap: np.ndarray) -> None:
    """``image`` (0–1, grey) with ``heatmap`` (0–1, jet) over it, transparent where it is faint."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.imshow(heatmap, cmap="jet", vmin=0, vmax=1, alpha=HEATMAP_OPACITY * (heatmap > HEATMAP_SHOWN_FROM))


def write_montage(volume: StructureVolume, maps: dict[str, np.ndarray], path: Path, method: str, title: str) -> Path:
    plt = pyplot()
    tasks = list(maps)
    shown = SAGITTAL_MONTAGE_SLICES if len(volume.array) == SLICES else range(len(volume.array))
    width = 0.95 * volume.array.shape[2] / volume.array.shape[1]  # inches per column: square pixels
    fig, axes = plt.subplots(len(tasks) + 1, len(shown), figsize=(width * len(shown), 1.05 * (len(tasks) + 1)),
                             squeeze=False)
    for col, s in enumerate(shown):
        axes[0, col].imshow(volume.array[s], cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(f"slice {s + 1}", fontsize=7)
        for row, task in enumerate(tasks, start=1):
            overlay_heatmap(axes[row, col], volume.array[s], maps[task][s])
    for row, label in enumerate(["disc", *tasks]):
        axes[row, 0].set_ylabel(label.replace("_", "\n"), fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: evidence hotspots ({method})", fontsize=9)
    save_png(fig, path, 80)
    plt.close(fig)
    return path
