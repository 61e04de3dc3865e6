"""A cohort graded on a Dask cluster: a local one sized to the machine, or an existing one."""
from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterator

import dask
from distributed import Client, LocalCluster, as_completed

from spinecore.batch.layout import Cohort
from spinecore.batch.worker import grade_study, models
from spinecore.cores import host_cores
from spinecore.errors import SpineCoreError, brief
from spinecore.report.cohort import write_cohort_files
from spinecore.saliency.settings import NO_TASKS, hotspot_tasks

#: ``done(study name, None or the one-line reason it failed)``, called as each study finishes
Done = Callable[[str, str | None], None]
CONNECT_TIMEOUT_S = 30  # reaching a --scheduler, and waiting for its first worker
#: Dask's own log level in the scheduler and workers: nothing on stderr, not even the error a worker
#: logs when a heartbeat meets the scheduler shutting down; every failed study reaches failures.csv
QUIET = logging.CRITICAL
#: glibc malloc settings of the local workers, set before they start (variables already in the
#: environment win): every block from the heap and freed memory kept for the next study. Dask's own
#: default (trim at 64 KiB) hands each large tensor back to the kernel, so every network layer's
#: output page-faults in afresh: that made a study ~40 % slower.
WORKER_MALLOC = {"MALLOC_MMAP_MAX_": 0, "MALLOC_TRIM_THRESHOLD_": 2 ** 40}


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """A client of the cluster at ``scheduler``, or of a new local one of ``workers`` single-threaded
    worker processes (default: one per core), closed on exit."""
    logging.getLogger("distributed").setLevel(QUIET)  # its records reach the root logger spinecore's CLI prints
    if scheduler is None:
        malloc = dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC.items()})
        with malloc, LocalCluster(n_workers=workers or host_cores(), threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=QUIET) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpineCoreError(scheduler, f"no Dask cluster with a worker there ({brief(exc)})") from None
    with client:
        yield client


def slots_by_host(client) -> dict[str, int]:
    """How many tasks the cluster runs at once on each host."""
    slots = Counter()
    for address, worker in client.scheduler_info()["workers"].items():
        slots[address.rpartition(":")[0]] += worker["nthreads"]
    return dict(slots)


def checked_options(localiser: Path | None, grader: Path | None,
                    hotspots: str) -> tuple[tuple[Path | None, Path | None], tuple[str, ...]]:
    """The model files as every worker gets them (absolute; ``None``: the bundled one) and the tasks
    ``hotspots`` names, checked here (the models are loaded once per process), so that a bad model
    file or task stops a cohort before it starts, not once per study."""
    model_files = tuple(Path(p).resolve() if p else None for p in (localiser, grader))
    return model_files, hotspot_tasks(hotspots, models(*model_files)[1].scheme.task_names)


def grade_cohort(cohort: Cohort, *, workers: int | None = None, scheduler: str | None = None,
                 localiser: Path | None = None, grader: Path | None = None, done: Done | None = None,
                 dicom_out: bool = False, hotspots: str = NO_TASKS, **options) -> dict[str, str]:
    """Grade the studies of ``cohort`` not done yet, one Dask task each, as ``spinecore grade`` does
    (``dicom_out``: also its ``seg.dcm`` and ``sr.dcm``, a non-DICOM study then fails; ``hotspots``:
    the tasks of its ``hotspots/``, as ``--hotspots`` names them; ``options``: the rest of
    :func:`~spinecore.pipeline.analyse`'s keyword arguments, e.g. ``tta``), then rebuild the
    cohort's summary files; returns ``{study: reason}`` of those that failed (also in ``failures.csv``).

    Studies already done are skipped and failed ones are tried again, so a run killed at any point
    and run again ends as one run would have."""
    model_files, options["hotspot_tasks"] = checked_options(localiser, grader, hotspots)
    failures, todo = {}, cohort.todo()
    with dask_client(workers, scheduler) if todo else nullcontext() as client:
        cohort.clear_leftovers()
        for name, reason in _graded(client, cohort, todo, options, model_files, dicom_out):
            if reason:
                failures[name] = reason
            if done:
                done(name, reason)
    write_cohort_files(cohort.out, [n for n in cohort.studies if cohort.is_done(n)], failures)
    return failures


def _graded(client: Client | None, cohort: Cohort, names: list[str], options: dict,
            model_files: tuple[Path | None, Path | None], dicom_out: bool) -> Iterator[tuple[str, str | None]]:
    """``(study, None or why it failed)`` for each of ``names`` as its task ends."""
    if not names:
        return
    slots = slots_by_host(client)
    tasks = {client.submit(grade_study, cohort.studies[name], cohort.out / name, options, model_files, slots, dicom_out,
                           pure=False): name for name in names}
    for future in as_completed(tasks):
        yield tasks[future], future.result() if future.status == "finished" else _lost(future)


def _lost(future) -> str:
    """The reason of a task that raised instead of returning (its worker died, say) or was cancelled."""
    if future.status != "error":
        return f"internal error: Dask task {future.status}"
    exc = future.exception()
    return f"internal error: {type(exc).__name__}: {brief(exc)}"
