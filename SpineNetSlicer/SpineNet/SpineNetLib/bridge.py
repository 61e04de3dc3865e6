"""The RAS ⇄ LPS edge: Slicer volume nodes as spinecore series, and back.

Slicer's ``arrayFromVolume`` is indexed ``[k, j, i]`` like spinecore arrays; its IJK→RAS
matrix takes ``(i, j, k)``. spinecore affines take ``(k, j, i)`` and give LPS.
"""
from __future__ import annotations

import numpy as np

from spinecore.geometry import Geometry
from spinecore.io.series import Series
from spinecore.io.volume import series_from_array

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse
_IJK_TO_KJI = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])  # likewise


def numpy_matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def vtk_matrix(matrix: np.ndarray):
    import vtk

    out = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            out.SetElement(r, c, float(matrix[r, c]))
    return out


def geometry_from_ijk_to_ras(ijk_to_ras: np.ndarray, shape_kji: tuple[int, int, int]) -> Geometry:
    """spinecore geometry of a volume whose IJK→RAS matrix is ``ijk_to_ras`` (4×4)."""
    return Geometry(RAS_FROM_LPS @ np.asarray(ijk_to_ras, float) @ _IJK_TO_KJI, shape_kji)


def ijk_to_ras_of(geometry: Geometry) -> np.ndarray:
    """The IJK→RAS matrix Slicer needs for an array in ``geometry``."""
    return RAS_FROM_LPS @ geometry.affine @ _IJK_TO_KJI


def lps_to_ras(points_mm: np.ndarray) -> np.ndarray:
    """``(..., 3)`` LPS mm → RAS mm."""
    return np.asarray(points_mm, float) * np.array([-1.0, -1.0, 1.0])


def node_geometry(volume_node) -> Geometry:
    """The geometry of a volume node's own voxel grid in world coordinates (its parent transform
    applied, which must be linear), before any reorientation."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = numpy_matrix(matrix)
    transform = volume_node.GetParentTransformNode()
    if transform is not None:
        if not transform.IsTransformToWorldLinear():
            raise ValueError(f"{volume_node.GetName()}: non-linear transforms are not supported; harden them first")
        to_world = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToWorld(to_world)
        ijk_to_ras = numpy_matrix(to_world) @ ijk_to_ras
    return geometry_from_ijk_to_ras(ijk_to_ras, tuple(reversed(volume_node.GetImageData().GetDimensions())))


def series_from_volume_node(volume_node) -> Series:
    """A scalar volume node as a canonical spinecore :class:`Series` in world coordinates
    (:func:`node_geometry`); its source is the node's file, or else the node's name."""
    import slicer  # only available inside Slicer or with slicer-core

    storage = volume_node.GetStorageNode()
    source = (storage.GetFileName() if storage is not None else "") or volume_node.GetName()
    return series_from_array(slicer.util.arrayFromVolume(volume_node), node_geometry(volume_node), source=source,
                             description=volume_node.GetName())


def add_volume_node(scene, name: str, array: np.ndarray, geometry: Geometry, class_name: str = "vtkMRMLScalarVolumeNode"):
    """A new volume node holding ``array`` ``(slice, row, column)`` placed by ``geometry``."""
    import slicer

    node = scene.AddNewNodeByClass(class_name, name)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras_of(geometry)))
    node.CreateDefaultDisplayNodes()
    return node


def to_node_grid(array: np.ndarray, series_geometry: Geometry, grid: Geometry) -> np.ndarray:
    """``array`` laid out in a series' canonical grid, permuted/flipped back into ``grid`` (the
    input node's own voxel grid, which the series was reoriented from: no resampling)."""
    out, geometry = series_geometry.reorient(array, grid.axis_codes)
    if out.shape != grid.shape or not np.allclose(geometry.affine, grid.affine, atol=1e-4):
        raise ValueError("the results do not lie in the input volume's grid; was the volume changed during the run?")
    return out
