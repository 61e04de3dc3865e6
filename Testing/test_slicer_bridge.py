"""The RAS⇄LPS edge of SpineNetSlicer, checked against ITK's own geometry (no Slicer needed)."""
import numpy as np
import SimpleITK as sitk

from conftest import SAMPLE_THORACOLUMBAR
from spinecore.geometry import Geometry
from SpineNetLib.bridge import geometry_from_ijk_to_ras, ijk_to_ras_of


def slicer_matrix_of(image: sitk.Image) -> np.ndarray:
    """What Slicer computes for a loaded file: ITK's LPS geometry with x, y negated."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return np.diag([-1.0, -1, 1, 1]) @ matrix


def test_slicer_matrix_gives_the_same_geometry_as_spinecore_io():
    image = sitk.ReadImage(str(SAMPLE_THORACOLUMBAR))
    shape = tuple(reversed(image.GetSize()))
    geometry = geometry_from_ijk_to_ras(slicer_matrix_of(image), shape)
    assert np.allclose(geometry.affine, Geometry.from_sitk(image).affine)
    # round trip back to Slicer's RAS frame
    assert np.allclose(geometry.ras_affine @ np.array([2, 3, 4, 1.0]), slicer_matrix_of(image) @ np.array([4, 3, 2, 1.0]))


def test_ijk_to_ras_of_gives_the_matrix_slicer_computes():
    image = sitk.ReadImage(str(SAMPLE_THORACOLUMBAR))
    assert np.allclose(ijk_to_ras_of(Geometry.from_sitk(image)), slicer_matrix_of(image))
