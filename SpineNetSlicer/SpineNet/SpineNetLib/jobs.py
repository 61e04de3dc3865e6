"""Run a long spinecore call in a worker thread so a GUI stays responsive: the GUI polls
:attr:`BackgroundJob.progress` and :attr:`BackgroundJob.done` (e.g. from a timer) and may
:meth:`BackgroundJob.cancel`. No Qt here; the work must not touch the MRML scene."""
from __future__ import annotations

import threading
from typing import Callable

from spinecore.pipeline import Cancelled, Progress


class BackgroundJob:
    """``work(progress)`` in a daemon thread; ``progress(fraction, message)`` raises
    :class:`~spinecore.pipeline.Cancelled` once :meth:`cancel` was called."""

    def __init__(self, work: Callable[[Progress], object]):
        self._work = work
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="SpineNet", daemon=True)
        self.progress: tuple[float, str] = (0.0, "starting")
        self.result = None
        self.error: BaseException | None = None

    def start(self) -> "BackgroundJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, Cancelled)

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def _report(self, fraction: float, message: str) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")
        self.progress = (fraction, message)

    def _run(self) -> None:
        try:
            self.result = self._work(self._report)
        except BaseException as exc:  # handed to the GUI thread, which shows it
            self.error = exc
