"""A seeded corpus of broken (and a few odd but valid) inputs made from a phantom study's DICOM and
NIfTI files: truncations at random offsets, removed or corrupted tags, pixel data that disagrees with
its header, odd transfer syntaxes, mixed series, empty and huge dimensions, archive tricks (zip-slip,
zip bombs, symbolic links, truncated zips) and symbolic links in folders.

:func:`make_corpus` writes every case as one entry of a folder (a DICOM folder, a volume file or a
zip), so the folder is both a list of ``spinecore grade`` inputs and one ``spinecore batch`` cohort.
"""
from __future__ import annotations

import gzip
import os
import shutil
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian, JPEG2000,
                         JPEGBaseline8Bit, RLELossless, generate_uid)

from spinecore.io.write import write_volume
from spinecore.phantom import PhantomSpec, make_phantom, write_phantom

SEED = 18
#: The phantom the corpus is cut from: small, so that the cases that grade do so quickly.
PHANTOM = PhantomSpec(seed=5, top_level="L2", n_slices=3, slice_spacing_mm=4.0, pixel_spacing_mm=(0.9, 0.9))
TRUNCATIONS = 40  # DICOM and NIfTI files cut at random offsets, each
#: Tags removed from one file, then from every file of the series.
REMOVED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns", "BitsAllocated",
           "BitsStored", "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation", "PixelData",
           "SeriesInstanceUID", "SOPInstanceUID", "RescaleSlope", "SliceThickness", "HighBit")
#: (keyword, value written instead): geometry and image-description tags that lie.
CORRUPTED = (
    ("ImageOrientationPatient", [0, 0, 0, 0, 0, 0]), ("ImageOrientationPatient", [1, 0, 0, 0, 1]),
    ("ImageOrientationPatient", [1, 0, 0, 1, 0, 0]), ("ImageOrientationPatient", ["nan", 0, 0, 0, 1, 0]),
    ("ImageOrientationPatient", [2, 0, 0, 0, 2, 0]), ("ImagePositionPatient", [0, 0]),
    ("ImagePositionPatient", ["nan", 0, 0]), ("ImagePositionPatient", [1e308, 1e308, 0]),
    ("ImagePositionPatient", ["inf", 0, 0]), ("PixelSpacing", [0, 0]), ("PixelSpacing", [-1, -1]),
    ("PixelSpacing", ["nan", 1]), ("PixelSpacing", [1e30, 1e30]), ("PixelSpacing", [1e-30, 1e-30]),
    ("PixelSpacing", [1]), ("Rows", 0), ("Rows", 1), ("Rows", 65535), ("Columns", 65535), ("Columns", 3),
    ("BitsAllocated", 8), ("BitsAllocated", 32), ("BitsAllocated", 12), ("BitsAllocated", 0), ("BitsStored", 40),
    ("PixelRepresentation", 2), ("SamplesPerPixel", 3), ("SamplesPerPixel", 0), ("PhotometricInterpretation", "RGB"),
    ("PhotometricInterpretation", "PALETTE COLOR"), ("NumberOfFrames", 2), ("NumberOfFrames", 0),
    ("RescaleSlope", "nan"), ("RescaleSlope", 0), ("RescaleSlope", 1e38), ("RescaleIntercept", "inf"),
    ("SliceThickness", 0), ("SeriesInstanceUID", ""), ("HighBit", 40), ("Modality", "CT"),
)
#: Transfer syntax UIDs written over the file meta's, the data left as it is (the header lies).
MISLABELLED = (ImplicitVRLittleEndian, ExplicitVRBigEndian, JPEGBaseline8Bit, JPEG2000, RLELossless,
               DeflatedExplicitVRLittleEndian, "1.2.3.4.5.6", "")
#: Odd but genuine encodings: (name, transfer syntax) the whole series is re-encoded in.
ENCODED = (("implicit", ImplicitVRLittleEndian), ("deflated", DeflatedExplicitVRLittleEndian), ("rle", RLELossless))
BOMB_BYTES = 2 * 1024**3  # uncompressed size of the zip and gzip bombs


@dataclass(frozen=True)
class Case:
    """One corpus entry: ``path`` (under the corpus folder) and what was done to it."""

    path: Path
    kind: str


class Corpus:
    """Writes cases into ``root``; ``base`` holds the phantom study they are made from; ``outside``
    is a folder beside ``root`` that symbolic links point into."""

    def __init__(self, root: Path, base: Path, outside: Path, rng: np.random.Generator):
        self.root, self.base, self.outside, self.rng = root, base, outside, rng
        self.cases: list[Case] = []
        self.t2 = sorted((base / "dicom" / "sag_t2").glob("*.dcm"))

    def add(self, kind: str, path: Path) -> None:
        self.cases.append(Case(path, kind))

    def name(self, kind: str, suffix: str = "") -> Path:
        return self.root / f"c{len(self.cases):03d}_{kind}{suffix}"

    def series_folder(self, kind: str, change: Callable[[pydicom.Dataset], None] | None = None,
                      which: str = "one") -> Path:
        """A copy of the T2 series with ``change`` applied to one file (``which="one"``) or all."""
        folder = self.name(kind)
        folder.mkdir()
        chosen = int(self.rng.integers(len(self.t2)))
        for n, source in enumerate(self.t2):
            if change and (which == "all" or n == chosen):
                ds = pydicom.dcmread(source)
                change(ds)
                ds.save_as(folder / source.name, enforce_file_format=False)
            else:
                shutil.copy(source, folder / source.name)
        self.add(kind, folder)
        return folder


def _set(keyword: str, value) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        setattr(ds, keyword, value)
    return change


def _remove(keyword: str) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        if keyword in ds:
            delattr(ds, keyword)
    return change


def dicom_cases(c: Corpus) -> None:
    """Truncated files, removed and corrupted tags, pixel data of the wrong length, transfer syntaxes."""
    for n in range(TRUNCATIONS):
        folder = c.series_folder("dicom_truncated")
        victim = folder / c.t2[int(c.rng.integers(len(c.t2)))].name
        data = victim.read_bytes()
        victim.write_bytes(data[:int(c.rng.integers(0, len(data)))])
    for keyword in REMOVED:
        c.series_folder(f"without_{keyword}", _remove(keyword))
        c.series_folder(f"all_without_{keyword}", _remove(keyword), which="all")
    for keyword, value in CORRUPTED:
        c.series_folder(f"bad_{keyword}", _set(keyword, value), which=str(c.rng.choice(["one", "all"])))
    for delta in (-2, -1, 1, 2, 513, -4000):
        c.series_folder(f"pixel_data_{delta:+d}_bytes", lambda ds, d=delta: setattr(
            ds, "PixelData", ds.PixelData[:d] if d < 0 else ds.PixelData + b"\0" * d))
    c.series_folder("pixel_data_empty", _set("PixelData", b""), which="all")
    c.series_folder("float_pixel_data", lambda ds: (delattr(ds, "PixelData"), setattr(ds, "FloatPixelData", b"\0" * 8)))
    c.series_folder("rows_swapped_with_columns", lambda ds: (setattr(ds, "Rows", ds.Columns + 0),
                                                             setattr(ds, "Columns", ds.Rows + 1)), which="all")
    for uid in MISLABELLED:
        folder = c.series_folder(f"labelled_{uid or 'empty'}")
        for path in folder.iterdir():
            _relabel(path, uid)
    for name, syntax in ENCODED:
        folder = c.series_folder(f"encoded_{name}")
        for path in folder.iterdir():
            ds = pydicom.dcmread(path)
            if syntax == RLELossless:
                ds.compress(RLELossless)
            else:
                ds.file_meta.TransferSyntaxUID = syntax
            ds.save_as(path, enforce_file_format=True)


def _relabel(path: Path, uid: str) -> None:
    """Rewrite ``path`` with ``uid`` as its transfer syntax, its data still explicit VR little endian."""
    ds = pydicom.dcmread(path)
    body, meta = DicomBytesIO(), DicomBytesIO()
    for fp in (body, meta):
        fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(body, ds)
    ds.file_meta.TransferSyntaxUID = uid
    write_file_meta_info(meta, ds.file_meta, enforce_standard=False)
    path.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + body.getvalue())


def _mixed_series(c: Corpus) -> None:
    for kind, sources in (("t2_and_t1", ("sag_t2", "sag_t1")), ("t2_and_axial", ("sag_t2", "ax_t2_l4-l5")),
                          ("axial_only", ("ax_t2_l4-l5",)), ("t1_only", ("sag_t1",))):
        folder = c.name(kind)
        for source in sources:
            shutil.copytree(c.base / "dicom" / source, folder / source)
        c.add(kind, folder)
    c.series_folder("two_uids_alternating", lambda ds: setattr(ds, "SeriesInstanceUID", generate_uid()))
    folder = c.series_folder("duplicate_slice")
    ds = pydicom.dcmread(c.t2[0])
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(folder / "copy.dcm", enforce_file_format=True)
    folder = c.series_folder("t1_image_in_t2_series")
    ds = pydicom.dcmread(sorted((c.base / "dicom" / "sag_t1").glob("*.dcm"))[2])
    ds.SeriesInstanceUID = pydicom.dcmread(c.t2[0]).SeriesInstanceUID
    ds.save_as(folder / "t1.dcm", enforce_file_format=True)
    folder = c.series_folder("with_text_files")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    folder = c.series_folder("with_a_volume")
    shutil.copy(c.base / "nifti" / "sag_t2.nii.gz", folder / "scan.nii.gz")
    folder = c.series_folder("slice_missing")
    (folder / c.t2[2].name).unlink()
    folder = c.name("report_only")
    folder.mkdir()
    ds = pydicom.dcmread(c.t2[0])
    del ds.PixelData
    ds.save_as(folder / "report.dcm", enforce_file_format=True)
    c.add("report_only", folder)
    single = c.name("single_dicom_file")
    single.mkdir()
    shutil.copy(c.t2[2], single / "one.dcm")
    c.add("single_dicom_file", single)


def _zero_and_huge(c: Corpus) -> None:
    empty = c.name("empty_folder")
    empty.mkdir()
    c.add("empty_folder", empty)
    for kind, suffix in (("empty_volume", ".nii.gz"), ("empty_zip", ".zip"), ("empty_nrrd", ".nrrd"),
                         ("empty_raw_nifti", ".nii")):
        path = c.name(kind, suffix)
        path.touch()
        c.add(kind, path)
    folder = c.name("empty_dicom_file")
    folder.mkdir()
    (folder / "IM0001.dcm").touch()
    c.add("empty_dicom_file", folder)
    folder = c.name("hidden_files_only")
    folder.mkdir()
    shutil.copy(c.t2[0], folder / ".hidden.dcm")
    c.add("hidden_files_only", folder)
    c.series_folder("zero_rows_and_columns", lambda ds: (setattr(ds, "Rows", 0), setattr(ds, "Columns", 0),
                                                         setattr(ds, "PixelData", b"")), which="all")
    for shape in ((1, 1, 1), (1, 1, 300), (300, 1, 1), (1, 300, 1), (2, 2, 2), (1, 64, 64), (40, 4, 4)):
        path = c.name(f"volume_{'x'.join(map(str, shape))}", ".nii.gz")
        write_volume(path, c.rng.normal(100, 10, shape).astype(np.float32), _geometry(shape))
        c.add("tiny_volume", path)
    path = c.name("gzip_bomb", ".nii.gz")
    _gzip_bomb(path, (2048, 1024, 1024))
    c.add("gzip_bomb", path)
    path = c.name("huge_header_dims", ".nii")
    _raw_nifti(path, (30000, 30000, 30000), b"\0" * 64)
    c.add("huge_header_dims", path)


def _geometry(shape):
    from spinecore.geometry import Geometry

    return Geometry.from_parts((0.0, 0.0, 0.0), (4.0, 0.9, 0.9), np.eye(3), shape)


def _nifti_header(shape: tuple[int, int, int], datatype: int = 2, bitpix: int = 8) -> bytearray:
    """A NIfTI-1 header of an ``(x, y, z)`` uint8 volume with 1 mm voxels, data at offset 352."""
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *shape, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352.0)
    struct.pack_into("<f", header, 112, 1.0)  # scl_slope
    struct.pack_into("<h", header, 254, 1)  # sform_code
    struct.pack_into("<12f", header, 280, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)
    header[344:348] = b"n+1\0"
    return header


def _raw_nifti(path: Path, shape, data: bytes) -> None:
    path.write_bytes(bytes(_nifti_header(shape)) + b"\0" * 4 + data)


def _gzip_bomb(path: Path, shape) -> None:
    """A complete ``.nii.gz`` of ``shape`` zero voxels (uint8): a few MB that inflate to :data:`BOMB_BYTES`."""
    chunk = b"\0" * (1 << 24)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes(_nifti_header(shape)) + b"\0" * 4)
        for _ in range(int(np.prod(shape)) // len(chunk)):
            f.write(chunk)


def volume_cases(c: Corpus) -> None:
    """NIfTI files cut at random offsets or with a lying header; NRRD and MetaImage oddities."""
    good = (c.base / "nifti" / "sag_t2.nii.gz").read_bytes()
    raw = gzip.decompress(good)
    for n in range(TRUNCATIONS):
        gz = n % 2 == 0
        data = good if gz else raw
        path = c.name("nifti_truncated", ".nii.gz" if gz else ".nii")
        path.write_bytes(data[:int(c.rng.integers(0, len(data)))])
        c.add("nifti_truncated", path)
    lies = {"dim0_zero": (40, "<h", 0), "dim0_eight": (40, "<h", 8), "dim_zero": (42, "<h", 0),
            "dim_negative": (44, "<h", -5), "datatype_unknown": (70, "<h", 9999), "datatype_rgb": (70, "<h", 128),
            "bitpix_wrong": (72, "<h", 64), "pixdim_nan": (80, "<f", float("nan")), "pixdim_zero": (80, "<f", 0.0),
            "pixdim_negative": (84, "<f", -1.0), "vox_offset_huge": (108, "<f", 1e12), "slope_nan": (112, "<f", float("nan")),
            "slope_zero": (112, "<f", 0.0), "srow_nan": (280, "<f", float("nan")), "srow_zero": (280, "<12f", (0.0,) * 12),
            "qform_nan": (256, "<f", float("nan")), "magic_wrong": (344, "<4s", b"xxxx"), "sizeof_wrong": (0, "<i", 1234),
            "dims_4d": (40, "<2h", (4, raw[42] or 1)), "dim_huge": (46, "<h", 32767)}
    for kind, (offset, fmt, value) in lies.items():
        header = bytearray(raw)
        struct.pack_into(fmt, header, offset, *(value if isinstance(value, tuple) else (value,)))
        path = c.name(f"nifti_{kind}", ".nii.gz")
        path.write_bytes(gzip.compress(bytes(header), compresslevel=1))
        c.add("nifti_header_lie", path)
    series = make_phantom(PHANTOM).get("sag_t2")
    for kind, array in (("nan_voxels", np.where(series.array > 500, np.nan, series.array)),
                        ("constant", np.full(series.array.shape, 7.0)), ("negative", -series.array),
                        ("int8_overflow", series.array.astype(np.int8))):
        path = c.name(kind, ".nii.gz")
        write_volume(path, array.astype(np.float32), series.geometry)
        c.add("volume_values", path)
    _itk_text_headers(c)


def _itk_text_headers(c: Corpus) -> None:
    """NRRD and MetaImage files whose text headers lie or point elsewhere."""
    secret = c.outside / "secret.raw"
    secret.write_bytes(b"\1" * 1000)
    headers = {
        "nrrd_no_spacing.nrrd": "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\n" + "\0" * 64,
        "nrrd_missing_data.nhdr": "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nspacings: 1 1 1\n"
                                  "encoding: raw\ndata file: missing.raw\n\n",
        "nrrd_outside_data.nhdr": "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 10 10 10\nspacings: 1 1 1\n"
                                  f"encoding: raw\ndata file: {os.path.relpath(secret, c.root)}\n\n",
        "nrrd_garbage.nrrd": "NRRD0004\ntype: banana\ndimension: 99\nsizes: -1\nspacings: 1\n\n",
        "mha_short.mha": "ObjectType = Image\nNDims = 3\nDimSize = 100 100 100\nElementType = MET_UCHAR\n"
                         "ElementSpacing = 1 1 1\nElementDataFile = LOCAL\n" + "\0" * 10,
        "mhd_traversal.mhd": "ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_UCHAR\n"
                             f"ElementSpacing = 1 1 1\nElementDataFile = {os.path.relpath(secret, c.root)}\n",
        "mha_no_spacing.mha": "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                              "ElementDataFile = LOCAL\n" + "\0" * 8,
        "mha_vector.mha": "ObjectType = Image\nNDims = 3\nDimSize = 8 8 8\nElementType = MET_UCHAR\n"
                          "ElementNumberOfChannels = 3\nElementSpacing = 1 1 1\nElementDataFile = LOCAL\n"
                          + "\1" * 1536,
    }
    for name, text in headers.items():
        path = c.name(name.split(".")[0], "." + name.split(".", 1)[1])
        path.write_bytes(text.encode("latin-1"))
        c.add("itk_header", path)


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def archive_cases(c: Corpus) -> None:
    """Zip-slip, absolute and drive names, symbolic link members, bombs, truncations, bad CRCs."""
    series = [(f"t2/{p.name}", p.read_bytes()) for p in c.t2]
    good = _zip(c.name("zip_valid", ".zip"), series)
    c.add("zip_valid", good)
    for kind, name in (("zip_slip", "../../evil.dcm"), ("zip_absolute", "/tmp/evil.dcm"), ("zip_drive", "C:/evil.dcm"),
                       ("zip_backslash", "..\\..\\evil.dcm"), ("zip_nested_slip", "t2/../../evil.dcm")):
        c.add(kind, _zip(c.name(kind, ".zip"), [*series, (name, series[0][1])]))
    link = zipfile.ZipInfo("t2/link.dcm")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    c.add("zip_symlink", _zip(c.name("zip_symlink", ".zip"), [*series, (link, b"/etc/passwd")]))
    bomb = c.name("zip_bomb", ".zip")
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open("bomb.dcm", "w",
                                                                                          force_zip64=True) as f:
        for _ in range(BOMB_BYTES // (1 << 24)):
            f.write(b"\0" * (1 << 24))
    c.add("zip_bomb", bomb)
    c.add("zip_bomb_small", _zip(c.name("zip_bomb_small", ".zip"), [*series, ("zeros.dcm", b"\0" * (64 << 20))]))
    data = good.read_bytes()
    for n in range(12):
        path = c.name("zip_truncated", ".zip")
        path.write_bytes(data[:int(c.rng.integers(0, len(data)))])
        c.add("zip_truncated", path)
    for n in range(4):
        path = c.name("zip_flipped_byte", ".zip")
        flipped = bytearray(data)
        flipped[int(c.rng.integers(100, len(data) - 100))] ^= 0xFF
        path.write_bytes(bytes(flipped))
        c.add("zip_flipped_byte", path)
    encrypted = bytearray(data)
    encrypted[6] |= 1  # general purpose flag of the first local header: encrypted
    central = data.find(b"PK\1\2")
    encrypted[central + 8] |= 1
    path = c.name("zip_encrypted_flag", ".zip")
    path.write_bytes(bytes(encrypted))
    c.add("zip_encrypted_flag", path)
    c.add("zip_empty_archive", _zip(c.name("zip_empty_archive", ".zip"), []))
    c.add("zip_text_only", _zip(c.name("zip_text_only", ".zip"), [("readme.txt", b"hello")]))
    c.add("zip_nested_zip", _zip(c.name("zip_nested_zip", ".zip"), [("inner.zip", data)]))
    c.add("zip_duplicate_names", _zip(c.name("zip_duplicate_names", ".zip"), [*series, series[0]]))
    c.add("zip_volume_inside", _zip(c.name("zip_volume_inside", ".zip"),
                                    [("scan.nii.gz", (c.base / "nifti" / "sag_t2.nii.gz").read_bytes())]))
    c.add("zip_not_a_zip", c.name("zip_not_a_zip", ".zip"))
    c.cases[-1].path.write_bytes(b"PK\3\4 this is not really a zip")
    stored = c.name("zip_stored_mixed", ".zip")
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in series:
            zf.writestr(name, blob)
        zf.writestr("t1/" + c.t2[0].name, (c.base / "dicom" / "sag_t1" / c.t2[0].name).read_bytes())
    c.add("zip_stored_mixed", stored)


def link_cases(c: Corpus) -> None:
    """Symbolic links in study folders: to a series outside, in a loop, dangling, to a device."""
    outside_series = c.outside / "series"
    shutil.copytree(c.base / "dicom" / "sag_t2", outside_series)
    folder = c.name("link_to_outside_series")
    folder.mkdir()
    (folder / "series").symlink_to(outside_series, target_is_directory=True)
    c.add("link_to_outside_series", folder)
    folder = c.series_folder("link_loop")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    folder = c.series_folder("link_dangling")
    (folder / "gone.dcm").symlink_to(c.outside / "does-not-exist.dcm")
    folder = c.series_folder("link_to_device")
    (folder / "zero.dcm").symlink_to("/dev/zero")
    folder = c.series_folder("fifo_inside")
    os.mkfifo(folder / "pipe.dcm")
    path = c.name("link_study", ".nii.gz")
    path.symlink_to(c.base / "nifti" / "sag_t2.nii.gz")
    c.add("link_study", path)


def make_corpus(folder: Path, seed: int = SEED) -> tuple[Path, list[Case]]:
    """Write the corpus into ``folder / "corpus"`` (the phantom into ``folder / "phantom"``, symlink
    targets into ``folder / "outside"``); returns the corpus folder and its cases."""
    root, base, outside = folder / "corpus", folder / "phantom", folder / "outside"
    for path in (root, base, outside):
        path.mkdir(parents=True)
    write_phantom(make_phantom(PHANTOM), base)
    corpus = Corpus(root, base, outside, np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom and zipfile warn about the very lies the cases tell
        for make in (dicom_cases, _mixed_series, _zero_and_huge, volume_cases, archive_cases, link_cases):
            make(corpus)
    return root, corpus.cases


if __name__ == "__main__":  # python Testing/robustness_corpus.py DIR: write a corpus to look at
    import sys

    made = make_corpus(Path(sys.argv[1]))[1]
    print(f"{len(made)} cases in {Path(sys.argv[1]) / 'corpus'}")

