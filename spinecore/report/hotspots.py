"""Hotspots as files: one heatmap volume per disc and task in the scan's own voxel grid, and a
montage per disc (slices 2–8 with the heatmap over the disc volume, as thesis Fig. 5.3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spinecore.extract import StructureVolume
from spinecore.io.series import Series
from spinecore.io.write import write_volume
from spinecore.report.localisation import pyplot, save_png
from spinecore.saliency.settings import HEATMAP_OPACITY, HEATMAP_SHOWN_FROM

MONTAGE_SLICES = range(1, 8)  # slices 2–8 of 9


def write_hotspots(series: Series, volumes: list[StructureVolume], maps: dict[str, dict[str, np.ndarray]],
                   folder: Path, method: str) -> list[Path]:
    """``folder/<level>_<task>.nii.gz`` (float32, 0–1, the input scan's geometry) and
    ``folder/<level>.png`` for every disc in ``maps``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for volume in volumes:
        if volume.level not in maps:
            continue
        for task, heatmap in maps[volume.level].items():
            scan = volume.to_scan_grid(heatmap, series.shape)
            written.append(write_volume(folder / f"{volume.level}_{task}.nii.gz", scan, series.geometry))
        written.append(write_montage(volume, maps[volume.level], folder / f"{volume.level}.png", method))
    return written


def overlay_heatmap(ax, image: np.ndarray, heatmap: np.ndarray) -> None:
    """``image`` (0–1, grey) with ``heatmap`` (0–1, jet) over it, transparent where it is faint."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.imshow(heatmap, cmap="jet", vmin=0, vmax=1, alpha=HEATMAP_OPACITY * (heatmap > HEATMAP_SHOWN_FROM))


def write_montage(volume: StructureVolume, maps: dict[str, np.ndarray], path: Path, method: str) -> Path:
    plt = pyplot()
    tasks = list(maps)
    fig, axes = plt.subplots(len(tasks) + 1, len(MONTAGE_SLICES), figsize=(1.9 * len(MONTAGE_SLICES), 1.05 * (len(tasks) + 1)))
    for col, s in enumerate(MONTAGE_SLICES):
        axes[0, col].imshow(volume.array[s], cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(f"slice {s + 1}", fontsize=7)
        for row, task in enumerate(tasks, start=1):
            overlay_heatmap(axes[row, col], volume.array[s], maps[task][s])
    for row, label in enumerate(["disc", *tasks]):
        axes[row, 0].set_ylabel(label.replace("_", "\n"), fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{volume.level}: evidence hotspots ({method})", fontsize=9)
    save_png(fig, path, 80)
    plt.close(fig)
    return path
