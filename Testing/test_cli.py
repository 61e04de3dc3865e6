"""The command line: success paths and the bad-input contract (one line, exit 2, no traceback,
nothing written outside the output folder, no partial outputs)."""
import gzip
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import SAMPLE_T2, in_full_view, run_cli


def test_info_lists_series_of_the_bundled_sample():
    result = run_cli("info", SAMPLE_T2)
    assert result.returncode == 0, result.stderr
    assert "sagittal" in result.stdout and "T2" in result.stdout
    assert "11 x 585 x 329" in result.stdout and "1.000 x 0.469 x 0.469" in result.stdout


def test_info_json_has_full_affine(phantom_dir):
    result = run_cli("info", phantom_dir / "dicom", "--json")
    assert result.returncode == 0, result.stderr
    series = json.loads(result.stdout)["series"]
    assert len(series) == 5
    assert all(len(s["affine"]) == 4 for s in series)


def test_phantom_command_writes_study_and_truth(tmp_path):
    out = tmp_path / "ph"
    result = run_cli("phantom", "--out", out, "--seed", "7", "--slices", "5", "--top-level", "L1")
    assert result.returncode == 0, result.stderr
    truth = json.loads((out / "ground_truth.json").read_text())
    assert in_full_view(truth["vertebrae"])[0]["level"] == "L1"
    assert (out / "nifti" / "sag_t2.nii.gz").is_file() and (out / "nifti" / "sag_labels.nii.gz").is_file()
    assert len(list((out / "dicom" / "sag_t2").glob("*.dcm"))) == 5
    assert not list(out.glob(".spinecore-partial-*"))
    follow = run_cli("phantom", "--out", tmp_path / "fu", "--seed", "7", "--follow-up")
    assert follow.returncode == 0, follow.stderr
    assert json.loads((tmp_path / "fu" / "ground_truth.json").read_text())["follow_up_years"] == 10


def test_convert_writes_canonical_nifti_with_true_geometry(phantom_dir, tmp_path):
    out = tmp_path / "converted"
    result = run_cli("convert", phantom_dir / "dicom", "--out", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "series.json").read_text())
    assert [s["plane"] for s in summary["series"]] == ["sagittal"]
    image = sitk.ReadImage(str(out / summary["series"][0]["file"]))
    truth = json.loads((phantom_dir / "ground_truth.json").read_text())
    corner = truth["vertebrae"][0]["slices"][0]
    k, j, i = corner["corners_vox"][0]
    assert np.allclose(image.TransformContinuousIndexToPhysicalPoint((i, j, k)), corner["corners_mm"][0], atol=0.01)


# ---------------------------------------------------------------------------------------------
# Bad input: each factory writes a bad input into `root` and returns (path, extra CLI args, name
# that the one-line message must contain).

def _phantom_file(phantom_dir: Path, series="sag_t2") -> Path:
    return sorted((phantom_dir / "dicom" / series).iterdir())[0]


def _edit_dicom(phantom_dir, root, name, edit):
    ds = pydicom.dcmread(_phantom_file(phantom_dir))
    edit(ds)
    path = root / name
    ds.save_as(path)
    return path


def _nifti(root, name, array, spacing=(1.0, 1.0, 1.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    path = root / name
    sitk.WriteImage(image, str(path))
    return path


def bad_text_file(root, ph):
    (root / "notes.txt").write_text("this is not a scan\n")
    return root / "notes.txt", [], "notes.txt"


def bad_empty_file(root, ph):
    (root / "empty.dcm").write_bytes(b"")
    return root / "empty.dcm", [], "empty.dcm"


def bad_truncated_dicom(root, ph):
    data = _phantom_file(ph).read_bytes()
    (root / "cut.dcm").write_bytes(data[: len(data) // 2])
    return root / "cut.dcm", [], "cut.dcm"


def bad_dicom_rows_disagree_with_pixels(root, ph):
    # fewer rows than the pixel data holds: pydicom warns (log line + UserWarning), we fail in one line
    def shrink(ds):
        ds.Rows -= 7
    return _edit_dicom(ph, root, "rows.dcm", shrink), [], "rows.dcm"


def bad_dicom_without_pixels(root, ph):
    return _edit_dicom(ph, root, "nopixels.dcm", lambda ds: delattr(ds, "PixelData")), [], "nopixels.dcm"


def bad_missing_pixel_spacing(root, ph):
    return _edit_dicom(ph, root, "nospacing.dcm", lambda ds: delattr(ds, "PixelSpacing")), [], "nospacing.dcm"


def bad_missing_orientation(root, ph):
    return _edit_dicom(ph, root, "noiop.dcm", lambda ds: delattr(ds, "ImageOrientationPatient")), [], "noiop.dcm"


def bad_duplicate_positions(root, ph):
    folder = root / "dups"
    folder.mkdir()
    shutil.copy(_phantom_file(ph), folder / "a.dcm")
    ds = pydicom.dcmread(_phantom_file(ph))
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / "b.dcm")
    return folder, [], "a.dcm"


def bad_empty_folder(root, ph):
    (root / "nothing").mkdir()
    return root / "nothing", [], "nothing"


def bad_folder_without_dicom(root, ph):
    folder = root / "docs"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    (folder / "table.csv").write_text("a,b\n1,2\n")
    return folder, [], "docs"


def bad_zip_slip(root, ph):
    path = root / "slip.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(_phantom_file(ph), "../../outside.dcm")
    return path, [], "slip.zip"


def bad_zip_absolute(root, ph):
    path = root / "absolute.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("/etc/evil.dcm"), _phantom_file(ph).read_bytes())  # write() strips the "/"
    return path, [], "absolute.zip"


def bad_zip_symlink(root, ph):
    path = root / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link.dcm")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    return path, [], "link.zip"


def bad_zip_over_cap(root, ph):
    path = root / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.dcm", b"\0" * (3 * 1024 * 1024))
    return path, ["--max-archive-mb", "1"], "bomb.zip"


def bad_corrupt_zip(root, ph):
    (root / "broken.zip").write_bytes(b"PK\x03\x04 definitely not a zip")
    return root / "broken.zip", [], "broken.zip"


def bad_zip_without_dicom(root, ph):
    path = root / "texts.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", "hello")
    return path, [], "texts.zip"


def bad_axial_only(root, ph):
    folder = root / "axial_only"
    shutil.copytree(ph / "dicom" / "ax_t2_l4-l5", folder)
    return folder, [], "axial_only"


def bad_nan_volume(root, ph):
    array = np.ones((5, 20, 20), np.float32)
    array[2, 3, 4] = np.nan
    return _nifti(root, "nan.mha", array), [], "nan.mha"  # ITK's NIfTI reader zeroes NaN; MetaImage keeps it


def bad_inf_volume(root, ph):
    array = np.ones((5, 20, 20), np.float32)
    array[0, 0, 0] = np.inf
    return _nifti(root, "inf.nrrd", array), [], "inf.nrrd"


def bad_zero_slice_volume(root, ph):
    raw = root / "zero.raw"
    raw.write_bytes(b"")
    header = root / "zero.mhd"
    header.write_text("ObjectType = Image\nNDims = 3\nDimSize = 20 20 0\nElementSpacing = 1 1 1\n"
                      "ElementType = MET_SHORT\nElementDataFile = zero.raw\n")
    return header, [], "zero.mhd"


def bad_constant_volume(root, ph):
    return _nifti(root, "blank.nii.gz", np.zeros((5, 20, 20), np.int16)), [], "blank.nii.gz"


def bad_truncated_nifti(root, ph):
    data = gzip.compress(b"\0" * 100)  # not even a full header
    (root / "short.nii.gz").write_bytes(data)
    return root / "short.nii.gz", [], "short.nii.gz"


def bad_cut_nifti_gz(root, ph):
    data = (ph / "nifti" / "sag_t2.nii.gz").read_bytes()
    (root / "cut.nii.gz").write_bytes(data[: len(data) // 2])  # header intact, voxel data cut
    return root / "cut.nii.gz", [], "cut.nii.gz"


def bad_cut_nifti(root, ph):
    data = gzip.decompress((ph / "nifti" / "sag_t2.nii.gz").read_bytes())
    (root / "cut.nii").write_bytes(data[: len(data) // 2])
    return root / "cut.nii", [], "cut.nii"


def bad_colour_volume(root, ph):
    image = sitk.GetImageFromArray(np.ones((4, 10, 10, 3), np.uint8), isVector=True)
    path = root / "rgb.nrrd"
    sitk.WriteImage(image, str(path))
    return path, [], "rgb.nrrd"


def bad_4d_volume(root, ph):
    image = sitk.JoinSeries([sitk.GetImageFromArray(np.random.rand(4, 8, 8).astype(np.float32))] * 3)
    path = root / "fmri.nii.gz"
    sitk.WriteImage(image, str(path))
    return path, [], "fmri.nii.gz"


def bad_mha_without_spacing(root, ph):
    raw = root / "nospace.raw"
    raw.write_bytes(np.random.rand(4, 8, 8).astype(np.float32).tobytes())
    header = root / "nospace.mhd"
    header.write_text("ObjectType = Image\nNDims = 3\nDimSize = 8 8 4\nElementType = MET_FLOAT\n"
                      "ElementDataFile = nospace.raw\n")
    return header, [], "nospace.mhd"


def bad_nrrd_without_spacing(root, ph):
    raw = np.random.rand(4, 8, 8).astype(np.float32)
    path = root / "nospace.nrrd"
    path.write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 8 8 4\nendian: little\nencoding: raw\n\n"
                     + raw.tobytes())
    return path, [], "nospace.nrrd"


def bad_missing_path(root, ph):
    return root / "does_not_exist", [], "does_not_exist"


BAD_INPUTS = [f for name, f in sorted(globals().items()) if name.startswith("bad_")]


@pytest.mark.parametrize("factory", BAD_INPUTS, ids=lambda f: f.__name__[4:])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(factory, phantom_dir, tmp_path):
    inputs, work, tmp = tmp_path / "inputs", tmp_path / "work", tmp_path / "tmp"
    for folder in (inputs, work, tmp):
        folder.mkdir()
    path, extra, name = factory(inputs, phantom_dir)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(work)}
    out = work / "out"
    result = run_cli("convert", path, "--out", out, *extra, cwd=work, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("spinecore: error:") and name in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not out.exists()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, set(after) ^ set(before)


def test_at_least_fifteen_kinds_of_bad_input():
    assert len(BAD_INPUTS) >= 15


def test_failure_while_writing_leaves_no_partial_outputs(tmp_path, monkeypatch):
    from spinecore.report import staged_output

    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("user's file")
    with pytest.raises(RuntimeError):
        with staged_output(out) as stage:
            (stage / "half.nii.gz").write_bytes(b"partial")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_unexpected_failure_is_one_line_exit_1(monkeypatch, capsys):
    from spinecore import cli

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nwith a second line")

    monkeypatch.setattr(cli.common, "load_study", broken)
    assert cli.main(["info", "whatever.nii.gz"]) == cli.EXIT_INTERNAL_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spinecore: internal error: RuntimeError")


def test_extract_writes_volumes_that_sit_on_their_structures(tmp_path):
    """`spinecore extract`: every disc and body volume of the sample, each placed in patient space so
    that its centre lies on the structure the localiser found."""
    assert run_cli("localise", SAMPLE_T2, "--out", tmp_path / "loc").returncode == 0
    found = json.loads((tmp_path / "loc" / "vertebrae.json").read_text())
    result = run_cli("extract", SAMPLE_T2, "--out", tmp_path / "x")
    assert result.returncode == 0, result.stderr
    discs = {d["level"]: np.array(d["center_mm"]) for d in found["discs"]}
    assert sorted(p.name for p in (tmp_path / "x" / "discs").iterdir()) == sorted(f"{d}.nii.gz" for d in discs)
    bodies = sorted(p.name for p in (tmp_path / "x" / "vertebrae").iterdir())
    assert bodies == sorted(f"{v['level']}.nii.gz" for v in found["vertebrae"])
    for level, centre in discs.items():
        image = sitk.ReadImage(str(tmp_path / "x" / "discs" / f"{level}.nii.gz"))
        assert image.GetSize() == (224, 112, 9)
        middle = image.TransformContinuousIndexToPhysicalPoint((111.5, 55.5, 4.0))  # (column, row, slice)
        assert np.linalg.norm(np.array(middle) - centre) < 2.0, level


def test_share_options_take_a_number_between_0_and_1():
    import argparse

    from spinecore.cli.common import share

    assert share("0") == 0.0 and share("0.5") == 0.5 and share("1") == 1.0
    for text in ("1.5", "-0.1"):
        with pytest.raises(argparse.ArgumentTypeError, match="between 0 and 1"):
            share(text)


def test_edge_weight_takes_a_finite_number_of_at_least_0():
    import argparse

    from spinecore.cli.common import non_negative_float

    assert non_negative_float("0") == 0.0 and non_negative_float("4") == 4.0
    for text in ("-1", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="finite number of at least 0"):
            non_negative_float(text)


def test_evaluate_localiser_refuses_a_negative_case_count(tmp_path):
    # an argument error before the data pack is read (0 asks for no contact sheet): exit 2, nothing written
    result = run_cli("evaluate-localiser", "--data", tmp_path / "no_pack", "--out", tmp_path / "eval", "--midsag", "-1")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("argument --midsag: must be at least 0"), result.stderr
    assert not (tmp_path / "eval").exists()
