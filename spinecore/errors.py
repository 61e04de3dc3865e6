"""Exceptions raised by spinecore.

Every failure caused by the user's input is a :class:`SpineCoreError` whose ``str()``
is one line naming the offending file and the reason. The CLI prints that line and
exits with code 2; library users can catch the class.
"""
from __future__ import annotations

from pathlib import Path


class SpineCoreError(Exception):
    """Base class: a problem with the input, stated in one line."""

    def __init__(self, source: str | Path | None, reason: str):
        self.source = str(source) if source is not None else None
        self.reason = " ".join(str(reason).split())  # always a single line
        super().__init__(f"{self.source}: {self.reason}" if self.source else self.reason)


class InputError(SpineCoreError):
    """The file or folder cannot be read as a scan (not DICOM, truncated, empty...)."""


class GeometryError(SpineCoreError):
    """The scan lacks or has inconsistent spatial information (spacing, orientation...)."""


class UnsafeArchiveError(SpineCoreError):
    """A zip archive tries to escape its folder or exceeds the size cap."""


class SeriesNotFoundError(SpineCoreError):
    """The study holds no series of the kind a stage requires (e.g. no sagittal)."""


def brief(exc: BaseException, limit: int = 120) -> str:
    """The first sentence of a library's exception message, at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    first = text.split(" - ")[0].split(". ")[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


class ModelError(SpineCoreError):
    """A model file is missing, corrupt, or not a spinecore model of the expected kind."""


class LocalisationError(SpineCoreError):
    """No spine could be found or labelled in the scan."""


class StreamError(SpineCoreError):
    """A second series of the study (sagittal T1, axial) does not match the sagittal T2 it should
    be fused with: no overlap, another patient or another frame of reference."""
