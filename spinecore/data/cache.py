"""An on-disk cache of extracted volumes, so the same scans are localised and cut once, not every
run (Siamese pretraining's structure sets, the disc sets of ``train``/``evaluate``).

An entry is keyed by a SHA-256 of everything the extraction depends on: the caller's description
of its inputs and settings (scan file contents, phantom seeds and settings, the localiser's
weights), spinecore's version and the source of the code that extracts (its ``code`` entries). A
change to any of them misses the cache. Layout: ``DIR/<prefix><key>/`` holding the caller's files
and ``inputs.json`` (what the key was made from); an entry is written beside its place and renamed
into it when complete.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

import spinecore
from spinecore.errors import SpineCoreError

log = logging.getLogger(__name__)

#: The source files and packages (relative to the package folder) whose code shapes every extraction.
EXTRACTION_CODE = ("io", "localise", "extract", "phantom", "levels.py", "geometry.py")
#: Hex digits of the key in an entry's folder name.
KEY_DIGITS = 24

Cached = TypeVar("Cached")


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and bytes, in a fixed order)."""
    path = Path(path)
    if not path.is_dir():
        return file_digest(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(member.relative_to(path).as_posix().encode())
        digest.update(file_digest(member).encode())
    return digest.hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a network's state (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def code_digest(code: tuple[str, ...]) -> str:
    """SHA-256 of the sources ``code`` (files and packages relative to the package folder), in a fixed order."""
    root = Path(spinecore.__file__).parent
    digest = hashlib.sha256()
    for entry in code:
        for path in sorted((root / entry).rglob("*.py")) if (root / entry).is_dir() else [root / entry]:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(inputs: dict, code: tuple[str, ...]) -> str:
    """The key of an extraction of ``inputs`` (JSON-serialisable) by this spinecore's ``code``."""
    material = {"inputs": inputs, "spinecore": spinecore.__version__, "code": code_digest(code)}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:KEY_DIGITS]


def _store(entry: Path, value, inputs: dict, save: Callable[[object, Path], None]) -> None:
    stage = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        save(value, stage)
        (stage / "inputs.json").write_text(json.dumps(inputs, indent=1))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(stage, entry)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def cached(folder: Path, prefix: str, inputs: dict, code: tuple[str, ...], extract: Callable[[], Cached],
           save: Callable[[Cached, Path], None], load: Callable[[Path], Cached]) -> Cached:
    """``extract()`` of ``inputs`` from the cache in ``folder`` (entry ``<prefix><key>``, read by
    ``load(entry)``), or extracted and stored there by ``save(value, entry)``. An unreadable entry is
    extracted again and replaced."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpineCoreError(folder, f"cannot be the cache folder ({exc.strerror or type(exc).__name__})") from None
    entry = folder / f"{prefix}{cache_key(inputs, EXTRACTION_CODE + code)}"
    if entry.is_dir():
        try:
            value = load(entry)
            log.info("volumes from the cache %s", entry)
            return value
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable cache entry (%s), extracting again", entry, type(exc).__name__)
    value = extract()
    _store(entry, value, inputs, save)
    log.info("cached the volumes in %s", entry)
    return value
