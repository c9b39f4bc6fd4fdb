"""Checks that make a copy verified: the source is as planned, sizes and checksums agree."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import anyio

from cstor.domain.checksums import (
    MIB,
    composite_checksum,
    is_multipart_etag,
    md5_checksum,
    normalize_etag,
)
from cstor.s3.errors import S3Error, Site, from_answer

if TYPE_CHECKING:
    from collections.abc import Mapping

_GIL_KEPT = 2047
"""hashlib releases the GIL for buffers longer than this."""


async def md5_hex(data: bytes) -> str:
    """The MD5 hex digest of `data`, without stalling the event loop."""
    if len(data) >= MIB:
        # A thread: hashlib drops the GIL on large buffers, so the loop runs on meanwhile.
        return await anyio.to_thread.run_sync(
            lambda: hashlib.md5(data, usedforsecurity=False).hexdigest()
        )
    # Small slices keep the GIL: dropping it per object, then waiting to get it back
    # from the other threads, cost ten times the hashing itself.
    digest = hashlib.md5(usedforsecurity=False)
    view = memoryview(data)
    for start in range(0, len(view), _GIL_KEPT):
        digest.update(view[start : start + _GIL_KEPT])
    return digest.hexdigest()


def check_planned(where: Site, headers: Mapping[str, str], size: int, etag: str) -> None:
    """Raise `changed` unless a GET's answer from `where` has the planned Content-Length
    and ETag."""
    # Some stores (rclone serve s3) ignore If-Match, so check what came back too.
    length = headers.get("Content-Length", "")
    found_size = int(length) if length.isdigit() else None
    # Without a length (a chunked answer) the bytes read are counted instead (check_size).
    planned_size = size if found_size is not None else None
    found_etag = normalize_etag(headers.get("ETag"))
    check_found(where, planned_size, etag, found_size or 0, found_etag)


def check_found(where: Site, size: int | None, etag: str, found_size: int, found_etag: str) -> None:
    """Raise `changed` unless what was found at `where` has the planned size and ETag."""
    if (etag and found_etag and found_etag != etag) or (size is not None and found_size != size):
        raise changed(where, size, etag, found_size, found_etag)


def changed(
    where: Site,
    size: int | None,
    etag: str,
    found_size: int | None = None,
    found_etag: str = "",
) -> S3Error:
    """The source at `where` is not the object planned; `found_size` None where the store
    only refused the planned ETag (412)."""
    found = (
        f"found {found_size}, {found_etag!r}"
        if found_size is not None
        else "the store refused that ETag"
    )
    return S3Error(
        "source-changed",
        f"{object_at(where)} changed since it was planned "
        f"(planned {size} bytes, ETag {etag!r}; {found})",
    )


def object_at(where: Site) -> str:
    """`'k' in bucket 'b' at the source http://host:port`."""
    return f"{where.key!r} in bucket {where.bucket!r} at {where.store()}"


def read_refused(status: int, body: bytes, where: Site, size: int, etag: str) -> S3Error:
    """What an error answer to a GET of the planned source (If-Match its ETag) at `where`
    means for the copy: 412, it changed; 404 for the key, it is gone; else as the store
    said (a missing bucket too). Every message keeps the store's code and words."""
    if status == 412:
        return changed(where, size, etag)
    error = from_answer(status, body, where, "copying")
    if status == 404 and error.reason != "no-such-bucket":
        return S3Error("source-missing", f"{where.key!r} no longer exists: {error}")
    return error


def grown(where: Site, size: int) -> S3Error:
    """More than the planned `size` bytes came from the source at `where`."""
    return S3Error(
        "size-mismatch",
        f"more than the planned {size} bytes were read for {object_at(where)}",
        transient=True,
    )


def checksum_of(etag: str) -> str:
    return composite_checksum(etag) if is_multipart_etag(etag) else md5_checksum(etag)


def check_size(where: Site, found: int, expected: int, how: str = "were read for") -> None:
    """Raise unless the object at `where` has the source's `expected` size (`found` bytes
    read from the source, or, `how` "are stored for", at the destination)."""
    if found != expected:
        raise S3Error(
            "size-mismatch",
            f"{found} bytes {how} {object_at(where)}, the source has {expected}",
            transient=True,
        )


def check_etag(where: Site, written: str, expected: str) -> None:
    """Raise unless the destination's copy at `where` has the ETag its bytes give."""
    if written != expected:
        raise S3Error(
            "checksum-mismatch",
            f"{where.store()} stored {where.key!r} in bucket {where.bucket!r} with ETag "
            f"{written or 'none'}, the bytes sent give {expected}",
            transient=True,
        )
