"""How S3 checksums and multipart part sizes work, as pure functions.

S3 gives a single-part object the MD5 of its bytes as ETag, and a multipart
object `md5(concat(part md5s))-<number of parts>`; so a copy is verified by
computing the same from the bytes that were streamed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

SOURCE_ETAG_METADATA = "cstor-source-etag"
"""User metadata cstor writes on a multipart copy: the source's ETag. Part sizes make
multipart ETags incomparable, so a later sync compares this instead."""

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART_SIZE = 5 * MIB
"""S3's smallest part (all parts but the last)."""
MAX_PART_SIZE = 5 * GIB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MIB


class ObjectTooLarge(ValueError):
    """The object cannot be uploaded in at most 10,000 parts of at most 5 GiB."""


def part_size_for(size: int, min_part: int = DEFAULT_PART_SIZE) -> int:
    """The part size for an object of `size` bytes: `min_part`, grown in whole MiB to fit.

    No upload needs more than 10,000 parts; a part is never over 5 GiB.
    """
    part = max(min_part, MIN_PART_SIZE)
    if size > part * MAX_PARTS:
        needed = -(-size // MAX_PARTS)
        part = -(-needed // MIB) * MIB
    if part > MAX_PART_SIZE:
        raise ObjectTooLarge(f"{size} bytes do not fit in {MAX_PARTS} parts of 5 GiB")
    return part


def parts_in_flight_for(size: int, limit: int) -> int:
    """Parts to upload in parallel: two per 100 MiB of object, at least two, at most `limit`."""
    return max(1, min(limit, max(2, 2 * -(-size // (100 * MIB)))))


def normalize_etag(etag: str | None) -> str:
    """An ETag without its quotes or weak marker: `W/"abc"` → `abc`."""
    if not etag:
        return ""
    return etag.removeprefix("W/").strip('"')


def is_multipart_etag(etag: str) -> bool:
    """Whether an ETag is a multipart composite (`<hex>-<parts>`), not an MD5."""
    return "-" in normalize_etag(etag)


_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


def is_md5_etag(etag: str) -> bool:
    """Whether an ETag looks like the plain MD5 of the object's bytes."""
    return _MD5_HEX.fullmatch(normalize_etag(etag)) is not None


def composite_etag(part_md5s: Sequence[bytes]) -> str:
    """The ETag S3 gives a multipart object whose parts had these MD5 digests."""
    combined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(part_md5s)}"


def md5_checksum(md5_hex: str) -> str:
    """The recorded checksum of a single-part copy: `md5:<hex>`."""
    return f"md5:{md5_hex}"


def composite_checksum(etag: str) -> str:
    """The recorded checksum of a multipart copy: `md5-parts:<hex>-<parts>`."""
    return f"md5-parts:{normalize_etag(etag)}"
