import numpy as np
import pytest
import SimpleITK as sitk

from spinecore.geometry import Geometry, rotation_matrix


def oblique_geometry() -> Geometry:
    directions = rotation_matrix((0.3, -0.5, 0.8), 17) @ np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, 1.0, 0]])
    return Geometry.from_parts((10.0, -20.0, 35.0), (3.5, 0.6, 0.8), directions, (7, 20, 30))


def test_vox_mm_round_trip_and_spacing():
    g = oblique_geometry()
    index = np.array([[0, 0, 0], [6, 19, 29], [2.5, 7.25, 1.0]])
    assert np.allclose(g.mm_to_vox(g.vox_to_mm(index)), index)
    assert np.allclose(g.spacing, (3.5, 0.6, 0.8))
    assert np.allclose(g.vox_to_mm([0, 0, 0]), (10.0, -20.0, 35.0))
    # one step along the slice axis moves 3.5 mm
    assert np.isclose(np.linalg.norm(g.vox_to_mm([1, 0, 0]) - g.vox_to_mm([0, 0, 0])), 3.5)


@pytest.mark.parametrize("codes", [("R", "I", "P"), ("S", "P", "L"), ("P", "I", "L"), ("L", "A", "S")])
def test_reorient_keeps_every_voxel_in_place(codes):
    g = oblique_geometry()
    array = np.random.default_rng(0).random(g.shape).astype(np.float32)
    out, g2 = g.reorient(array, codes)
    assert g2.axis_codes == codes
    assert out.shape == g2.shape
    # the same voxel value sits at the same LPS position
    for index in ([0, 0, 0], [3, 11, 17], [6, 19, 29]):
        mm = g.vox_to_mm(index)
        new_index = np.rint(g2.mm_to_vox(mm)).astype(int)
        assert np.allclose(g2.mm_to_vox(mm), new_index, atol=1e-6)
        assert out[tuple(new_index)] == array[tuple(index)]


def test_sitk_bridge_round_trip():
    g = oblique_geometry()
    array = np.arange(np.prod(g.shape), dtype=np.float32).reshape(g.shape)
    image = g.to_sitk(array)
    assert image.GetSize() == (30, 20, 7)  # ITK order is (column, row, slice)
    g2 = Geometry.from_sitk(image)
    assert np.allclose(g2.affine, g.affine)
    # ITK's own index→physical agrees with ours for an arbitrary voxel
    assert np.allclose(image.TransformIndexToPhysicalPoint((29, 3, 5)), g.vox_to_mm([5, 3, 29]))
    assert np.array_equal(sitk.GetArrayFromImage(image), array)


def test_ras_affine_negates_x_and_y():
    g = oblique_geometry()
    lps = g.vox_to_mm([1, 2, 3])
    ras = g.ras_affine @ np.array([1, 2, 3, 1.0])
    assert np.allclose(ras[:3], lps * np.array([-1, -1, 1]))


def test_singular_affine_is_rejected():
    with pytest.raises(ValueError):
        Geometry(np.diag([1.0, 0.0, 1.0, 1.0]), (2, 2, 2))
