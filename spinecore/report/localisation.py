"""Localisation results as files: ``vertebrae.json`` and ``overview.png``.

matplotlib is imported only when drawing, so failing runs never touch its caches.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spinecore.io.series import Series
from spinecore.levels import level_colour
from spinecore.localise.spine import INFERRED_VERTEBRA, Spine

#: zlib level of the PNG figures: the fastest, ~3x quicker to write than matplotlib's default, the
#: same pixels in a file a few per cent larger.
PNG_COMPRESSION = 1


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path, dpi: int) -> Path:
    """``fig`` laid out tightly once and written to ``path`` as a PNG of ``dpi`` dots per inch."""
    fig.tight_layout()
    fig.set_layout_engine(None)  # else savefig draws the whole figure once more for tight_layout's placeholder
    fig.savefig(path, dpi=dpi, pil_kwargs={"compress_level": PNG_COMPRESSION})
    return path


def write_vertebrae_json(spine: Spine, path: Path) -> Path:
    path.write_text(json.dumps(spine.to_dict(), indent=1))
    return path


def overview_slice(spine: Spine) -> int:
    """The slice to show: the median of the vertebrae's mid slices."""
    return int(np.median([v.mid_slice for v in spine.vertebrae])) if spine.vertebrae else 0


def draw_overview(ax, series: Series, spine: Spine, k: int | None = None, title: str | None = None) -> None:
    """Slice ``k`` (default :func:`overview_slice`) in true proportions, head up, anterior left,
    with each vertebra's quadrilateral (dashed when inferred from its neighbours, dotted when taken
    from its own mid slice) and disc centres (a ring for a disc next to an inferred vertebra)."""
    k = overview_slice(spine) if k is None else k
    image = series.array[k]
    low, high = np.percentile(image, [1, 99.5])
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5),
              aspect=series.spacing[1] / series.spacing[2])
    for v in spine.vertebrae:
        outline = v.on_slice(k)
        style = "--" if INFERRED_VERTEBRA in v.flags else ("-" if outline is not None else ":")
        corners = (outline or v.mid).corners_vox[:, 1:]
        closed = np.vstack([corners, corners[:1]])
        ax.plot(closed[:, 1], closed[:, 0], style, color=level_colour(v.level), linewidth=1.5)
        ax.text(corners[[0, 3], 1].min() - 4 / series.spacing[2], corners[:, 0].mean(), v.level, color=level_colour(v.level),
                ha="right", va="center", fontsize=9, fontweight="bold")
    for d in spine.discs:
        r, c = series.geometry.mm_to_vox(d.center_mm)[1:]
        ax.plot(c, r, "o" if INFERRED_VERTEBRA in d.flags else "+", color="yellow", markersize=6, fillstyle="none")
    ax.set_title(title or f"slice {k}", fontsize=9)
    ax.set_axis_off()


def write_overview(series: Series, spine: Spine, path: Path) -> Path:
    plt = pyplot()
    rows_mm, cols_mm = (n * s for n, s in zip(series.shape[1:], series.spacing[1:]))
    height = 8.0
    fig, ax = plt.subplots(figsize=(max(3.0, height * cols_mm / rows_mm), height))
    draw_overview(ax, series, spine, title=f"{Path(spine.source).name}: slice {overview_slice(spine)}")
    save_png(fig, path, 100)
    plt.close(fig)
    return path
