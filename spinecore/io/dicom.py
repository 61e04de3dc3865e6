"""DICOM reading: datasets → series split by SeriesInstanceUID and stack, sorted along the
slice normal (never by InstanceNumber), rescaled, with the exact index → LPS affine."""
from __future__ import annotations

import io
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from spinecore.errors import GeometryError, InputError, brief
from spinecore.geometry import MAX_POSITION_MM, Geometry
from spinecore.io.classify import weighting_from_text, weighting_from_timing
from spinecore.io.series import Plane, Series, Weighting


_SPACING_TOLERANCE = 0.1  # relative deviation of a slice gap before a stack is split
_ORIENTATION_DECIMALS = 3
_PIXEL_DATA = pydicom.tag.Tag("PixelData")


@dataclass
class DicomImage:
    """One single-frame DICOM image and where it came from (a path or ``zip!member``)."""

    label: str
    dataset: pydicom.Dataset


def read_dataset(label: str, data: bytes | Path) -> pydicom.Dataset | None:
    """Parse one file; ``None`` if it is not DICOM at all, an error if it is broken DICOM."""
    fp = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with silenced():  # e.g. "expected implicit VR, but found explicit VR": pydicom copes, the user need not know
            return pydicom.dcmread(fp)
    except InvalidDicomError:
        return None
    except Exception as exc:  # pydicom raises many types for truncated/corrupt files
        raise InputError(label, f"truncated or corrupt DICOM file ({brief(exc)})") from None


def image_or_none(label: str, ds: pydicom.Dataset) -> DicomImage | None:
    """Wrap ``ds`` if it is an image (has pixel data); ``None`` for DICOMDIR, reports..."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        return None
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(label, "multi-frame (enhanced) DICOM is not supported; export single-frame images")
    return DicomImage(label, ds)


def _floats(image: DicomImage, keyword: str, tag: str, count: int) -> np.ndarray:
    value = image.dataset.get(keyword)
    try:
        values = np.array([float(v) for v in value], float)
    except (TypeError, ValueError):
        values = np.array([])
    if values.size != count or not np.all(np.isfinite(values)):
        raise GeometryError(image.label, f"missing or invalid {keyword} {tag}; cannot place the image in millimetres")
    return values


def _position(image: DicomImage) -> np.ndarray:
    """ImagePositionPatient ``(3,)`` in LPS mm, checked within :data:`MAX_POSITION_MM` of the origin."""
    position = _floats(image, "ImagePositionPatient", "(0020,0032)", 3)
    if np.abs(position).max() > MAX_POSITION_MM:
        raise GeometryError(image.label, f"ImagePositionPatient (0020,0032) lies more than {MAX_POSITION_MM:g} mm "
                                         "from the scanner's origin; the header is wrong")
    return position


def _number(ds: pydicom.Dataset, keyword: str) -> float | None:
    try:
        value = float(ds.get(keyword))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _orientation(image: DicomImage) -> np.ndarray:
    """ImageOrientationPatient: the row and column direction cosines ``(6,)``, checked orthonormal."""
    orientation = _floats(image, "ImageOrientationPatient", "(0020,0037)", 6)
    if abs(np.linalg.norm(np.cross(orientation[:3], orientation[3:])) - 1) > 1e-2:
        raise GeometryError(image.label, "ImageOrientationPatient (0020,0037) is not two orthogonal unit vectors")
    return orientation


def _stack_key(image: DicomImage) -> tuple:
    ds = image.dataset
    orientation = _orientation(image)
    spacing = _floats(image, "PixelSpacing", "(0028,0030)", 2)
    if np.any(spacing <= 0):
        raise GeometryError(image.label, f"PixelSpacing (0028,0030) must be positive, got {spacing.tolist()}")
    return (
        str(ds.get("SeriesInstanceUID", "")),
        tuple(np.round(orientation, _ORIENTATION_DECIMALS)),
        int(ds.get("Rows", 0)), int(ds.get("Columns", 0)),
        tuple(np.round(spacing, 4)),
        _number(ds, "EchoTime"),
    )


def _runs(positions: np.ndarray) -> list[slice]:
    """Split sorted slice positions into runs of uniform spacing."""
    runs, start = [], 0
    for n in range(1, len(positions)):
        gap = positions[n] - positions[n - 1]
        if n - start >= 2:
            expected = positions[start + 1] - positions[start]
            if abs(gap - expected) > _SPACING_TOLERANCE * expected + 1e-3:
                runs.append(slice(start, n))
                start = n
    runs.append(slice(start, len(positions)))
    return runs


@contextmanager
def silenced(*loggers: str) -> Iterator[list[warnings.WarningMessage]]:
    """Warnings and the records of ``loggers`` (default pydicom's) held back, the warnings yielded
    as a list: a caller folds them into its own one-line error instead of letting them reach stderr."""
    held = [logging.getLogger(name) for name in loggers or ("pydicom",)]
    was_disabled = [logger.disabled for logger in held]
    for logger in held:
        logger.disabled = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        for logger, was in zip(held, was_disabled):
            logger.disabled = was


def _pixels(image: DicomImage) -> np.ndarray:
    ds = image.dataset
    if not (ds.get("PixelData") or ds.get("FloatPixelData")):
        raise InputError(image.label, "PixelData (7FE0,0010) is empty")
    try:
        with silenced() as caught:
            pixels = ds.pixel_array
    except Exception as exc:  # missing decoder, truncated pixel data...
        raise InputError(image.label, f"cannot decode pixel data ({brief(exc)})") from None
    if caught:  # e.g. more pixel data than Rows x Columns: the header does not describe the image
        raise InputError(image.label, f"pixel data does not match its header ({brief(caught[0].message)})")
    if pixels.shape != (int(ds.Rows), int(ds.Columns)):
        raise InputError(image.label, f"pixel data has shape {pixels.shape}, expected a single grey-scale frame "
                                      f"of {int(ds.Rows)}x{int(ds.Columns)}")
    slope = _number(ds, "RescaleSlope")
    intercept = _number(ds, "RescaleIntercept")
    out = pixels.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # an absurd slope overflows: the caller refuses non-finite values
        if slope is not None and slope != 1:
            out *= np.float32(slope)
        if intercept:
            out += np.float32(intercept)
    return out


def _header(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` without its pixel data (what derived DICOM objects reference)."""
    header = pydicom.Dataset({tag: element for tag, element in ds.items() if tag != _PIXEL_DATA})
    header.file_meta = ds.file_meta
    return header


def _weighting(ds: pydicom.Dataset) -> Weighting:
    text = " ".join(str(ds.get(k, "")) for k in ("SeriesDescription", "ProtocolName", "SequenceName"))
    named = weighting_from_text(text)
    if named != Weighting.UNKNOWN:
        return named
    scanning = ds.get("ScanningSequence", "")
    scanning = [scanning] if isinstance(scanning, str) else list(scanning)
    return weighting_from_timing(_number(ds, "RepetitionTime"), _number(ds, "EchoTime"),
                                 _number(ds, "InversionTime"), "IR" in scanning)


def _series_from_stack(images: list[DicomImage], uid: str) -> Series:
    first = images[0]
    orientation = _orientation(first)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    positions = np.array([_position(i) for i in images])
    pixel_spacing = _floats(first, "PixelSpacing", "(0028,0030)", 2)  # (between rows, between columns)

    affine = np.eye(4)
    if len(images) > 1:
        affine[:3, 0] = (positions[-1] - positions[0]) / (len(images) - 1)
    else:
        thickness = _number(first.dataset, "SpacingBetweenSlices") or _number(first.dataset, "SliceThickness") or 1.0
        affine[:3, 0] = normal * abs(thickness)
    affine[:3, 1] = column_cosine * pixel_spacing[0]  # increasing row index
    affine[:3, 2] = row_cosine * pixel_spacing[1]  # increasing column index
    affine[:3, 3] = positions[0]
    array = np.stack([_pixels(i) for i in images])
    if not np.all(np.isfinite(array)):
        raise InputError(first.label, "pixel values are not finite after rescaling")
    try:
        geometry = Geometry(affine, array.shape)
    except ValueError as exc:  # e.g. slice positions or spacing so extreme that the affine is singular
        raise GeometryError(first.label, f"invalid geometry ({exc})") from None
    plane = Plane.of_normal(normal)
    array, geometry = geometry.reorient(array, plane.canonical_codes)
    ds = first.dataset
    metadata = {k: str(ds.get(k, "")) for k in (
        "PatientID", "StudyInstanceUID", "StudyDate", "SeriesNumber", "Modality", "Manufacturer",
        "MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime")}
    metadata["files"] = [i.label for i in images]
    return Series(array=array, geometry=geometry, plane=plane, weighting=_weighting(ds),
                  source=str(Path(first.label).parent), description=str(ds.get("SeriesDescription", "")),
                  uid=uid, metadata=metadata, dicom=tuple(_header(i.dataset) for i in images))


def series_from_images(images: list[DicomImage]) -> list[Series]:
    """Group images into series (UID, orientation, size, spacing, echo time; then runs of
    uniform slice spacing) and build each. A UID split into several stacks gets ``.1``,
    ``.2`` … suffixes."""
    groups: dict[tuple, list[DicomImage]] = {}
    for image in images:
        groups.setdefault(_stack_key(image), []).append(image)
    stacks_by_uid: dict[str, list[list[DicomImage]]] = {}
    for key, members in groups.items():
        orientation = np.array(key[1])
        normal = np.cross(orientation[:3], orientation[3:])
        depth = np.array([float(np.dot(normal, _position(m)))
                          for m in members])
        order = np.argsort(depth, kind="stable")
        members, depth = [members[i] for i in order], depth[order]
        duplicate = np.flatnonzero(np.diff(depth) < 1e-3)
        if duplicate.size:
            a, b = members[duplicate[0]], members[duplicate[0] + 1]
            raise GeometryError(a.label, f"has the same slice position as {b.label}; cannot stack them")
        for run in _runs(depth):
            stacks_by_uid.setdefault(key[0], []).append(members[run])
    series = []
    for uid, stacks in stacks_by_uid.items():
        for n, stack in enumerate(stacks, start=1):
            series.append(_series_from_stack(stack, uid if len(stacks) == 1 else f"{uid}.{n}"))
    return series
