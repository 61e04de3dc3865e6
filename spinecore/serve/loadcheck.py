"""Load check of the web service: a real ``spinecore serve`` on localhost, N concurrent uploads, the
time each waited for its result and the peak memory of the server and its workers (``spinecore bench
--serve N``)."""
from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from spinecore.errors import SpineCoreError

STARTUP_TIMEOUT_S = 180
RESULT_TIMEOUT_S = 3600
POLL_S = 0.5
MEMORY_SAMPLE_S = 0.2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _multipart(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``path`` as the ``file`` field, and its content type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def _one_job(base: str, study: Path, tta: bool) -> tuple[float, str]:
    """Upload ``study``, wait for its job to end: (seconds from upload to result, final status)."""
    body, content_type = _multipart(study, {"tta": str(tta).lower()})
    start = time.perf_counter()
    request = urllib.request.Request(f"{base}/api/jobs", data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=300) as answer:
        job_id = json.loads(answer.read())["id"]
    deadline = start + RESULT_TIMEOUT_S
    while time.perf_counter() < deadline:
        state = _get_json(f"{base}/api/jobs/{job_id}")
        if state["status"] in ("done", "failed"):
            return time.perf_counter() - start, state["status"]
        time.sleep(POLL_S)
    return time.perf_counter() - start, "timed out"


class _PeakMemory:
    """Samples the resident memory of a process and all its descendants until stopped."""

    def __init__(self, pid: int):
        import psutil

        self.root, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(MEMORY_SAMPLE_S):
            total = 0
            for process in [self.root, *self.root.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:  # a worker that just ended
                    pass
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def load_check(n_uploads: int, jobs: int = 1, n_slices: int = 15, tta: bool = True) -> dict:
    """Start ``spinecore serve --jobs jobs`` on a free localhost port, upload ``n_uploads`` phantom
    studies (``n_slices`` sagittal slices) at once and wait for every result."""
    try:
        import psutil  # noqa: F401 - the memory sampler needs it
    except ModuleNotFoundError:
        raise SpineCoreError(None, "bench --serve needs psutil: pip install psutil") from None
    from spinecore.io.write import write_volume
    from spinecore.phantom import PhantomSpec, make_phantom

    with tempfile.TemporaryDirectory(prefix="spinecore-loadcheck-") as scratch:
        study = Path(scratch) / "phantom_t2.nii.gz"
        series = make_phantom(PhantomSpec(seed=0, n_slices=n_slices, t1=False, axial=False)).get("sag_t2")
        write_volume(study, series.array, series.geometry)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "spinecore", "serve", "--port", str(port), "--jobs", str(jobs),
                                   "--data-dir", str(Path(scratch) / "data")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            memory = _PeakMemory(server.pid)
            startup = _wait_until_up(base, server)
            start = time.perf_counter()
            with ThreadPoolExecutor(n_uploads) as pool:
                finished = list(pool.map(lambda _: _one_job(base, study, tta), range(n_uploads)))
            wall = time.perf_counter() - start
            peak = memory.stop()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    seconds = [s for s, _ in finished]
    return {"task": f"spinecore serve --jobs {jobs}: {n_uploads} concurrent uploads of a {n_slices}-slice phantom study"
                    f"{', 54-view TTA' if tta else ''}",
            "cores": os.cpu_count(), "server_start_s": round(startup, 1), "wall_s": round(wall, 1),
            "seconds_to_result": {"min": round(min(seconds), 1), "median": round(statistics.median(seconds), 1),
                                  "max": round(max(seconds), 1)},
            "results_per_hour": round(n_uploads / wall * 3600),
            "failed": sum(status != "done" for _, status in finished),
            "peak_memory_mb": round(peak / 1024**2)}


def _wait_until_up(base: str, server: subprocess.Popen) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < STARTUP_TIMEOUT_S:
        if server.poll() is not None:
            raise SpineCoreError(None, f"the server stopped: {server.stderr.read().strip()}")
        try:
            urllib.request.urlopen(f"{base}/", timeout=5).close()
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.5)
    raise SpineCoreError(None, f"the server did not answer within {STARTUP_TIMEOUT_S} s")
