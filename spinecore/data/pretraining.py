"""The structure sets of Siamese pretraining and its evaluation (:func:`pretraining_sets`), through
the on-disk cache of :mod:`spinecore.data.cache` when asked: entry ``structures-<key>/`` holds one
``<kind>.npz`` per kind (:meth:`StructureSet.save`)."""
from __future__ import annotations

from pathlib import Path

from spinecore.data.cache import cached, file_digest, weights_digest
from spinecore.data.pairs import (PHANTOM_FOLLOW_UP_YEARS, PHANTOM_SLICES, StructureSet, phantom_scans, spider_files,
                                  structures_of, sudirman_files)
from spinecore.grade.siamese import BODY_LEVELS, DISC_LEVELS, Kind
from spinecore.io import load_study
from spinecore.localise import Localiser

#: The pretraining-specific code an entry depends on (besides :data:`spinecore.data.cache.EXTRACTION_CODE`).
PAIRS_CODE = ("data/pairs.py",)
ENTRY_PREFIX = "structures-"


def _save(sets: dict[Kind, StructureSet], entry: Path) -> None:
    for kind, data in sets.items():
        data.save(entry / f"{kind.value}.npz")


def _load(entry: Path) -> dict[Kind, StructureSet]:
    return {Kind(path.stem): StructureSet.load(path) for path in sorted(entry.glob("*.npz"))}


def pretraining_sets(data_root: Path | None, part: str, phantom_seeds, localiser: Localiser,
                     cache: Path | None = None) -> dict[Kind, StructureSet]:
    """Bodies and discs of the SPIDER and Sudirman patients of ``part`` (``train`` / ``validation``, our
    splits; none without ``data_root``, no Sudirman ones without its folder) and of the phantom patients
    ``phantom_seeds``; with ``cache``, through the cache in that folder (:func:`~spinecore.data.cache.cached`)."""
    from spinecore.data.spider import spider_patient_split

    files = (spider_files(data_root, spider_patient_split(data_root)[part]) + sudirman_files(data_root, part)
             if data_root else [])

    def extract() -> dict[Kind, StructureSet]:
        scans = [(patient, path.name, sequence, load_study(path).sagittal()) for patient, path, sequence in files]
        return structures_of(scans + phantom_scans(phantom_seeds, PHANTOM_FOLLOW_UP_YEARS, PHANTOM_SLICES), localiser)

    if cache is None:
        return extract()
    inputs = {"images": [[str(path.relative_to(data_root)), file_digest(path)] for _, path, _ in files],
              "phantoms": {"seeds": [int(s) for s in phantom_seeds], "follow_up_years": PHANTOM_FOLLOW_UP_YEARS,
                           "slices": PHANTOM_SLICES},
              "levels": [BODY_LEVELS, DISC_LEVELS], "localiser": weights_digest(localiser.network)}
    return cached(cache, ENTRY_PREFIX, inputs, PAIRS_CODE, extract, _save, _load)
