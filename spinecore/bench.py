"""Benchmarks (run with ``spinecore bench``); their numbers go in closing notes and model cards."""
from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from spinecore.errors import SpineCoreError
from spinecore.io.series import Plane
from spinecore.saliency.settings import DEFAULT_AUGMENTATIONS


@lru_cache(maxsize=2)
def _phantom_scans(n_slices: int, streams: tuple[str, ...] = ("t2",)):
    """The benchmark study, phantom seed 7 with ``n_slices`` sagittal slices: its sagittal T2, its
    sagittal T1 when ``streams`` has ``t1`` (else ``None``) and its axial stacks when it has ``axial``."""
    from spinecore.phantom import PhantomSpec, make_phantom

    study = make_phantom(PhantomSpec(seed=7, n_slices=n_slices, t1="t1" in streams, axial="axial" in streams))
    t1 = study.get("sag_t1").to_series("phantom-7-t1") if "t1" in streams else None
    axials = [s.to_series(f"phantom-7-{s.name}") for s in study.series if s.plane is Plane.AXIAL]
    return study.get("sag_t2").to_series("phantom-7"), t1, axials


def stream_grader(model: Path | None, streams: tuple[str, ...]):
    """The grader of ``model`` (default: the bundled one for ``streams``, as
    :func:`~spinecore.grade.grader.default_grader_path` picks it); it must read every one of ``streams``."""
    from spinecore.grade import Grader

    grader = Grader.load(model, t1="t1" in streams)
    if set(streams) - set(grader.streams):
        raise SpineCoreError(model, f"the grader reads {'+'.join(grader.streams)}: benching {'+'.join(streams)} needs "
                                    "a model that reads them (--grader FUSED.pt, e.g. from spinecore train --streams)")
    return grader


def _timed(run, repeats: int) -> tuple[object, dict]:
    """``run()``'s last result and its wall time over ``repeats`` runs after one warm-up."""
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return result, {"median_s": round(float(np.median(times)), 3), "max_s": round(float(np.max(times)), 3),
                    "repeats": repeats}


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended and been
    waited for: the workers of a local Dask cluster once it is closed."""
    import resource

    usage = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


def bench_localise(model: Path | None = None, n_slices: int = 15, repeats: int = 5, threads: int = 2) -> dict:
    """Wall time of localising a phantom sagittal T2 study of ``n_slices`` slices."""
    from spinecore.localise import Localiser

    torch.set_num_threads(threads)
    series = _phantom_scans(n_slices)[0]
    localiser = Localiser.load(model)
    spine, timing = _timed(lambda: localiser(series), repeats)
    return {"task": "localise", "threads": threads, "shape": list(series.shape),
            "spacing_mm": [round(v, 3) for v in series.spacing], "levels": spine.levels, **timing}


def bench_grade(model: Path | None = None, localiser_model: Path | None = None, n_slices: int = 15, repeats: int = 5,
                threads: int = 2, streams: tuple[str, ...] = ("t2",)) -> dict:
    """Wall time of grading a whole phantom study as ``spinecore grade`` does (localisation, disc
    extraction of every one of ``streams``, 54-view TTA; files excluded) and the process's peak
    resident memory. ``streams`` beyond ``t2`` need a ``model`` that reads them."""
    import resource

    from spinecore.localise import Localiser
    from spinecore.pipeline import analyse

    torch.set_num_threads(threads)
    series, t1, axials = _phantom_scans(n_slices, streams)
    localiser, grader = Localiser.load(localiser_model), stream_grader(model, streams)
    result, timing = _timed(lambda: analyse(series, localiser, grader, tta=True, t1=t1, axials=axials), repeats)
    return {"task": "grade (localise + extract + 54-view TTA)", "streams": "+".join(streams), "threads": threads,
            "shape": list(series.shape), "discs": len(result.gradings.discs),
            "discs_per_stream": {s: len(result.stream_volumes(s)) for s in streams}, **timing,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def bench_hotspots(model: Path | None = None, localiser_model: Path | None = None,
                   augmentations: int = DEFAULT_AUGMENTATIONS, threads: int = 2,
                   streams: tuple[str, ...] = ("t2",)) -> dict:
    """Wall time of the hotspots of every task of one phantom disc (L4-L5) in each of ``streams``
    per saliency method."""
    from spinecore.extract import axial_disc_volumes, disc_volume, t1_disc_volumes
    from spinecore.localise import Localiser
    from spinecore.saliency import Method, stream_hotspots

    torch.set_num_threads(threads)
    series, t1, axials = _phantom_scans(15, streams)
    spine = Localiser.load(localiser_model)(series)
    volumes = {"t2": disc_volume(series, spine, "L4-L5")}
    if t1 is not None:
        volumes["t1"] = t1_disc_volumes(t1, [volumes["t2"]], spine, series)["L4-L5"]
    if axials:
        volumes["axial"] = axial_disc_volumes(axials, spine, ["L4-L5"], series)["L4-L5"]
    grader = stream_grader(model, streams)
    classes = {n: 1 if t.n_classes == 2 else 0 for n, t in enumerate(grader.scheme.tasks)}
    seconds = {}
    for method in Method:
        start = time.perf_counter()
        stream_hotspots(grader.net, {s: v.array for s, v in volumes.items()}, classes, method, augmentations)
        seconds[method.value] = round(time.perf_counter() - start, 2)
    return {"task": f"hotspots of all {len(classes)} tasks of one disc, {augmentations} augmentations",
            "streams": "+".join(streams), "threads": threads, "seconds": seconds}


def bench_cohort(n_studies: int, workers: tuple[int, ...] = (1, 2), n_slices: int = 15, tta: bool = True,
                 localiser_model: Path | None = None, model: Path | None = None) -> dict:
    """Studies per hour of ``spinecore batch`` on ``n_studies`` phantom T2 volumes (seeds 0..n-1) with
    each number of local ``workers``: over the whole run (cluster start and model loading included)
    and steady (from the moment every worker has finished a first study to the last; needs
    ``n_studies`` > workers + 1), and the CPU seconds per study of the whole run (workers, scheduler
    and start-up: unlike the wall times, nearly the same on a machine busy with other work)."""
    import tempfile

    from spinecore.batch import find_cohort, grade_cohort
    from spinecore.io.write import write_volume
    from spinecore.phantom import PhantomSpec, make_phantom

    runs = []
    with tempfile.TemporaryDirectory(prefix="spinecore-bench-") as scratch:
        root = Path(scratch) / "studies"
        root.mkdir()
        for seed in range(n_studies):
            series = make_phantom(PhantomSpec(seed=seed, n_slices=n_slices, t1=False, axial=False)).get("sag_t2")
            write_volume(root / f"phantom{seed}_t2.nii.gz", series.array, series.geometry)
        for count in workers:
            finished = []
            cpu, start = _cpu_seconds(), time.perf_counter()
            failures = grade_cohort(find_cohort(root, Path(scratch) / f"out{count}"), workers=count, tta=tta,
                                    localiser=localiser_model, grader=model,
                                    done=lambda name, reason: finished.append(time.perf_counter()))
            seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
            warm = finished[count - 1:]  # once every worker has loaded its models and done a first study
            steady = (len(warm) - 1) / (warm[-1] - warm[0]) if len(warm) > 1 else 0.0
            runs.append({"workers": count, "seconds": round(seconds, 1), "failed": len(failures),
                         "studies_per_hour": round(n_studies / seconds * 3600),
                         "steady_studies_per_hour": round(steady * 3600),
                         "cpu_seconds_per_study": round(cpu / n_studies, 2)})
    first = runs[0]
    views = ", 54-view TTA" if tta else ""
    return {"task": f"spinecore batch of {n_studies} phantom studies, {n_slices} slices{views}",
            "cores": os.cpu_count(), "runs": runs,
            "speed_up": {f"{r['workers']} vs {first['workers']} workers": {
                "whole_run": round(first["seconds"] / r["seconds"], 2),
                "steady": round(r["steady_studies_per_hour"] / max(1, first["steady_studies_per_hour"]), 2)}
                for r in runs[1:]}}
