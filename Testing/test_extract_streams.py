"""Disc volumes of the other streams: sagittal T1 in the T2 volume's frame, axial volumes (thesis 6.1.1, 6.2.1)."""
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from spinecore.errors import StreamError
from spinecore.extract import disc_volumes
from spinecore.extract.streams import AXIAL_SHAPE, axial_disc_volumes, t1_disc_volumes
from spinecore.geometry import Geometry
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.phantom.render import LABELS

#: The T1 on its own grid: rotated 7° about an oblique axis, shifted, other slice and pixel spacings.
MOVED_T1 = {"t1_rotation_deg": 7.0, "t1_shift_mm": (3.0, -6.0, 9.0), "t1_spacing_mm": (3.1, 0.8, 0.7)}


@pytest.fixture(scope="module")
def moved():
    study = make_phantom(PhantomSpec(seed=3, axial=False, **MOVED_T1))
    t2 = study.get("sag_t2").to_series("t2.nii.gz")
    spine = study.reference_spine()
    return study, t2, spine, disc_volumes(t2, spine)


@pytest.fixture(scope="module")
def with_axials():
    study = make_phantom(PhantomSpec(seed=5, t1=False))
    return study, study.get("sag_t2").to_series("t2.nii.gz"), study.reference_spine()


def _mid_slice_disc_centre(labels: np.ndarray, to_scan: np.ndarray, level: str, shape) -> np.ndarray:
    """(row, col) centroid of the disc's label on a volume's middle slice, sampled through ``to_scan``."""
    rows, cols = np.mgrid[0:shape[1], 0:shape[2]].astype(float)
    grid = np.stack([np.full(rows.size, (shape[0] - 1) / 2), rows.ravel(), cols.ravel()])
    inside = ndimage.map_coordinates((labels == LABELS[level]).astype(np.float32),
                                     to_scan[:3, :3] @ grid + to_scan[:3, 3:4], order=1, cval=0.0)
    return (grid[1:] * inside).sum(1) / inside.sum()


def test_t1_on_another_grid_and_pose_lands_on_the_t2_anatomy(moved):
    study, t2, spine, volumes = moved
    t1 = study.get("sag_t1")
    assert t1.geometry.shape != t2.geometry.shape
    found = t1_disc_volumes(t1.to_series("t1.nii.gz"), volumes, spine, t2)
    assert sorted(found) == sorted(v.level for v in volumes)
    naive_errors = []
    for volume in volumes:
        t1_volume = found[volume.level]
        assert t1_volume.array.shape == volume.array.shape and t1_volume.array.dtype == np.float32
        assert 0.0 <= t1_volume.array.min() and t1_volume.array.max() <= 1.0 and t1_volume.present[4]
        assert np.allclose(t1_volume.to_mm, volume.to_mm)  # the same LPS position per volume voxel
        t2_centre = _mid_slice_disc_centre(study.labels, volume.to_scan, volume.level, volume.array.shape)
        t1_centre = _mid_slice_disc_centre(t1.labels, t1_volume.to_scan, volume.level, volume.array.shape)
        assert np.all(np.abs(t1_centre - t2_centre) <= 1.0), f"{volume.level}: {t1_centre} vs {t2_centre}"
        # assuming pixel alignment (the T2 volume's map on the T1's voxels) would miss the disc by far
        naive = _mid_slice_disc_centre(t1.labels, volume.to_scan, volume.level, volume.array.shape)
        naive_errors.append(np.abs(naive - t2_centre).max())
    assert min(naive_errors) > 10.0


def test_t1_bodies_are_normalised_like_the_t2(moved):
    study, t2, spine, volumes = moved
    found = t1_disc_volumes(study.get("sag_t1").to_series("t1.nii.gz"), volumes, spine, t2)
    middle = found["L4-L5"].array[4]
    bodies = np.concatenate([middle[:12, 90:130].ravel(), middle[-12:, 90:130].ravel()])
    assert abs(np.median(bodies) - 0.5) < 0.1


def test_t1_of_another_geometry_is_a_one_line_error(moved):
    _, t2, spine, volumes = moved
    other = make_phantom(PhantomSpec(seed=8, axial=False)).get("sag_t1")
    shifted = other.geometry.affine.copy()
    shifted[:3, 3] += (0.0, 0.0, 400.0)  # another patient, placed elsewhere in the scanner
    t1 = replace(other.to_series("other_t1.nii.gz"), geometry=Geometry(shifted, other.geometry.shape))
    with pytest.raises(StreamError) as error:
        t1_disc_volumes(t1, volumes, spine, t2)
    assert "other_t1.nii.gz" in str(error.value) and "\n" not in str(error.value)


def test_t1_of_another_patient_id_is_refused(moved):
    study, t2, spine, volumes = moved
    t1 = replace(study.get("sag_t1").to_series("t1"), metadata={"PatientID": "B"})
    with pytest.raises(StreamError, match="PatientID"):
        t1_disc_volumes(t1, volumes, spine, replace(t2, metadata={"PatientID": "A"}))


def test_axial_volume_holds_the_disc(with_axials):
    study, t2, spine = with_axials
    axials = [s for s in study.series if s.name.startswith("ax_")]
    found = axial_disc_volumes([s.to_series(s.name) for s in axials], spine, [d.level for d in spine.discs], t2)
    assert sorted(found) == sorted(s.description.split()[-1] for s in axials)
    for level, volume in found.items():
        source = next(s for s in axials if s.description.endswith(level))
        assert np.allclose(volume.scan_affine, source.geometry.affine)  # cut from the series that holds the disc
        assert volume.array.shape == AXIAL_SHAPE and volume.present.all()
        index = np.indices(AXIAL_SHAPE).reshape(3, -1).T
        labels = ndimage.map_coordinates(source.labels, volume.scan_index(index).T, order=0).reshape(AXIAL_SHAPE)
        disc = labels[1] == LABELS[level]
        assert disc[112, 112]  # the centre of the mid-axial slice is disc
        rows, cols = np.nonzero(disc)
        assert abs(rows.mean() - 111.5) < 8 and abs(cols.mean() - 111.5) < 8
        # the box is twice the anterior-posterior distance of the endplate corners: the whole disc, a
        # bulge included, is inside, spanning about half the rows
        assert rows.min() > 0 and rows.max() < AXIAL_SHAPE[1] - 1 and cols.min() > 0 and cols.max() < AXIAL_SHAPE[2] - 1
        assert 0.4 < (rows.max() - rows.min()) / AXIAL_SHAPE[1] < 0.75
        # the map back to mm: the volume centre is the disc centre (within a slice's distance)
        centre = volume.to_mm @ np.array([1.0, 111.5, 111.5, 1.0])
        truth = next(d for d in study.truth["discs"] if d["level"] == level)
        assert np.linalg.norm(centre[:3] - truth["center_mm"]) < 3.0


def test_axial_streams_refuse_a_non_axial_series_and_skip_discs_out_of_the_slab(with_axials):
    study, t2, spine = with_axials
    with pytest.raises(StreamError, match="not an axial"):
        axial_disc_volumes([t2], spine, ["L4-L5"], t2)
    l5 = next(s for s in study.series if s.name == "ax_t2_l5-s1").to_series("ax.nii.gz")
    assert list(axial_disc_volumes([l5], spine, [d.level for d in spine.discs], t2)) == ["L5-S1"]
