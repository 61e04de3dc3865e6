"""Result files describing input series: canonical volumes and a JSON inventory."""
from __future__ import annotations

import json
import re
from pathlib import Path

from spinecore.io.series import Series
from spinecore.io.write import write_volume


def series_file_stem(series: Series, number: int) -> str:
    """A readable, file-system-safe name: ``01_sagittal_T2_sag_t2_tse``."""
    description = re.sub(r"[^A-Za-z0-9]+", "_", series.description).strip("_").lower()[:40]
    return "_".join(p for p in (f"{number:02d}", series.plane.value, series.weighting.value, description) if p)


def write_series_volumes(series: list[Series], folder: Path) -> list[Path]:
    """Each series as ``<stem>.nii.gz`` in its canonical orientation (true LPS geometry)."""
    return [write_volume(folder / f"{series_file_stem(s, n)}.nii.gz", s.array, s.geometry)
            for n, s in enumerate(series, start=1)]


def write_series_summary(series: list[Series], source: str, path: Path) -> Path:
    """A JSON inventory of ``series`` (geometry, plane, weighting; no voxels)."""
    entries = [{"file": f"{series_file_stem(s, n)}.nii.gz", **s.summary()} for n, s in enumerate(series, start=1)]
    path.write_text(json.dumps({"source": source, "series": entries}, indent=1))
    return path
