"""Output folders that receive either every result of a run or nothing new."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: Names of the private staging folders (left behind only by a killed process).
STAGING_PREFIX = ".spinecore-partial-"


@contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield a private staging folder inside ``out_dir``.

    On success its contents are moved into ``out_dir`` (replacing same-named entries);
    on any error the staging folder is deleted, and so is ``out_dir`` if this call created
    it. A failed run therefore leaves no partial outputs, and nothing is ever written
    outside ``out_dir``.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    for item in stage.iterdir():
        target = out_dir / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(item, target)
    stage.rmdir()
