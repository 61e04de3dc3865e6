"""Where a cohort's files live: ``OUT/<study>/`` per study, ``cohort.csv``, ``cohort.png`` and
``failures.csv`` beside them; which studies are done; what a killed run left behind."""
from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from spinecore.errors import InputError
from spinecore.io import find_studies
from spinecore.io.volume import volume_stem
from spinecore.report.analysis import ANALYSIS_FILES
from spinecore.report.cohort import COHORT_CSV, COHORT_PNG, FAILURES_CSV
from spinecore.report.output import STAGING_PREFIX


@dataclass(frozen=True)
class Cohort:
    """The studies of one batch: ``studies[name]`` is the input graded into ``out / name``, done when
    that folder holds every file or folder of ``required``."""

    out: Path
    studies: dict[str, Path]
    required: tuple[str, ...] = ANALYSIS_FILES

    def is_done(self, name: str) -> bool:
        return all((self.out / name / f).exists() for f in self.required)

    def todo(self) -> list[str]:
        return [name for name in self.studies if not self.is_done(name)]

    def clear_leftovers(self) -> None:
        """Remove what a killed run left: staging folders and half-written study folders."""
        for folder in (self.out, *(self.out / name for name in self.studies)):
            for stage in folder.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(stage, ignore_errors=True)
        for name in self.todo():
            if (self.out / name).is_dir():
                shutil.rmtree(self.out / name)


def find_cohort(root: Path, out: Path, extras: tuple[str, ...] = ()) -> Cohort:
    """Every study under ``root`` (:func:`~spinecore.io.find_studies`) but ``out`` itself, named by
    its file or folder name (volume suffixes dropped unless two studies would share a name); a
    study is done when its folder holds the files ``spinecore grade`` writes and the ``extras``
    asked for (``hotspots``, ``seg.dcm``...)."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out is a file, not a folder")
    paths = [p.absolute() for p in find_studies(root) if p.resolve() != out]
    if not paths:
        raise InputError(root, "no study found")
    stems = [p.name if p.is_dir() else volume_stem(p) for p in paths]
    taken = Counter(stems) + Counter((COHORT_CSV, COHORT_PNG, FAILURES_CSV))
    return Cohort(out, {stem if taken[stem] == 1 else p.name: p for stem, p in zip(stems, paths)},
                  (*ANALYSIS_FILES, *extras))
