"""The service's jobs: unguessable ids, private folders, a bounded queue, and the process pool that
grades them outside the request handlers.

Layout under ``data_dir``: ``jobs/<id>/upload/`` (the uploaded file, deleted once processed),
``jobs/<id>/results/`` (what ``spinecore grade`` writes, plus ``slices/``), ``jobs/<id>/progress.json``.
A failed or deleted job leaves no folder; a finished one is deleted ``keep_hours`` after it ended.
"""
from __future__ import annotations

import json
import multiprocessing
import queue
import re
import secrets
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from spinecore.cores import host_cores
from spinecore.errors import SpineCoreError
from spinecore.serve.worker import (
    PROGRESS_FILE,
    JobSpec,
    load_models,
    models_ready,
    run_job,
)

#: 24 random bytes: 192 bits, written as 32 URL-safe characters.
JOB_ID_BYTES = 24
JOB_ID = re.compile(r"[A-Za-z0-9_-]{32}")
#: Jobs allowed to wait in the queue; beyond it uploads are refused (HTTP 503) until some finish.
MAX_WAITING_JOBS = 100
#: How often finished jobs are checked for expiry.
SWEEP_SECONDS = 60.0
CRASHED = "the grading process stopped unexpectedly on this upload"


class Status(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ServiceBusy(Exception):
    """The queue holds :data:`MAX_WAITING_JOBS` jobs already."""


@dataclass
class Job:
    """One upload and what became of it. ``files``: result files (POSIX paths relative to
    ``spec.results``) once done."""

    id: str
    spec: JobSpec
    status: Status = Status.QUEUED
    progress: float = 0.0
    message: str = "waiting for a worker"
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    files: tuple[str, ...] = ()


class JobBoard:
    """Every job of one server, graded by ``workers`` processes (each loads the models once)."""

    def __init__(self, data_dir: Path, workers: int = 1, keep_hours: float = 24.0,
                 localiser: Path | None = None, grader: Path | None = None):
        self.jobs_dir = Path(data_dir) / "jobs"
        self.workers = workers
        self.keep_seconds = keep_hours * 3600
        self._model_files = (localiser, grader)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ProcessPoolExecutor | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Clear job folders left by an earlier server, start the workers (raising a one-line
        :class:`SpineCoreError` when they cannot load the models) and the dispatch threads."""
        self._pool = self._new_pool()
        problems = {f.result() for f in [self._pool.submit(models_ready) for _ in range(self.workers)]}
        if problems - {None}:
            self.close()
            raise SpineCoreError(None, next(p for p in problems if p))
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for old in self.jobs_dir.iterdir():
            if JOB_ID.fullmatch(old.name) and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        self._threads = [threading.Thread(target=self._dispatch, daemon=True, name=f"spinecore-job-{n}")
                         for n in range(self.workers)]
        self._threads.append(threading.Thread(target=self._sweep, daemon=True, name="spinecore-sweeper"))
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stopping.set()
        for _ in range(self.workers):
            self._queue.put(None)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for thread in self._threads:
            thread.join(timeout=5)

    def _new_pool(self) -> ProcessPoolExecutor:
        threads = max(1, host_cores() // self.workers)
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=load_models, initargs=(*self._model_files, threads))

    # -- jobs -------------------------------------------------------------------------------------
    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its private folder, with an empty ``upload/`` inside."""
        job_id = secrets.token_urlsafe(JOB_ID_BYTES)
        folder = self.jobs_dir / job_id
        (folder / "upload").mkdir(parents=True, mode=0o700)
        return job_id, folder

    def submit(self, job_id: str, spec: JobSpec) -> Job:
        """Queue ``spec``; raises :class:`ServiceBusy` when the queue is full (its folder is removed)."""
        with self._lock:
            if sum(j.status is Status.QUEUED for j in self._jobs.values()) >= MAX_WAITING_JOBS:
                shutil.rmtree(spec.folder, ignore_errors=True)
                raise ServiceBusy()
            job = self._jobs[job_id] = Job(job_id, spec)
        self._queue.put(job_id)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job (its progress refreshed), or ``None`` for an unknown or malformed id."""
        with self._lock:
            job = self._jobs.get(job_id) if JOB_ID.fullmatch(job_id) else None
            if job is not None and job.status is Status.RUNNING:
                self._refresh(job)
            return job

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, … ; ``None`` unless ``job`` is queued."""
        with self._lock:
            waiting = [j.id for j in self._jobs.values() if j.status is Status.QUEUED]
        return waiting.index(job.id) + 1 if job.id in waiting else None

    def delete(self, job_id: str) -> bool:
        """Forget the job and delete its files (a running job stops at its next progress report)."""
        with self._lock:
            job = self._jobs.pop(job_id, None) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            return False
        shutil.rmtree(job.spec.folder, ignore_errors=True)
        return True

    def result_file(self, job_id: str, name: str) -> Path | None:
        """The path of result ``name`` of a finished job; ``None`` unless ``name`` is one of its files."""
        job = self.get(job_id)
        if job is None or job.status is not Status.DONE or name not in job.files:
            return None
        return job.spec.results / name

    # -- threads ----------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while (job_id := self._queue.get()) is not None:
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None:
                    continue
                job.status, job.message = Status.RUNNING, "starting"
            error = self._run(job.spec)
            with self._lock:
                if self._jobs.get(job_id) is not job:  # deleted while it ran
                    shutil.rmtree(job.spec.folder, ignore_errors=True)
                    continue
                self._finish(job, error)

    def _run(self, spec: JobSpec) -> str | None:
        pool = self._pool
        try:
            return pool.submit(run_job, spec).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool and not self._stopping.is_set():
                    self._pool = self._new_pool()
            shutil.rmtree(spec.upload.parent, ignore_errors=True)
            return CRASHED

    def _finish(self, job: Job, error: str | None) -> None:
        job.finished = time.time()
        if error is None:
            (job.spec.folder / PROGRESS_FILE).unlink(missing_ok=True)
            results = job.spec.results
            job.files = tuple(sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()))
            job.status, job.progress, job.message = Status.DONE, 1.0, "done"
        else:
            shutil.rmtree(job.spec.folder, ignore_errors=True)
            job.status, job.error, job.message = Status.FAILED, error, "failed"

    @staticmethod
    def _refresh(job: Job) -> None:
        try:
            state = json.loads((job.spec.folder / PROGRESS_FILE).read_text())
            job.progress, job.message = float(state["progress"]), str(state["message"])
        except (OSError, ValueError, KeyError):  # not written yet, or being replaced
            pass

    def _sweep(self) -> None:
        while not self._stopping.wait(SWEEP_SECONDS):
            self.expire()

    def expire(self, now: float | None = None) -> list[str]:
        """Delete the jobs that ended more than ``keep_hours`` ago; returns their ids."""
        now = time.time() if now is None else now
        with self._lock:
            old = [j.id for j in self._jobs.values() if j.finished is not None and now - j.finished > self.keep_seconds]
        return [job_id for job_id in old if self.delete(job_id)]
