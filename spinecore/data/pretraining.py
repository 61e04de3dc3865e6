"""The structure sets of Siamese pretraining and its evaluation (:func:`pretraining_sets`), and an
on-disk cache of them, so the same scans are localised and cut once, not every run.

An entry is keyed by a SHA-256 of everything the extraction depends on: the caller's description
of its inputs and settings (scan file contents, phantom seeds and settings, the localiser's
weights) plus spinecore's version and the source of the code that extracts (:data:`EXTRACTION_CODE`).
A change to any of them misses the cache. Layout: ``DIR/structures-<key>/`` holding one
``<kind>.npz`` per kind (:meth:`StructureSet.save`) and ``inputs.json`` (what the key was made
from); an entry is written beside its place and renamed into it when complete.
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

import torch

import spinecore
from spinecore.data.pairs import (PHANTOM_FOLLOW_UP_YEARS, PHANTOM_SLICES, StructureSet, phantom_scans, spider_files,
                                  structures_of)
from spinecore.errors import SpineCoreError
from spinecore.grade.siamese import BODY_LEVELS, DISC_LEVELS, Kind
from spinecore.io import load_study
from spinecore.localise import Localiser

log = logging.getLogger(__name__)
#: The source files and packages (relative to the package folder) whose code shapes an extraction.
EXTRACTION_CODE = ("io", "localise", "extract", "phantom", "levels.py", "geometry.py", "data/pairs.py")
#: Hex digits of the key in an entry's folder name.
KEY_DIGITS = 24
ENTRY_PREFIX = "structures-"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a network's state (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def code_digest() -> str:
    """SHA-256 of the :data:`EXTRACTION_CODE` sources, in a fixed order."""
    root = Path(spinecore.__file__).parent
    digest = hashlib.sha256()
    for entry in EXTRACTION_CODE:
        for path in sorted((root / entry).rglob("*.py")) if (root / entry).is_dir() else [root / entry]:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(inputs: dict) -> str:
    """The key of an extraction of ``inputs`` (JSON-serialisable) by this spinecore."""
    material = {"inputs": inputs, "spinecore": spinecore.__version__, "code": code_digest()}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:KEY_DIGITS]


def _load(entry: Path) -> dict[Kind, StructureSet]:
    kinds = json.loads((entry / "inputs.json").read_text())["kinds"]
    return {Kind(k): StructureSet.load(entry / f"{k}.npz") for k in kinds}


def _store(entry: Path, sets: dict[Kind, StructureSet], inputs: dict) -> None:
    stage = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        for kind, data in sets.items():
            data.save(stage / f"{kind.value}.npz")
        (stage / "inputs.json").write_text(json.dumps({"inputs": inputs, "kinds": [k.value for k in sets]}, indent=1))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(stage, entry)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def cached_sets(folder: Path, inputs: dict, extract: Callable[[], dict[Kind, StructureSet]]) -> dict[Kind, StructureSet]:
    """The structure sets of ``inputs`` from the cache in ``folder``, or ``extract()`` stored there.
    An unreadable entry is extracted again and replaced."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpineCoreError(folder, f"cannot be the cache folder ({exc.strerror or type(exc).__name__})") from None
    entry = folder / f"{ENTRY_PREFIX}{cache_key(inputs)}"
    if entry.is_dir():
        try:
            sets = _load(entry)
            log.info("structures from the cache %s (%s)", entry, ", ".join(f"{len(s)} {k.value}" for k, s in sets.items()))
            return sets
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable cache entry (%s), extracting again", entry, type(exc).__name__)
    sets = extract()
    _store(entry, sets, inputs)
    log.info("cached the structures in %s", entry)
    return sets


def pretraining_sets(data_root: Path | None, part: str, phantom_seeds, localiser: Localiser,
                     cache: Path | None = None) -> dict[Kind, StructureSet]:
    """Bodies and discs of the SPIDER patients of ``part`` (``train`` / ``validation``, the grading
    split; none without ``data_root``) and of the phantom patients ``phantom_seeds``; with ``cache``,
    through the cache in that folder (:func:`cached_sets`)."""
    from spinecore.data.spider import spider_patient_split

    files = spider_files(data_root, spider_patient_split(data_root)[part]) if data_root else []

    def extract() -> dict[Kind, StructureSet]:
        scans = [(patient, path.name, sequence, load_study(path).sagittal()) for patient, path, sequence in files]
        return structures_of(scans + phantom_scans(phantom_seeds, PHANTOM_FOLLOW_UP_YEARS, PHANTOM_SLICES), localiser)

    if cache is None:
        return extract()
    inputs = {"spider": [[path.name, file_digest(path)] for _, path, _ in files],
              "phantoms": {"seeds": [int(s) for s in phantom_seeds], "follow_up_years": PHANTOM_FOLLOW_UP_YEARS,
                           "slices": PHANTOM_SLICES},
              "levels": [BODY_LEVELS, DISC_LEVELS], "localiser": weights_digest(localiser.network)}
    return cached_sets(cache, inputs, extract)
