"""Reader contract on phantom DICOM/NIfTI, zips and the bundled real samples."""
import random
import shutil
import zipfile

import numpy as np
import pydicom
import pytest

from conftest import SAMPLE_T2, SAMPLE_THORACOLUMBAR
from spinecore.errors import GeometryError, SeriesNotFoundError, UnsafeArchiveError
from spinecore.io import Plane, Weighting, load_study
from spinecore.io.archive import read_zip_members
from spinecore.io.classify import weighting_from_text, weighting_from_timing
from spinecore.phantom import PhantomSpec, make_phantom, write_phantom


def truth_affine(truth, name):
    return np.array(truth["series"][name]["affine"])


def test_phantom_dicom_reads_back_written_affine_plane_and_weighting(phantom_dir, phantom_truth):
    study = load_study(phantom_dir / "dicom")
    assert len(study.series) == len(phantom_truth["series"])
    expected = {
        "SAG T2 TSE": (Plane.SAGITTAL, Weighting.T2, "sag_t2"),
        "SAG T1 TSE": (Plane.SAGITTAL, Weighting.T1, "sag_t1"),
    }
    for s in study.series:
        if s.description.startswith("AX T2"):
            plane, weighting, name = Plane.AXIAL, Weighting.T2, "ax_t2_" + s.description.split()[-1].lower()
        else:
            plane, weighting, name = expected[s.description]
        assert (s.plane, s.weighting) == (plane, weighting)
        assert s.geometry.axis_codes == plane.canonical_codes
        corners = np.array([[0, 0, 0], list(np.array(s.shape) - 1)])
        written = truth_affine(phantom_truth, name)
        read_mm = s.geometry.vox_to_mm(corners)
        written_mm = corners @ written[:3, :3].T + written[:3, 3]
        assert np.abs(read_mm - written_mm).max() < 0.01
        assert tuple(s.shape) == tuple(phantom_truth["series"][name]["shape"])


def test_nifti_and_dicom_agree_on_ground_truth_corner(phantom_dir, phantom_truth):
    dicom = load_study(phantom_dir / "dicom").sagittal(Weighting.T2)
    nifti = load_study(phantom_dir / "nifti" / "sag_t2.nii.gz").series[0]
    vertebra = phantom_truth["vertebrae"][2]
    quad = vertebra["slices"][len(vertebra["slices"]) // 2]
    for vox, mm in zip(quad["corners_vox"], quad["corners_mm"]):
        assert np.allclose(dicom.geometry.vox_to_mm(vox), mm, atol=0.01)
        assert np.allclose(nifti.geometry.vox_to_mm(vox), mm, atol=0.01)
    assert dicom.shape == nifti.shape
    # DICOM stores int16 with rescale slope/intercept: values agree to within half a step
    slope = float(pydicom.dcmread(next((phantom_dir / "dicom" / "sag_t2").iterdir())).RescaleSlope)
    assert np.abs(dicom.array - nifti.array).max() <= slope / 2 + 1e-3


def test_file_order_and_instance_number_do_not_matter(phantom_dir, tmp_path):
    source = phantom_dir / "dicom" / "sag_t2"
    reference = load_study(source).series[0]
    files = sorted(source.iterdir())
    numbers = list(range(1, len(files) + 1))
    random.Random(1).shuffle(numbers)
    names = [f"x{random.Random(n).randrange(10**6):06d}_{n}.dcm" for n in range(len(files))]
    random.Random(2).shuffle(names)
    for path, number, name in zip(files, numbers, names):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = number
        ds.save_as(tmp_path / name)
    shuffled = load_study(tmp_path).series[0]
    assert np.array_equal(shuffled.array, reference.array)
    assert np.allclose(shuffled.geometry.affine, reference.geometry.affine)


def test_mixed_folder_yields_separate_series(phantom_dir, tmp_path):
    for name in ("sag_t2", "sag_t1", "ax_t2_l4-l5"):
        for path in (phantom_dir / "dicom" / name).iterdir():
            shutil.copy(path, tmp_path / f"{name}_{path.name}")  # one flat folder
    study = load_study(tmp_path)
    kinds = sorted((s.plane.value, s.weighting.value) for s in study.series)
    assert kinds == [("axial", "T2"), ("sagittal", "T1"), ("sagittal", "T2")]
    assert study.sagittal(Weighting.T1).weighting == Weighting.T1
    assert study.sagittal().weighting == Weighting.T2


def test_one_uid_with_two_stacks_is_split(phantom_dir, tmp_path):
    """Two axial stacks sharing a SeriesInstanceUID (per-disc blocks) become two series."""
    uid = None
    for name in ("ax_t2_l4-l5", "ax_t2_l5-s1"):
        for path in (phantom_dir / "dicom" / name).iterdir():
            ds = pydicom.dcmread(path)
            uid = uid or ds.SeriesInstanceUID
            ds.SeriesInstanceUID = uid
            ds.save_as(tmp_path / f"{name}_{path.name}")
    study = load_study(tmp_path)
    assert len(study.series) == 2
    assert {s.uid for s in study.series} == {f"{uid}.1", f"{uid}.2"}
    with pytest.raises(SeriesNotFoundError, match="no sagittal series"):
        study.sagittal()


def test_zip_equals_folder_and_single_file_reads(phantom_dir, tmp_path):
    folder = phantom_dir / "dicom" / "sag_t1"
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, f"nested/dir/{path.name}")
    from_zip, from_folder = load_study(archive).series[0], load_study(folder).series[0]
    assert np.array_equal(from_zip.array, from_folder.array)
    assert np.allclose(from_zip.geometry.affine, from_folder.geometry.affine)
    single = load_study(sorted(folder.iterdir())[0]).series[0]
    assert single.shape[0] == 1 and single.plane == Plane.SAGITTAL


def test_unequal_row_and_column_spacing(tmp_path):
    study = make_phantom(PhantomSpec(seed=11, pixel_spacing_mm=(0.6, 0.85), t1=False, axial=False, n_slices=5))
    write_phantom(study, tmp_path)
    s = load_study(tmp_path / "dicom").series[0]
    assert np.allclose(s.spacing[1:], (0.6, 0.85), atol=1e-6)
    written = np.array(study.truth["scan"]["affine"])
    assert np.allclose(s.geometry.affine, written, atol=1e-4)


def test_zip_member_reading_refuses_traversal_and_caps_size(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../../escape.dcm", "x")
    with pytest.raises(UnsafeArchiveError, match="path traversal"):
        read_zip_members(evil)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\0" * 200_000)
    assert read_zip_members(big, max_total_bytes=300_000)[0][0] == "a.bin"
    with pytest.raises(UnsafeArchiveError, match="cap"):
        read_zip_members(big, max_total_bytes=100_000)


def test_missing_pixel_spacing_is_a_geometry_error(phantom_dir, tmp_path):
    path = sorted((phantom_dir / "dicom" / "sag_t2").iterdir())[0]
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    ds.save_as(tmp_path / "a.dcm")
    with pytest.raises(GeometryError, match="PixelSpacing"):
        load_study(tmp_path / "a.dcm")


def test_bundled_real_sample_loads_as_sagittal_with_its_spacing():
    s = load_study(SAMPLE_T2).series[0]
    assert s.plane == Plane.SAGITTAL and s.weighting == Weighting.T2
    assert s.shape == (11, 585, 329)
    assert np.allclose(s.spacing, (1.0, 0.46875, 0.46875))
    assert s.geometry.axis_codes == ("R", "I", "P")


def test_thoracolumbar_sample_in_ras_file_order_is_reoriented():
    s = load_study(SAMPLE_THORACOLUMBAR).series[0]
    assert s.plane == Plane.SAGITTAL
    assert s.geometry.axis_codes == ("R", "I", "P")
    # rows run head → feet: the row axis points to patient inferior (−z in LPS)
    assert s.geometry.directions[2, 1] < -0.9


@pytest.mark.parametrize("text, expected", [
    ("SAG T2 TSE", Weighting.T2), ("t1_tse_sag", Weighting.T1), ("sag_STIR", Weighting.STIR),
    ("T2_TIRM_SAG", Weighting.STIR), ("123_t2_SPACE", Weighting.T2), ("localizer", Weighting.UNKNOWN),
    ("T1 and T2 survey", Weighting.UNKNOWN), ("DT1X", Weighting.UNKNOWN),
])
def test_weighting_from_text(text, expected):
    assert weighting_from_text(text) == expected


def test_weighting_from_timing():
    assert weighting_from_timing(3500, 100, None, False) == Weighting.T2
    assert weighting_from_timing(500, 10, None, False) == Weighting.T1
    assert weighting_from_timing(4000, 60, 150, True) == Weighting.STIR
    assert weighting_from_timing(9000, 90, 2500, True) == Weighting.T2  # FLAIR-like TI is not STIR
    assert weighting_from_timing(None, None, None, False) == Weighting.UNKNOWN


@pytest.mark.parametrize("codes", [("R", "I", "P"), ("L", "I", "P"), ("R", "I", "A"), ("R", "P", "I")])
def test_any_acquisition_order_reads_back_canonical(tmp_path, codes):
    from spinecore.geometry import Geometry, rotation_matrix
    from spinecore.io.write import DicomSeriesInfo, write_dicom_series

    directions = rotation_matrix((0.2, 1.0, 0.1), 6) @ np.stack([[-1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]], axis=1)
    canonical = Geometry.from_parts((30.0, -80.0, 120.0), (4.0, 0.7, 0.9), directions, (4, 12, 10))
    array = np.random.default_rng(0).integers(0, 1000, canonical.shape).astype(np.float32)
    acquired, geometry = canonical.reorient(array, codes)
    info = DicomSeriesInfo(patient_id="P", study_uid="1.2.3", series_uid="1.2.3.4", frame_of_reference_uid="1.2.3.5",
                           series_number=1, description="SAG T2", rescale_slope=0.5, rescale_intercept=-100)
    write_dicom_series(tmp_path, acquired, geometry, info, uid_seed="x")
    s = load_study(tmp_path).series[0]
    assert np.array_equal(s.array, array)
    assert np.abs(s.geometry.affine - canonical.affine).max() < 1e-4


def test_find_studies_tells_one_study_from_a_folder_of_studies(phantom_dir, tmp_path):
    from spinecore.errors import InputError
    from spinecore.io import find_studies

    # one DICOM study stored as one subfolder per series is still one study
    assert find_studies(phantom_dir / "dicom") == [phantom_dir / "dicom"]
    cohort = tmp_path / "cohort"
    shutil.copytree(phantom_dir / "dicom", cohort / "patient_a")
    second = tmp_path / "second"
    write_phantom(make_phantom(PhantomSpec(seed=4)), second)
    shutil.copytree(second / "dicom", cohort / "patient_b")
    shutil.copy(SAMPLE_T2, cohort / "sample.nii.gz")
    (cohort / ".DS_Store").write_bytes(b"")
    assert find_studies(cohort) == [cohort / "sample.nii.gz", cohort / "patient_a", cohort / "patient_b"]
    assert find_studies(cohort / "sample.nii.gz") == [cohort / "sample.nii.gz"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        find_studies(tmp_path / "empty")


def test_a_study_s_own_t1_is_the_one_that_shares_the_t2_s_space():
    import dataclasses

    from spinecore.geometry import Geometry
    from spinecore.io import Study, companion_series

    phantom = make_phantom(PhantomSpec(seed=6, n_slices=3, axial=False))
    t2, t1 = phantom.get("sag_t2").to_series("t2"), phantom.get("sag_t1").to_series("t1")
    affine = t1.geometry.affine.copy()
    affine[:3, 3] += (0.0, 0.0, 600.0)  # a whole-spine study's cervical T1: 60 cm higher
    cervical = dataclasses.replace(t1, geometry=Geometry(affine, t1.geometry.shape), uid="cervical")
    assert companion_series(Study("s", (t2, cervical, t1)), t2) == (t1, [])
    assert companion_series(Study("s", (t2, cervical)), t2) == (None, [])  # nothing of the T2's space: no partner
