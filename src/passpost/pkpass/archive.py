"""Read a .pkpass ZIP into memory within hard bounds (sizes, counts, ratio, names)."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from passpost.pkpass.errors import PkpassError

MiB = 1024 * 1024

# Everything zipfile (and zlib underneath it) raises on damaged input; listed rather than
# caught broadly so that a bug of ours still surfaces as a bug.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    IndexError,
    KeyError,
    OverflowError,
)

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_DRIVE = re.compile(r"^[A-Za-z]:")
# What every common file system allows for one name; real pass entries are a few bytes.
MAX_NAME_BYTES = 255
_S_IFMT = 0o170000
_S_IFLNK = 0o120000


@dataclass(frozen=True)
class Limits:
    """Bounds on an untrusted archive; the defaults fit every real pass seen by a wide margin."""

    max_archive_bytes: int = 10 * MiB
    max_members: int = 500
    max_member_bytes: int = 16 * MiB
    max_total_bytes: int = 48 * MiB
    # Total uncompressed / compressed; only enforced above ratio_floor_bytes, because tiny
    # text-only passes legitimately compress well.
    max_ratio: int = 100
    ratio_floor_bytes: int = 2 * MiB


DEFAULT_LIMITS = Limits()


def read_archive(
    data: bytes,
    limits: Limits = DEFAULT_LIMITS,
    *,
    on_member: Callable[[str, bytes], None] | None = None,
) -> dict[str, bytes]:
    """Return member name -> bytes (directories left out); raise PkpassError when unsafe.

    ``on_member`` sees each member as soon as it is read, while it is still in the CPU
    cache (validate hashes members there for the manifest check).
    """
    if len(data) > limits.max_archive_bytes:
        raise PkpassError(
            "ZIP_TOO_LARGE",
            f"The pass is {len(data)} bytes; the maximum is {limits.max_archive_bytes} bytes.",
        )
    located = _central_directory(data) if data.startswith(b"PK") else None
    if located is None:
        raise PkpassError("NOT_A_ZIP", "The file is not a ZIP archive, so it is not a .pkpass.")
    _check_member_count(data, located, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            _check_entries(infos, limits)
            budget = _uncompressed_budget(len(data), limits)
            _check_declared_sizes(infos, limits, budget)
            return _read_members(archive, infos, limits, budget, on_member)
    except PkpassError:
        raise
    except _ZIP_ERRORS as exc:
        raise PkpassError("ZIP_CORRUPT", f"The ZIP archive is damaged ({_describe(exc)}).") from exc
    except RecursionError as exc:  # pragma: no cover - zipfile does not recurse today
        raise PkpassError("ZIP_CORRUPT", "The ZIP archive is damaged.") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return text[:120] if text else type(exc).__name__


def _uncompressed_budget(archive_bytes: int, limits: Limits) -> int:
    by_ratio = max(limits.ratio_floor_bytes, archive_bytes * limits.max_ratio)
    return min(limits.max_total_bytes, by_ratio)


def _check_member_count(data: bytes, located: tuple[int, int], limits: Limits) -> None:
    """Count central-directory entries ourselves: zipfile would build them all in memory first."""
    offset, size = located
    end = min(len(data), offset + size)
    count = 0
    while offset + 46 <= end and data[offset : offset + 4] == _CENTRAL:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, offset + 28)
        offset += 46 + name_len + extra_len + comment_len
        count += 1
        if count > limits.max_members:
            raise PkpassError(
                "ZIP_TOO_MANY_MEMBERS",
                f"The pass has more than {limits.max_members} entries; "
                f"the maximum is {limits.max_members}.",
            )


def _central_directory(data: bytes) -> tuple[int, int] | None:
    """(offset, size) of the central directory from the end records; None when not a ZIP."""
    pos = data.rfind(_EOCD, max(0, len(data) - 65536 - 22))
    if pos < 0 or pos + 22 > len(data):
        return None
    size, offset = struct.unpack_from("<II", data, pos + 12)
    if offset == 0xFFFFFFFF or size == 0xFFFFFFFF:
        loc = pos - 20
        if loc < 0 or data[loc : loc + 4] != _EOCD64_LOCATOR:
            return 0, 0  # inconsistent zip64 records: zipfile will say what is wrong
        (eocd64,) = struct.unpack_from("<Q", data, loc + 8)
        if eocd64 + 56 > len(data) or data[eocd64 : eocd64 + 4] != _EOCD64:
            return 0, 0
        size, offset = struct.unpack_from("<QQ", data, eocd64 + 40)
    # Data prepended to the archive shifts every offset; zipfile corrects for it the same way.
    shift = max(0, pos - size - offset)
    return offset + shift, size


def _check_entries(infos: list[zipfile.ZipInfo], limits: Limits) -> None:
    if len(infos) > limits.max_members:
        raise PkpassError(
            "ZIP_TOO_MANY_MEMBERS",
            f"The pass has {len(infos)} entries; the maximum is {limits.max_members}.",
        )
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if len(info.orig_filename.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise PkpassError(
                "ZIP_NAME_TOO_LONG",
                f"The entry name {info.orig_filename[:40]!r}… is longer than "
                f"{MAX_NAME_BYTES} bytes.",
                files=(info.orig_filename[:MAX_NAME_BYTES],),
            )
        if unsafe_name(info.orig_filename, is_dir=info.is_dir()):
            raise PkpassError(
                "ZIP_UNSAFE_PATH",
                f"The entry name {info.orig_filename!r} is not a safe relative path.",
                files=(info.orig_filename,),
            )
        if name in seen:
            raise PkpassError(
                "ZIP_DUPLICATE_NAME", f"The entry {name!r} appears twice.", files=(name,)
            )
        seen.add(name)
        if info.flag_bits & 0x41:  # bit 0: encrypted, bit 6: strong encryption
            raise PkpassError("ZIP_ENCRYPTED", f"The entry {name!r} is encrypted.", files=(name,))
        if (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
            raise PkpassError(
                "ZIP_SYMLINK", f"The entry {name!r} is a symbolic link.", files=(name,)
            )
        # Only stored/deflate: zipfile decompresses bzip2/LZMA without an output bound.
        if not info.is_dir() and info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
        ):
            raise PkpassError(
                "ZIP_UNSUPPORTED_COMPRESSION",
                f"The entry {name!r} uses compression method {info.compress_type}; "
                "only stored and deflate are allowed.",
                files=(name,),
            )


def unsafe_name(name: str, *, is_dir: bool = False) -> bool:
    """True for names that could escape a folder or be read differently by another unzipper."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    if is_dir and name in ("./", "."):
        return False  # a harmless "this folder" entry some zip tools write (real passes have it)
    parts = name[:-1].split("/") if is_dir else name.split("/")
    return any(part in ("", ".", "..") for part in parts)


def _check_declared_sizes(infos: list[zipfile.ZipInfo], limits: Limits, budget: int) -> None:
    total = 0
    for info in infos:
        if info.file_size > limits.max_member_bytes:
            raise _member_too_large(info.filename, limits)
        total += info.file_size
    if total > budget:
        raise _bomb(total, budget)


def _read_members(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    limits: Limits,
    budget: int,
    on_member: Callable[[str, bytes], None] | None,
) -> dict[str, bytes]:
    """Read each member with a size cap, so that lying size headers cannot make us allocate more.

    ZipExtFile.read(n) decompresses incrementally, asking zlib for at most n bytes, and
    never returns more than the declared size (checked against the limits already), so
    reading min(cap, declared) + 1 bounds the memory whatever the compressed stream holds.
    """
    files: dict[str, bytes] = {}
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        cap = min(limits.max_member_bytes, budget - total)
        with archive.open(info) as stream:
            data = stream.read(min(cap, info.file_size) + 1)
        total += len(data)
        if len(data) > limits.max_member_bytes:
            raise _member_too_large(info.filename, limits)
        if len(data) > cap:
            raise _bomb(total, budget)
        files[info.filename] = data
        if on_member is not None:
            on_member(info.filename, data)
    return files


def _member_too_large(name: str, limits: Limits) -> PkpassError:
    return PkpassError(
        "ZIP_MEMBER_TOO_LARGE",
        f"The entry {name!r} uncompresses to more than {limits.max_member_bytes} bytes.",
        files=(name,),
    )


def _bomb(total: int, budget: int) -> PkpassError:
    return PkpassError(
        "ZIP_BOMB",
        f"The entries uncompress to at least {total} bytes, more than the {budget} bytes "
        "allowed for an archive of this size.",
    )
