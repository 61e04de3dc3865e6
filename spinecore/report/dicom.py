"""DICOM results of a DICOM series: ``seg.dcm``, a DICOM SEG with one segment per vertebral body and
disc, and ``sr.dcm``, a TID 1500 measurement report with the grades, measurements and QC flags of
every graded disc. Both reference the source series (its instances and frame of reference)."""
from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from spinecore import __version__
from spinecore.errors import GeometryError
from spinecore.grade.grader import Gradings
from spinecore.io.dicom import silenced
from spinecore.io.series import Series
from spinecore.localise import structure_masks
from spinecore.localise.spine import Spine
from spinecore.report.gradings import FLAG_SEPARATOR, disc_rows

#: SNOMED CT body structures: the segment types (no name for them in pydicom's code dictionary).
VERTEBRAL_BODY = Code("280717001", "SCT", "Vertebral body")
INTERVERTEBRAL_DISC = Code("360499006", "SCT", "Intervertebral disc")
#: Private coding scheme for what has no standard code: grading tasks, grades, measurements, QC flags.
SCHEME = "99SPINECORE"
QC_FLAG = Code("qc_flag", SCHEME, "Quality control flag")
#: DiscMeasurements field → (meaning, UCUM unit) of its numeric measurement.
MEASURED = {
    "anterior_height_mm": ("Anterior disc height", codes.UCUM.Millimeter),
    "middle_height_mm": ("Middle disc height", codes.UCUM.Millimeter),
    "posterior_height_mm": ("Posterior disc height", codes.UCUM.Millimeter),
    "height_index": ("Disc height index", codes.UCUM.NoUnits),
    "slip_mm": ("Slip", codes.UCUM.Millimeter),
    "slip_percent": ("Slip of the lower endplate depth", codes.UCUM.Percent),
}
#: CodeMeaning is a DICOM LO: at most 64 characters (a scheme's task descriptions may be longer).
MEANING_CHARACTERS = 64
#: Series numbers of the derived series: high, so viewers list them after the source series.
SEG_SERIES_NUMBER, SR_SERIES_NUMBER = 9901, 9902
#: Manufacturer (and model name) of the derived objects.
MANUFACTURER = "spinecore"
#: Patient and study attributes the derived objects copy from the source (type 2: present, empty when unknown).
COPIED_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate", "StudyTime",
                "AccessionNumber", "ReferringPhysicianName")
#: Loggers whose records are folded away while DICOM objects are built.
_LOGGERS = ("pydicom", "highdicom")


def _algorithm() -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(name=MANUFACTURER, version=__version__,
                                              family=codes.cid7162.ArtificialIntelligence)


def _equipment() -> dict:
    return {"manufacturer": MANUFACTURER, "manufacturer_model_name": MANUFACTURER, "software_versions": __version__,
            "device_serial_number": "none"}


def _sources(series: Series) -> list[pydicom.Dataset]:
    """The source headers, with any missing :data:`COPIED_TYPE2` attribute present and empty."""
    sources = []
    for header in series.dicom:
        source = pydicom.Dataset(dict(header.items()))
        source.file_meta = header.file_meta
        for keyword in COPIED_TYPE2:
            if keyword not in source:
                setattr(source, keyword, "")
        sources.append(source)
    return sources


def _source_slice(series: Series, header: pydicom.Dataset) -> int:
    """The index, in ``series.array``, of the slice a source image ``header`` holds."""
    index = series.geometry.mm_to_vox(np.array(header.ImagePositionPatient, float))[0]
    return int(np.rint(index))


def _on_source_grid(series: Series, header: pydicom.Dataset, stacked: np.ndarray) -> np.ndarray:
    """``stacked`` ``(slice, row, column, segment)`` sampled on the pixel grid of the source image
    ``header``: ``(rows, columns, segment)``. The reader only permuted or flipped axes, so every
    pixel centre lands on a voxel centre."""
    orientation = np.array(header.ImageOrientationPatient, float)
    row_spacing, column_spacing = (float(v) for v in header.PixelSpacing)
    rows, columns = np.mgrid[:int(header.Rows), :int(header.Columns)]
    points = (np.array(header.ImagePositionPatient, float) + rows[..., None] * orientation[3:] * row_spacing
              + columns[..., None] * orientation[:3] * column_spacing)
    index = series.geometry.mm_to_vox(points)
    voxel = np.rint(index).astype(int)
    if np.abs(index - voxel).max() > 1e-2 or np.any(voxel < 0) or np.any(voxel >= series.shape):
        raise GeometryError(series.source, f"source image {header.SOPInstanceUID} is off the series grid")
    return stacked[voxel[..., 0], voxel[..., 1], voxel[..., 2]]


def segmentation(series: Series, spine: Spine) -> hd.seg.Segmentation:
    """A BINARY DICOM SEG of the vertebral bodies and discs of ``spine``, one segment per structure
    labelled by its level, on the pixel grid of the source images."""
    masks = structure_masks(spine)
    stacked = np.stack(list(masks.values()), axis=-1)
    sources = _sources(series)
    frames = np.stack([_on_source_grid(series, h, stacked) for h in sources])
    bodies = set(spine.levels)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=name, segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=VERTEBRAL_BODY if name in bodies else INTERVERTEBRAL_DISC,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=_algorithm(),
        tracking_id=name, tracking_uid=hd.UID()) for n, name in enumerate(masks, start=1)]
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, series_description="spinecore vertebrae and discs",
        **_equipment())


def _concept(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value, SCHEME, meaning[:MEANING_CHARACTERS])


def _disc_group(row: dict, gradings: Gradings, source: pydicom.Dataset) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The measurement group of one graded disc (a :func:`~spinecore.report.gradings.disc_rows` row)."""
    evaluations = [hd.sr.QualitativeEvaluation(_concept(task.name, task.description or task.name),
                                               _concept(f"{task.name}:{row[task.name]}",
                                                        f"{task.description or task.name}: {row[task.name]}"))
                   for task in gradings.scheme.tasks]
    flags = [f for f in row["flags"].split(FLAG_SEPARATOR) if f]
    evaluations += [hd.sr.QualitativeEvaluation(QC_FLAG, _concept(flag, flag)) for flag in flags]
    measurements = [hd.sr.Measurement(_concept(name, meaning), float(row[name]), unit)
                    for name, (meaning, unit) in MEASURED.items() if row[name] is not None]
    measurements += [hd.sr.Measurement(_concept(f"{task}_confidence", f"{task} confidence"),
                                       float(row[f"{task}_confidence"]), codes.UCUM.NoUnits)
                     for task in gradings.scheme.task_names]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=row["level"]),
        finding_type=INTERVERTEBRAL_DISC, finding_sites=[hd.sr.FindingSite(codes.SCT.LumbarSpine)],
        algorithm_id=hd.sr.AlgorithmIdentification(name=MANUFACTURER, version=__version__),
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
        measurements=measurements, qualitative_evaluations=evaluations)


def measurement_report(series: Series, spine: Spine, gradings: Gradings) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 measurement report: one group per graded disc, referencing its mid slice."""
    by_slice = {_source_slice(series, h): h for h in series.dicom}
    discs = {d.level: d for d in spine.discs}
    groups = [_disc_group(row, gradings, by_slice[discs[row["level"]].slice]) for row in disc_rows(gradings, spine)]
    observer = hd.sr.ObserverContext(observer_type=codes.DCM.Device,
                                     observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                                         uid=hd.UID(), name=MANUFACTURER))
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=observer),
                                     procedure_reported=codes.SCT.ImagingProcedure, imaging_measurements=groups)
    return hd.sr.Comprehensive3DSR(
        evidence=_sources(series), content=report, series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        series_description="spinecore disc gradings", is_complete=True)


def write_dicom(series: Series, spine: Spine, gradings: Gradings, paths: tuple[Path, Path]) -> tuple[Path, Path]:
    """The DICOM SEG and SR into ``paths`` (library warnings folded away)."""
    with silenced(*_LOGGERS):
        documents = (segmentation(series, spine), measurement_report(series, spine, gradings))
        for document, path in zip(documents, paths):
            document.save_as(path)
    return paths
