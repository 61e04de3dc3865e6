"""Uploads streamed straight to a job's folder with a size cap, never named by the user.

The form (``multipart/form-data``) has one file field ``file`` and optional fields ``tta`` and
``hotspots`` (``true``/``false``). The file is written as ``scan`` plus a suffix the readers know,
taken from the user's file name; that name is kept only for display.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "file"
OPTION_FIELDS = {"tta": True, "hotspots": False}  # name → default
TRUE, FALSE = {"true", "on", "1", "yes"}, {"false", "off", "0", "no"}
#: Suffixes the readers recognise (longest first); anything else is stored bare and read as DICOM.
KNOWN_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".zip", ".dcm")
STORED_STEM = "scan"
#: Bytes allowed in the form beyond the file: boundaries, part headers, option fields.
FORM_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 16
DISPLAY_NAME_LENGTH = 120


class UploadRejected(Exception):
    """The upload cannot be taken: an HTTP ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Upload:
    """A received upload: the stored ``path``, the user's ``display_name`` and the options."""

    path: Path
    display_name: str
    options: dict[str, bool] = field(default_factory=lambda: dict(OPTION_FIELDS))


def display_name(raw: str) -> str:
    """The last component of a user's file name, printable, at most :data:`DISPLAY_NAME_LENGTH`
    characters (``upload`` if nothing is left)."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:DISPLAY_NAME_LENGTH] or "upload"


def stored_name(display: str) -> str:
    """``scan`` plus the reader suffix of ``display`` (``scan`` alone when it has none we know)."""
    lower = display.lower()
    return STORED_STEM + next((s for s in KNOWN_SUFFIXES if lower.endswith(s)), "")


class _FormReader:
    """python-multipart callbacks that write the file part to ``folder`` and keep the options."""

    def __init__(self, folder: Path, max_bytes: int, too_large: UploadRejected):
        self.folder, self.max_bytes, self.too_large = folder, max_bytes, too_large
        self.headers: dict[bytes, bytes] = {}
        self.header = [b"", b""]
        self.part: str | None = None  # FILE_FIELD, an option name, or None (ignored part)
        self.value = b""
        self.sink: BinaryIO | None = None
        self.upload: Upload | None = None
        self.options = dict(OPTION_FIELDS)
        self.size = 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self) -> None:
        self.headers, self.part, self.value = {}, None, b""

    def _field(self, data: bytes, start: int, end: int) -> None:
        self.header[0] += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self.header[1] += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.header[0].strip().lower()] = self.header[1].strip()
        self.header = [b"", b""]

    def _headers_done(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD and b"filename" in params:
            if self.upload is not None:
                raise UploadRejected(400, "send one file per upload")
            shown = display_name(params[b"filename"].decode("utf-8", "replace"))
            self.upload = Upload(self.folder / stored_name(shown), shown)
            self.sink = self.upload.path.open("xb")
            self.part = FILE_FIELD
        elif name in OPTION_FIELDS:
            self.part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.part == FILE_FIELD:
            self.size += end - start
            if self.size > self.max_bytes:
                raise self.too_large
            self.sink.write(data[start:end])
        elif self.part is not None:
            self.value += data[start:end]
            if len(self.value) > MAX_FIELD_BYTES:
                raise UploadRejected(400, f"the value of '{self.part}' is too long")

    def _end(self) -> None:
        if self.part == FILE_FIELD:
            self.sink.close()
            self.sink = None
        elif self.part is not None:
            text = self.value.decode("ascii", "replace").strip().lower()
            if text not in TRUE | FALSE:
                raise UploadRejected(400, f"'{self.part}' must be true or false, not '{text[:MAX_FIELD_BYTES]}'")
            self.options[self.part] = text in TRUE

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


async def receive_upload(content_type: str, content_length: str | None, body: AsyncIterator[bytes], folder: Path,
                         max_bytes: int) -> Upload:
    """Stream a multipart ``body`` into ``folder``; raises :class:`UploadRejected` (the caller
    removes ``folder``) for a body that is not such a form, has no file, or exceeds ``max_bytes``."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadRejected(415, "send the study as multipart/form-data with a 'file' field")
    too_large = UploadRejected(413, f"the upload is larger than the server's limit of {max_bytes // 1024**2} MB")
    limit, received = max_bytes + FORM_OVERHEAD, 0
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise too_large
    reader = _FormReader(folder, max_bytes, too_large)
    parser = MultipartParser(params[b"boundary"], reader.callbacks())
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadRejected(400, f"malformed form data ({exc})") from None
    finally:
        reader.close()
    if reader.upload is None or reader.size == 0:
        raise UploadRejected(400, "no file in the upload (send it in the form field 'file')")
    reader.upload.options = reader.options
    return reader.upload
