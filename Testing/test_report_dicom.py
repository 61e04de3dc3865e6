"""``spinecore grade --dicom-out``: the DICOM SEG and SR read back with highdicom, their geometry
against the source frames, and the one-line errors."""
import csv
import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from spinecore import cli
from spinecore.io import load_study
from spinecore.io.write import DicomSeriesInfo, write_dicom_series
from spinecore.localise import Localiser, structure_masks
from spinecore.localise.spine import INFERRED_VERTEBRA
from spinecore.report.dicom import INTERVERTEBRAL_DISC, SCHEME, VERTEBRAL_BODY, segmentation
from spinecore.report.gradings import FLAG_SEPARATOR, MEASUREMENTS

from conftest import run_cli


@pytest.fixture(scope="module")
def graded(phantom_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dicom_out") / "out"
    result = run_cli("grade", phantom_dir / "dicom", "--out", out, "--no-tta", "--dicom-out")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return out


def _sources(folder: Path) -> dict[str, pydicom.Dataset]:
    return {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm"))}


def _assert_on_masks(seg: hd.seg.Segmentation, sources: dict[str, pydicom.Dataset], series, masks: dict) -> None:
    """Every SEG frame, placed by its referenced source image, equals the canonical mask there."""
    labels = {d.SegmentNumber: d.SegmentLabel for d in seg.SegmentSequence}
    shared = seg.SharedFunctionalGroupsSequence[0]
    orientation = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    row_spacing, column_spacing = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    rows, columns = np.mgrid[:int(seg.Rows), :int(seg.Columns)]
    counts = dict.fromkeys(masks, 0)
    for frame, pixels in zip(seg.PerFrameFunctionalGroupsSequence, seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)):
        source = sources[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        origin = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, float)
        np.testing.assert_allclose(origin, np.array(source.ImagePositionPatient, float), atol=1e-3)
        points = origin + rows[..., None] * orientation[3:] * row_spacing + columns[..., None] * orientation[:3] * column_spacing
        index = np.rint(series.geometry.mm_to_vox(points)).astype(int)
        label = labels[frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber]
        expected = masks[label][index[..., 0], index[..., 1], index[..., 2]]
        np.testing.assert_array_equal(pixels.astype(bool), expected)
        counts[label] += int(expected.sum())
    assert counts == {name: int(mask.sum()) for name, mask in masks.items()}  # no voxel left out


def test_seg_has_one_segment_per_structure_on_the_source_frames(graded, phantom_dir):
    assert {"seg.dcm", "sr.dcm"} <= {p.name for p in graded.iterdir()}
    seg = hd.seg.segread(graded / "seg.dcm")
    bodies = [v["level"] for v in json.loads((graded / "vertebrae.json").read_text())["vertebrae"]]
    with (graded / "gradings.csv").open() as f:
        discs = [r["level"] for r in csv.DictReader(f)]
    kinds = {d.SegmentLabel: d.SegmentedPropertyTypeCodeSequence[0].CodeValue for d in seg.SegmentSequence}
    assert sorted(kinds) == sorted(bodies + discs)
    assert {kinds[b] for b in bodies} == {VERTEBRAL_BODY.value} and {kinds[d] for d in discs} == {INTERVERTEBRAL_DISC.value}
    series = load_study(phantom_dir / "dicom").sagittal()
    sources = _sources(phantom_dir / "dicom")
    assert seg.FrameOfReferenceUID == series.dicom[0].FrameOfReferenceUID
    assert {r.SeriesInstanceUID for r in seg.ReferencedSeriesSequence} == {series.dicom[0].SeriesInstanceUID}
    _assert_on_masks(seg, sources, series, structure_masks(Localiser.load(None)(series)))


def test_seg_maps_back_through_flipped_and_transposed_source_axes(phantom_dir, tmp_path):
    """Source images stored left-ward, posterior rows, superior columns: the reader permutes and
    flips them into canonical order; the SEG frames must still land on the source pixels."""
    canonical = load_study(phantom_dir / "dicom").sagittal()
    array, geometry = canonical.geometry.reorient(canonical.array, ("L", "P", "S"))
    info = DicomSeriesInfo(patient_id="Flip^Test", study_uid=pydicom.uid.generate_uid(), series_uid=pydicom.uid.generate_uid(),
                           frame_of_reference_uid=pydicom.uid.generate_uid(), series_number=1, description="sag t2",
                           study_date="20200101", repetition_time_ms=3500.0, echo_time_ms=105.0,
                           rescale_slope=1.0, rescale_intercept=0.0)
    write_dicom_series(tmp_path / "flipped", array, geometry, info, uid_seed="flip")
    series = load_study(tmp_path / "flipped").sagittal()
    assert series.geometry.axis_codes == ("R", "I", "P")
    spine = Localiser.load(None)(series)
    seg = hd.seg.Segmentation.from_dataset(segmentation(series, spine))
    _assert_on_masks(seg, _sources(tmp_path / "flipped"), series, structure_masks(spine))


def test_sr_holds_the_gradings_measurements_and_flags(graded, phantom_dir):
    sr = hd.sr.srread(graded / "sr.dcm")
    with (graded / "gradings.csv").open() as f:
        rows = list(csv.DictReader(f))
    groups = sr.content.get_image_measurement_groups()
    assert [str(g.tracking_identifier) for g in groups] == [r["level"] for r in rows]
    sources = _sources(phantom_dir / "dicom")
    series = load_study(phantom_dir / "dicom").sagittal()
    mid_slices = [d["slice"] for d in json.loads((graded / "gradings.json").read_text())["discs"]]
    for group, row, mid in zip(groups, rows, mid_slices):
        evaluations = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
        flags = [e.value.value for e in group.get_qualitative_evaluations() if e.name.value == "qc_flag"]
        assert flags == [f for f in row["flags"].split(FLAG_SEPARATOR) if f]
        for code in evaluations.values():
            assert code.scheme_designator == SCHEME
        graded_values = {k: v.value.split(":")[1] for k, v in evaluations.items() if k != "qc_flag"}
        assert graded_values == {k: row[k] for k in graded_values} and len(graded_values) == (len(row) - 2 - len(MEASUREMENTS)) // 2
        measured = {m.name.value: (m.value, m.unit.value) for m in group.get_measurements()}
        if row["middle_height_mm"]:
            assert {name: measured[name][0] for name in MEASUREMENTS} == pytest.approx(
                {name: float(row[name]) for name in MEASUREMENTS})
            assert measured["middle_height_mm"][1] == "mm" and measured["slip_percent"][1] == "%"
        else:  # a disc next to an inferred body is not measured
            assert not set(MEASUREMENTS) & set(measured) and INFERRED_VERTEBRA in flags
        [image] = group.source_images  # the disc's mid slice
        position = np.array(sources[image.referenced_sop_instance_uid].ImagePositionPatient, float)
        assert np.rint(series.geometry.mm_to_vox(position)[0]) == mid
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert {i.ReferencedSOPInstanceUID for i in evidence.ReferencedSOPSequence} <= set(sources)


def test_dicom_out_needs_dicom_input(phantom_dir, tmp_path):
    volume = phantom_dir / "nifti" / "sag_t2.nii.gz"
    result = run_cli("grade", volume, "--out", tmp_path / "out", "--dicom-out")
    assert result.returncode == 2
    assert result.stderr == f"spinecore: error: {volume}: --dicom-out needs DICOM input\n"
    assert not (tmp_path / "out").exists()


def test_dicom_out_without_highdicom_names_the_extra(phantom_dir, tmp_path, monkeypatch, capsys):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "highdicom" else find_spec(name, *a))
    assert cli.main(["grade", str(phantom_dir / "dicom"), "--out", str(tmp_path / "out"), "--dicom-out"]) == 2
    assert capsys.readouterr().err == "spinecore: error: --dicom-out needs highdicom: pip install 'spinecore[dicom]'\n"
    assert not (tmp_path / "out").exists()


def test_batch_worker_writes_dicom_out_and_fails_a_non_dicom_study(phantom_dir, tmp_path, monkeypatch):
    import torch

    from spinecore.batch import worker

    monkeypatch.setattr(worker, "torch_threads", lambda slots: torch.get_num_threads())  # no Dask worker here
    assert worker.grade_study(phantom_dir / "dicom", tmp_path / "dicom", {"tta": False}, (None, None), {}, dicom_out=True) is None
    assert {"seg.dcm", "sr.dcm"} <= {p.name for p in (tmp_path / "dicom").iterdir()}
    volume = phantom_dir / "nifti" / "sag_t2.nii.gz"
    reason = worker.grade_study(volume, tmp_path / "volume", {"tta": False}, (None, None), {}, dicom_out=True)
    assert reason == f"{volume}: --dicom-out needs DICOM input" and not (tmp_path / "volume").exists()
