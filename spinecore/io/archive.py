"""Safe reading of zip archives: members are read into memory, never extracted."""
from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from spinecore.errors import InputError, UnsafeArchiveError, brief

#: Default cap on the total uncompressed size read from one archive.
MAX_ARCHIVE_BYTES = 4 * 1024**3
#: Cap on a member's uncompressed size over its compressed size (beyond :data:`_CHUNK`): DICOM images
#: deflate 2-20 times; only a bomb's runs of one byte come near deflate's limit (about 1030 times).
MAX_COMPRESSION_RATIO = 200
_CHUNK = 1 << 20


def _check_member_name(archive: Path, name: str) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and ":" in posix.parts[0]):
        raise UnsafeArchiveError(archive, f"member {name!r} points outside the archive (path traversal); refusing to read it")


def _inflation_cap(info: zipfile.ZipInfo) -> int:
    """The most bytes ``info`` may inflate to (:data:`MAX_COMPRESSION_RATIO`)."""
    return max(_CHUNK, MAX_COMPRESSION_RATIO * info.compress_size)


def _bomb(archive: Path, info: zipfile.ZipInfo) -> UnsafeArchiveError:
    return UnsafeArchiveError(archive, f"member {info.filename!r} inflates more than {MAX_COMPRESSION_RATIO} times "
                                       "(a zip bomb); refusing to read it")


def read_zip_members(archive: Path, max_total_bytes: int = MAX_ARCHIVE_BYTES) -> list[tuple[str, bytes]]:
    """All regular-file members of ``archive`` as ``(name, bytes)``, in name order.

    Refuses absolute or ``..`` member names, symbolic links and encrypted members, and
    stops as soon as the uncompressed bytes actually read exceed ``max_total_bytes`` or a
    member inflates more than :data:`MAX_COMPRESSION_RATIO` times (the sizes a zip header
    declares are not trusted).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(archive, f"not a readable zip archive ({brief(exc)})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in infos:
            _check_member_name(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafeArchiveError(archive, f"member {info.filename!r} is a symbolic link; refusing to follow it")
            if info.flag_bits & 0x1:
                raise InputError(archive, f"member {info.filename!r} is encrypted")
            if info.file_size > _inflation_cap(info):
                raise _bomb(archive, info)
        declared = sum(i.file_size for i in infos)
        if declared > max_total_bytes:
            raise UnsafeArchiveError(archive, f"uncompressed size {declared} bytes exceeds the cap of {max_total_bytes} bytes")
        members, total = [], 0
        for info in sorted(infos, key=lambda i: i.filename):
            chunks, size = [], 0
            try:
                with zf.open(info) as fh:
                    while chunk := fh.read(_CHUNK):
                        total, size = total + len(chunk), size + len(chunk)
                        if total > max_total_bytes:
                            raise UnsafeArchiveError(archive, f"uncompressed content exceeds the cap of {max_total_bytes} bytes")
                        chunks.append(chunk)
                        if size > _inflation_cap(info):  # its header lied about its size
                            raise _bomb(archive, info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:  # CRC errors, truncated data
                raise InputError(archive, f"member {info.filename!r} is corrupt ({brief(exc)})") from None
            members.append((info.filename, b"".join(chunks)))
        return members
