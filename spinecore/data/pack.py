"""The shared real-data pack: the one check that a folder is it."""
from __future__ import annotations

from pathlib import Path

from spinecore.errors import SpineCoreError


def require_pack(root: Path, *needed: str) -> Path:
    """``root`` when it holds every ``needed`` path of the real-data pack (a trailing ``/`` asks
    for a folder); otherwise a one-line :class:`SpineCoreError` naming what is missing."""
    root = Path(root)
    for name in needed:
        if not ((root / name).is_dir() if name.endswith("/") else (root / name).is_file()):
            raise SpineCoreError(root, f"not the real-data pack (needs {' and '.join(needed)})")
    return root
