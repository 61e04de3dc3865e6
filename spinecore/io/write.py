"""Writing image series: DICOM (MR Image Storage, one file per slice) and volume files.

Only the phantom and the result writers in :mod:`spinecore.report` call these.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import DS

from spinecore.geometry import Geometry


def write_volume(path: Path, array: np.ndarray, geometry: Geometry) -> Path:
    """Write ``array`` (laid out by ``geometry``) as NIfTI / NRRD / MHA, chosen by suffix."""
    sitk.WriteImage(geometry.to_sitk(array), str(path), useCompression=True)
    return path


@dataclass
class DicomSeriesInfo:
    """Header values shared by every slice of a written series."""

    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_number: int
    description: str
    study_date: str = "20260101"
    repetition_time_ms: float = 3000.0
    echo_time_ms: float = 100.0
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0


def _ds_list(values) -> list[DS]:
    return [DS(float(v), auto_format=True) for v in values]


def write_dicom_series(folder: Path, array: np.ndarray, geometry: Geometry, info: DicomSeriesInfo,
                       uid_seed: str) -> list[Path]:
    """Write one DICOM file per slice of ``array`` (shape (slices, rows, columns)).

    Pixel values are stored as int16 with ``info.rescale_slope``/``rescale_intercept``.
    SOP instance UIDs derive from ``uid_seed`` so output is reproducible.
    """
    folder.mkdir(parents=True, exist_ok=True)
    directions = geometry.directions
    row_cosine, column_cosine = directions[:, 2], directions[:, 1]
    stored = np.rint((array - info.rescale_intercept) / info.rescale_slope)
    stored = np.clip(stored, -32768, 32767).astype(np.int16)
    paths = []
    for k in range(array.shape[0]):
        sop_uid = generate_uid(entropy_srcs=[uid_seed, info.series_uid, str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
        ds.Modality = "MR"
        ds.PatientID = ds.PatientName = info.patient_id
        ds.StudyInstanceUID, ds.SeriesInstanceUID = info.study_uid, info.series_uid
        ds.FrameOfReferenceUID = info.frame_of_reference_uid
        ds.StudyDate = ds.SeriesDate = info.study_date
        ds.SeriesNumber, ds.InstanceNumber = info.series_number, k + 1
        ds.SeriesDescription = ds.ProtocolName = info.description
        ds.ScanningSequence = "SE"
        ds.RepetitionTime, ds.EchoTime = DS(info.repetition_time_ms), DS(info.echo_time_ms)
        ds.ImageOrientationPatient = _ds_list(np.concatenate([row_cosine, column_cosine]))
        ds.ImagePositionPatient = _ds_list(geometry.vox_to_mm([k, 0, 0]))
        ds.PixelSpacing = _ds_list([geometry.spacing[1], geometry.spacing[2]])
        ds.SliceThickness = DS(geometry.spacing[0], auto_format=True)
        ds.SpacingBetweenSlices = DS(geometry.spacing[0], auto_format=True)
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = DS(info.rescale_slope), DS(info.rescale_intercept)
        ds.PixelData = stored[k].tobytes()
        path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
