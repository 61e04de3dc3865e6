"""What a Dask worker runs: one study graded into its folder, models loaded once per worker process."""
from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import torch
from distributed import get_worker

from spinecore.cores import host_cores
from spinecore.errors import SpineCoreError, brief
from spinecore.grade import Grader
from spinecore.io import load_study
from spinecore.localise import Localiser
from spinecore.pipeline import analyse
from spinecore.report import check_dicom_out, write_analysis

#: models kept per worker process: one localiser and grader pair per set of model files asked for
CACHED_MODEL_PAIRS = 2


@lru_cache(maxsize=CACHED_MODEL_PAIRS)
def models(localiser: Path | None, grader: Path | None) -> tuple[Localiser, Grader]:
    """The worker's localiser and grader (``None``: the bundled ones), loaded on first use."""
    return Localiser.load(localiser), Grader.load(grader)


def torch_threads(slots_by_host: dict[str, int]) -> int:
    """Torch threads for one task, so that the tasks running at once on this worker's host share its
    cores: cores // task slots on the host, at least 1."""
    worker = get_worker()
    slots = slots_by_host.get(worker.address.rpartition(":")[0], worker.state.nthreads)
    return max(1, host_cores() // max(1, slots))


def grade_study(study: Path, out: Path, options: dict, model_files: tuple[Path | None, Path | None],
                slots_by_host: dict[str, int], dicom_out: bool = False) -> str | None:
    """Grade ``study`` into ``out`` as ``spinecore grade`` (``--dicom-out`` with ``dicom_out``) does,
    with :func:`~spinecore.pipeline.analyse`'s keyword ``options`` (``tta``, ``hotspot_tasks``...):
    ``None`` when done, else the reason it failed in one line (library warnings are silenced: the line
    is the whole story)."""
    torch.set_num_threads(torch_threads(slots_by_host))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            series = load_study(study).sagittal()
            if dicom_out:
                check_dicom_out(series, study)
            localiser, grader = models(*model_files)
            write_analysis(analyse(series, localiser, grader, **options), out, dicom_out=dicom_out)
    except SpineCoreError as exc:
        return str(exc)
    except Exception as exc:  # a bug or an input no reader foresaw: one line, the other studies go on
        return f"internal error: {type(exc).__name__}: {brief(exc)}"
    return None
