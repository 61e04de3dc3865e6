"""Every sagittal slice with the vertebra outlines, as PNG images for a slice viewer."""
from __future__ import annotations

from pathlib import Path

from spinecore.io.series import Series
from spinecore.localise.spine import Spine
from spinecore.report.localisation import draw_overview, pyplot, save_png

#: Height of each slice image in inches (at :data:`SLICE_DPI`: 600 pixels).
SLICE_HEIGHT_IN = 6.0
SLICE_DPI = 100


def slice_file(k: int) -> str:
    """The file name of slice ``k``'s image."""
    return f"slice_{k:03d}.png"


def write_slice_images(series: Series, spine: Spine, folder: Path) -> list[Path]:
    """``folder/slice_000.png``… : slice ``k`` of ``series`` (``array[k]``, head up, anterior left)
    with the outlines :func:`~spinecore.report.localisation.draw_overview` draws on it."""
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    rows_mm, cols_mm = (n * s for n, s in zip(series.shape[1:], series.spacing[1:]))
    fig, ax = plt.subplots(figsize=(max(2.0, SLICE_HEIGHT_IN * cols_mm / rows_mm), SLICE_HEIGHT_IN))
    written = []
    try:
        for k in range(series.shape[0]):
            ax.clear()
            draw_overview(ax, series, spine, k=k, title=f"slice {k + 1} of {series.shape[0]}")
            written.append(save_png(fig, folder / slice_file(k), SLICE_DPI))
    finally:
        plt.close(fig)
    return written
