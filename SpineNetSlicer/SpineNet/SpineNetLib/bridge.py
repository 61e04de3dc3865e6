"""The RAS ⇄ LPS edge: Slicer volume nodes as spinecore series.

Slicer's ``arrayFromVolume`` is indexed ``[k, j, i]`` like spinecore arrays; its IJK→RAS
matrix takes ``(i, j, k)``. spinecore affines take ``(k, j, i)`` and give LPS.
"""
from __future__ import annotations

import numpy as np

from spinecore.geometry import Geometry
from spinecore.io.series import Series
from spinecore.io.volume import series_from_array

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_IJK_TO_KJI = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])


def geometry_from_ijk_to_ras(ijk_to_ras: np.ndarray, shape_kji: tuple[int, int, int]) -> Geometry:
    """spinecore geometry of a volume whose IJK→RAS matrix is ``ijk_to_ras`` (4×4)."""
    return Geometry(_RAS_TO_LPS @ np.asarray(ijk_to_ras, float) @ _IJK_TO_KJI, shape_kji)


def series_from_volume_node(volume_node) -> Series:
    """A scalar volume node as a canonical spinecore :class:`Series`."""
    import slicer  # only available inside Slicer or with slicer-core
    import vtk

    array = slicer.util.arrayFromVolume(volume_node)
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    transform = volume_node.GetParentTransformNode()
    if transform is not None:
        to_world = vtk.vtkMatrix4x4()
        if not transform.IsTransformToWorldLinear():
            raise ValueError(f"{volume_node.GetName()}: non-linear transforms are not supported; harden them first")
        transform.GetMatrixTransformToWorld(to_world)
        world = np.array([[to_world.GetElement(r, c) for c in range(4)] for r in range(4)])
        ijk_to_ras = world @ ijk_to_ras
    geometry = geometry_from_ijk_to_ras(ijk_to_ras, array.shape)
    return series_from_array(array, geometry, source=f"MRML:{volume_node.GetID()}", description=volume_node.GetName())
