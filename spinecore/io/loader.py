"""The one entry point for reading scans: :func:`load_study`."""
from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import numpy as np
import pydicom

from spinecore.errors import GeometryError, InputError, SeriesNotFoundError
from spinecore.geometry import MAX_POSITION_MM
from spinecore.io.archive import MAX_ARCHIVE_BYTES, read_zip_members
from spinecore.io.dicom import image_or_none, read_dataset, series_from_images
from spinecore.io.series import Plane, Series, Study, Weighting
from spinecore.io.volume import VOLUME_SUFFIXES, is_volume_file, read_volume

log = logging.getLogger(__name__)


#: Voxel spacing a scan may have (mm): beyond it the header is wrong, whatever the scanner.
SPACING_MM = (1e-2, 1e2)


def _check_series(series: Series) -> Series:
    """``series`` if it has signal, a plausible voxel spacing (:data:`SPACING_MM`) and position
    (:data:`~spinecore.geometry.MAX_POSITION_MM`)."""
    values = series.array
    if float(values.max()) == float(values.min()):
        raise InputError(series.source, f"contains no signal (every voxel equals {float(values.min()):g})")
    spacing = series.geometry.spacing
    if not all(SPACING_MM[0] <= s <= SPACING_MM[1] for s in spacing):
        raise GeometryError(series.source, f"voxel spacing {', '.join(f'{s:.3g}' for s in spacing)} mm is outside "
                                           f"{SPACING_MM[0]:g}-{SPACING_MM[1]:g} mm: the header is wrong")
    if np.abs(series.geometry.origin).max() > MAX_POSITION_MM:
        raise GeometryError(series.source, f"first voxel lies more than {MAX_POSITION_MM:g} mm from the scanner's "
                                           "origin: the header is wrong")
    return series


def _dicom_study(source: Path, members: list[tuple[str, bytes | Path]], require_images: bool = True) -> list[Series]:
    """Series from candidate files; non-DICOM files are skipped, broken DICOM is an error.
    Finding no image at all is an error when ``require_images``."""
    images, not_dicom, not_image = [], [], []
    for label, data in members:
        ds = read_dataset(label, data)
        if ds is None:
            not_dicom.append(label)
            continue
        image = image_or_none(label, ds)
        (images if image else not_image).append(image or label)
    if not images and not require_images:
        return []
    if not images:
        if not members:
            raise InputError(source, "is empty")
        found = []
        if not_image:
            found.append(f"{len(not_image)} DICOM file(s) without pixel data, e.g. {Path(not_image[0]).name}")
        if not_dicom:
            found.append(f"{len(not_dicom)} non-DICOM file(s), e.g. {Path(not_dicom[0]).name}")
        raise InputError(source, f"holds no DICOM images ({'; '.join(found)})")
    if not_dicom or not_image:
        log.info("%s: skipped %d non-DICOM and %d non-image files", source, len(not_dicom), len(not_image))
    return series_from_images(images)


def _files(folder: Path) -> list[Path]:
    """The regular files under ``folder``, through symbolic links to folders (each folder once, so a
    link loop ends), hidden entries skipped, in path order."""
    files, seen = [], set()
    for top, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(top, n) for n in names if not n.startswith(".") and Path(top, n).is_file()]
    return sorted(files)


def _read_folder(folder: Path) -> list[Series]:
    files = _files(folder)
    if not files:
        raise InputError(folder, "folder is empty")
    volumes = [read_volume(p) for p in files if is_volume_file(p)]
    others = [(str(p), p) for p in files if not is_volume_file(p)]
    if not others:
        return volumes
    return volumes + _dicom_study(folder, others, require_images=not volumes)


def load_study(path: str | os.PathLike, *, max_archive_bytes: int = MAX_ARCHIVE_BYTES) -> Study:
    """Read every series in ``path``.

    ``path`` may be a DICOM folder (searched recursively; several series are split by
    SeriesInstanceUID and stack), a ``.zip`` of DICOM files (read in memory, never extracted,
    at most ``max_archive_bytes`` uncompressed), a single DICOM file, or a NIfTI / NRRD /
    MetaImage volume. Each :class:`Series` follows the reader contract in
    :mod:`spinecore.io.series`. Raises a :class:`~spinecore.errors.SpineCoreError` with a
    one-line message on any unreadable input.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        series = _read_folder(path)
    elif path.suffix.lower() == ".zip":
        members = read_zip_members(path, max_archive_bytes)
        series = _dicom_study(path, [(f"{path}!{name}", data) for name, data in members])
    elif is_volume_file(path):
        series = [read_volume(path)]
    else:
        if path.stat().st_size == 0:
            raise InputError(path, "file is empty")
        ds = read_dataset(str(path), path)
        if ds is None:
            raise InputError(path, f"not a DICOM file nor a volume ({', '.join(VOLUME_SUFFIXES)})")
        image = image_or_none(str(path), ds)
        if image is None:
            raise InputError(path, "DICOM file has no pixel data (not an image)")
        series = series_from_images([image])
    series = [_check_series(s) for s in series]
    series.sort(key=lambda s: (s.plane.value, s.weighting.value, s.description, s.uid))
    return Study(source=str(path), series=tuple(series))


def companion_series(study: Study, series: Series, t1: str | os.PathLike | None = None,
                     axial: str | os.PathLike | None = None, *,
                     max_archive_bytes: int = MAX_ARCHIVE_BYTES) -> tuple[Series | None, list[Series]]:
    """The sagittal T1 and the axial series to grade with ``series`` (a sagittal series of
    ``study``): read from the ``t1`` / ``axial`` inputs when given (a file, DICOM folder or zip; all
    of ``axial``'s axial series), else taken from ``study`` itself (its sagittal T1 that shares the
    most space with ``series``, none when none does, e.g. a whole-spine study's cervical T1; none
    when ``series`` is a T1; and its axial series). Raises :class:`SeriesNotFoundError` when
    ``axial`` holds no axial series."""
    if t1 is not None:
        t1_series = load_study(t1, max_archive_bytes=max_archive_bytes).sagittal(Weighting.T1)
    elif series.weighting == Weighting.T1:
        t1_series = None
    else:
        shared = [(shared_mm3(s, series), s) for s in study.select(Plane.SAGITTAL, Weighting.T1) if s is not series]
        space, t1_series = max(shared, key=lambda pair: pair[0], default=(0.0, None))
        t1_series = t1_series if space > 0 else None
    if axial is None:
        return t1_series, study.select(Plane.AXIAL)
    axials = load_study(axial, max_archive_bytes=max_archive_bytes).select(Plane.AXIAL)
    if not axials:
        raise SeriesNotFoundError(axial, "no axial series")
    return t1_series, axials


def _extent_mm(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """The LPS bounding box (min, max corners) of ``series``' voxels, each voxel a box of its spacing."""
    corners = np.array(list(itertools.product(*[(-0.5, n - 0.5) for n in series.shape])))
    mm = series.geometry.vox_to_mm(corners)
    return mm.min(0), mm.max(0)


def shared_mm3(a: Series, b: Series) -> float:
    """The volume (mm³) of the intersection of two series' LPS bounding boxes: 0 when apart."""
    (low_a, high_a), (low_b, high_b) = _extent_mm(a), _extent_mm(b)
    return float(np.prod(np.clip(np.minimum(high_a, high_b) - np.maximum(low_a, low_b), 0.0, None)))


def _study_uid(folder: Path) -> str | None:
    """StudyInstanceUID of the first DICOM file found under ``folder`` (``None`` if none)."""
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not is_volume_file(p) and p.suffix.lower() != ".zip":
            try:
                return str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["StudyInstanceUID"]).StudyInstanceUID)
            except Exception:  # not DICOM (or no UID): try the next file
                continue
    return None


def find_studies(path: str | os.PathLike) -> list[Path]:
    """The studies to analyse under ``path``, each a valid :func:`load_study` input.

    ``path`` itself is one study when it is a file, a folder with DICOM files at its top, or a
    folder whose subfolders hold one DICOM study (e.g. one folder per series). Otherwise it is a
    folder of studies: each volume file, ``.zip`` and subfolder in it (hidden entries skipped).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_file():
        return [path]
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    if not entries:
        raise InputError(path, "folder is empty")
    files = [p for p in entries if p.is_file()]
    folders = [p for p in entries if p.is_dir()]
    singles = [p for p in files if is_volume_file(p) or p.suffix.lower() == ".zip"]
    if len(singles) < len(files):  # other files at the top: a DICOM folder
        return [path]
    if not singles and len(folders) > 1:
        uids = {_study_uid(f) for f in folders}
        if len(uids) == 1 and None not in uids:
            return [path]
    return singles + folders
