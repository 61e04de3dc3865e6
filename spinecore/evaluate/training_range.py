"""The bundled grader's training range: the spacing of its training series and the intensity
statistics of the disc volumes it was trained on (``spinecore.grade.qc`` records the result).

    python -m spinecore.evaluate.training_range manifests/spider_train.csv

prints the range of row, column and slice spacing (mm) over the manifest's scans, and the
:data:`~spinecore.grade.qc.COVERED` central fraction of each disc-volume statistic
(:func:`~spinecore.grade.qc.volume_statistics`) over the discs the bundled localiser finds (those
whose volume the edge of the scan does not cut).
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from spinecore.data.manifests import read_manifest
from spinecore.errors import SpineCoreError
from spinecore.extract import disc_volumes
from spinecore.grade.qc import COVERED, volume_statistics
from spinecore.grade.schemes import SCHEMES
from spinecore.io import load_study
from spinecore.localise import Localiser


def training_range(manifest: Path) -> dict:
    """Spacing (min, max; mm) of the manifest's scans and the range of each disc-volume statistic."""
    localiser = Localiser.load()
    spacings, statistics = [], []
    for scan in sorted({row.scan for row in read_manifest(manifest, SCHEMES["spider"])}):
        series = load_study(scan).sagittal()
        spacings.append(series.spacing)
        try:
            statistics += [s for s in map(volume_statistics, disc_volumes(series, localiser(series))) if s is not None]
        except SpineCoreError:
            continue
    spacing, stats = np.array(spacings), np.array(statistics)
    tail = (1 - COVERED) / 2 * 100
    return {
        "scans": len(spacings), "discs": len(statistics),
        "slice_mm": [spacing[:, 0].min(), spacing[:, 0].max()],
        "in_plane_mm": [spacing[:, 1:].min(), spacing[:, 1:].max()],
        "mean": np.percentile(stats[:, 0], [tail, 100 - tail]).round(4).tolist(),
        "contrast": np.percentile(stats[:, 1], [tail, 100 - tail]).round(4).tolist(),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(training_range(Path(sys.argv[1])), default=float, indent=1))
