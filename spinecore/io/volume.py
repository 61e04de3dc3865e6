"""Reading NIfTI / NRRD / MetaImage volumes through SimpleITK."""
from __future__ import annotations

import gzip
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spinecore.errors import GeometryError, InputError, brief
from spinecore.geometry import Geometry
from spinecore.io.classify import plane_of, slice_axis, weighting_from_text
from spinecore.io.series import Series

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: The most voxels a volume file may declare: 2**28, 1 GiB as float32 (a 512 x 512 x 1024 volume).
MAX_VOXELS = 2**28


def is_volume_file(path: Path) -> bool:
    return path.name.lower().endswith(VOLUME_SUFFIXES)


def volume_stem(path: Path) -> str:
    """File name without its volume suffix (``a.nii.gz`` → ``a``)."""
    name = path.name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _itk_reason(exc: Exception, path: Path) -> str:
    """The informative line of an ITK exception (they span many lines), without the object's address
    and the file's name (the caller names it)."""
    lines = [re.sub(r"^(sitk|itk)::ERROR:\s*|ITK ERROR: \w+\(0x[0-9a-f]+\):\s*", "",
                    line.strip().replace(str(path), "the file")) for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception thrown", "/"))]
    return (useful or lines or ["unknown ITK error"])[-1][:200]


def _header_fields(path: Path, nrrd: bool) -> set[str]:
    """Field names (lower case) of a NRRD (``field: value``, ended by a blank line) or
    MetaImage (``Field = value``, ended by ``ElementDataFile``) text header."""
    with open(path, "rb") as fh:
        lines = fh.read(65536).decode("latin-1").splitlines()
    fields = set()
    for line in lines[1:] if nrrd else lines:
        if not line.strip():
            break
        name = line.split(":" if nrrd else "=", 1)[0].strip().lower()
        fields.add(name)
        if name == "elementdatafile":
            break
    return fields


def _check_declared_spacing(path: Path) -> None:
    """Refuse NRRD / MetaImage files that declare no voxel spacing (ITK would silently use 1 mm)."""
    name = path.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        required, kind = {"spacings", "space directions"}, "NRRD header has neither 'space directions' nor 'spacings'"
    elif name.endswith((".mha", ".mhd")):
        required, kind = {"elementspacing", "elementsize"}, "MetaImage header has no ElementSpacing"
    else:
        return
    if not _header_fields(path, nrrd=name.endswith((".nrrd", ".nhdr"))) & required:
        raise GeometryError(path, f"{kind}; voxel spacing is unknown")


def _nifti_data_bytes(header: bytes) -> int | None:
    """Bytes a NIfTI-1/-2 file must hold (voxel offset + voxel data), or ``None`` if ``header``
    is not a NIfTI header (ITK then reports the problem itself)."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix, offset = struct.unpack(order + "h", header[72:74])[0], struct.unpack(order + "f", header[108:112])[0]
        elif len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:
            dims = struct.unpack(order + "8q", header[16:80])
            bitpix, offset = struct.unpack(order + "h", header[14:16])[0], struct.unpack(order + "q", header[168:176])[0]
        else:
            continue
        if not 1 <= dims[0] <= 7:
            return None
        voxels = int(np.prod([max(d, 1) for d in dims[1:dims[0] + 1]], dtype=np.int64))
        return int(offset) + voxels * max(bitpix, 8) // 8
    return None


def _check_nifti_complete(path: Path) -> None:
    """Refuse truncated NIfTI files (ITK silently fills the missing voxels)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(540)
            size = len(header)
            while chunk := fh.read(1 << 22):
                size += len(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(path, f"truncated or corrupt compressed data ({brief(exc, 80)})") from None
    expected = _nifti_data_bytes(header)
    if expected is not None and size < expected:
        raise InputError(path, f"truncated: holds {size} of the {expected} bytes its header declares")


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """ITK and its NIfTI and MetaImage libraries print warnings straight to the process's standard
    error (file descriptor 2), past Python; hold them back (their errors reach us as exceptions)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _read_image(path: Path) -> sitk.Image:
    """The image in ``path``, refused before its voxels are read when it declares more than
    :data:`MAX_VOXELS` (a gzip bomb, a lying header) or, for NIfTI, fewer bytes than it holds."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with _native_stderr_silenced():
            reader.ReadImageInformation()
        voxels = int(np.prod(reader.GetSize(), dtype=np.int64)) * reader.GetNumberOfComponents()
        if voxels > MAX_VOXELS:
            raise InputError(path, f"declares {voxels} voxels (size {reader.GetSize()}), more than the "
                                   f"{MAX_VOXELS} a scan may have")
        if path.name.lower().endswith((".nii", ".nii.gz")):
            _check_nifti_complete(path)
        with _native_stderr_silenced():
            return reader.Execute()
    except RuntimeError as exc:
        raise InputError(path, f"cannot read volume file: {_itk_reason(exc, path)}") from None


def read_volume(path: Path) -> Series:
    """One volume file as a :class:`Series` in canonical orientation."""
    _check_declared_spacing(path)
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")
    image = _read_image(path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"has {image.GetNumberOfComponentsPerPixel()} values per voxel (colour/vector image); "
                               "expected a grey-scale scan")
    if image.GetDimension() == 4:
        if image.GetSize()[3] != 1:
            raise InputError(path, f"is 4-D with {image.GetSize()[3]} volumes; expected a single 3-D scan")
        image = image[:, :, :, 0]
    elif image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3:
        raise InputError(path, f"is {image.GetDimension()}-D; expected a 3-D scan")
    if 0 in image.GetSize():
        raise InputError(path, f"is empty (size {image.GetSize()})")
    array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise InputError(path, "contains NaN or infinite voxel values")
    try:
        geometry = Geometry.from_sitk(image)
    except ValueError as exc:
        raise GeometryError(path, f"invalid geometry ({exc})") from None
    return series_from_array(array, geometry, source=str(path), description=volume_stem(path), uid=path.name)


def series_from_array(array: np.ndarray, geometry: Geometry, source: str, description: str, uid: str = "") -> Series:
    """A :class:`Series` from an in-memory volume (array in ``geometry``'s layout): the slice
    axis and plane are inferred, the weighting is read from ``description``, and the array
    is brought to the canonical orientation."""
    plane = plane_of(geometry, slice_axis(geometry))
    array, geometry = geometry.reorient(np.asarray(array, dtype=np.float32), plane.canonical_codes)
    return Series(array=array, geometry=geometry, plane=plane, weighting=weighting_from_text(description),
                  source=source, description=description, uid=uid)
