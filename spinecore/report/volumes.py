"""Disc and vertebral-body volumes as files, each placed in patient space by its own affine."""
from __future__ import annotations

from pathlib import Path

from spinecore.extract import StructureVolume
from spinecore.geometry import Geometry
from spinecore.io.write import write_volume


def write_structure_volumes(volumes: list[StructureVolume], folder: Path) -> list[Path]:
    """``folder/<level>.nii.gz`` per volume: float32 ``(9, rows, columns)`` in 0–1, with the
    volume's own index → LPS mm map, so it overlays the scan in any viewer."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_volume(folder / f"{v.level}.nii.gz", v.array, Geometry(v.to_mm, v.array.shape)) for v in volumes]
