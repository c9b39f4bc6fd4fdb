"""How S3 checksums and multipart part sizes work, as pure functions.

S3 gives a single-part object the MD5 of its bytes as ETag, and a multipart
object `md5(concat(part md5s))-<number of parts>`; so a copy is verified by
computing the same from the bytes that were streamed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import crc32c
import msgspec

SOURCE_ETAG_METADATA = "cstor-source-etag"
"""User metadata cstor writes on a copy whose own ETag will not be the source's: the
source's ETag (see `with_source_etag`). A later sync compares this instead."""

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


def needs_source_etag(etag: str, *, in_parts: bool) -> bool:
    """Whether a copy of a source with `etag` needs it stamped for a sync to find it identical.

    A copy made in one part gets the MD5 of its bytes as ETag, which is an MD5 source's
    own: no. Any other copy (in parts: part sizes make multipart ETags incomparable), or
    copy of a source whose ETag is not an MD5 (a multipart source copied whole): yes,
    unless the source has no ETag to compare.
    """
    etag = normalize_etag(etag)
    return bool(etag) and (in_parts or not is_md5_etag(etag))


def with_source_etag(attributes: Mapping[str, str], etag: str, *, in_parts: bool) -> dict[str, str]:
    """A copy's attributes (content headers, user metadata), stamped with the source's
    ETag where the copy needs it (`needs_source_etag`).

    A stamp the source carried, in any case (rclone capitalises metadata keys), gives
    way to the copy's own; the user's keys stay as they are.
    """
    if not needs_source_etag(etag, in_parts=in_parts):
        return dict(attributes)
    kept = {k: v for k, v in attributes.items() if k.lower() != SOURCE_ETAG_METADATA}
    return {**kept, SOURCE_ETAG_METADATA: normalize_etag(etag)}


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


# S3's additional checksums ---------------------------------------------------------

ADDITIONAL_ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")
"""The additional checksums cstor computes (CRC64NVME is not among them: it falls back to MD5).

A single-part object's value is the digest of its bytes; a multipart object's is a
full-object one (CRCs only), or a composite: the digest of its parts' digests
concatenated, `-<number of parts>` after it."""


BytesLike = bytes | bytearray | memoryview


class Digest(Protocol):
    """A running checksum: hashlib's interface, which the CRCs below follow."""

    def update(self, data: BytesLike, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A CRC as a running digest: its 32 bits, big-endian, as S3 encodes them."""

    def __init__(self, function: Callable[[BytesLike, int], int]) -> None:
        self._function = function
        self._value = 0

    def update(self, data: BytesLike, /) -> None:
        self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def new_digest(algorithm: str) -> Digest:
    """A running digest for one of ADDITIONAL_ALGORITHMS."""
    if algorithm == "CRC32":
        return _Crc(zlib.crc32)
    if algorithm == "CRC32C":
        return _Crc(crc32c.crc32c)
    if algorithm == "SHA1":
        return hashlib.sha1(usedforsecurity=False)
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise ValueError(f"not an additional checksum cstor computes: {algorithm!r}")


def digest_value(digest: Digest) -> str:
    """A digest as S3 writes it in x-amz-checksum-* headers: base64."""
    return base64.b64encode(digest.digest()).decode()


def composite_value(algorithm: str, part_values: Sequence[str]) -> str:
    """A multipart object's composite checksum from its parts' values: `<base64>-<parts>`."""
    digest = new_digest(algorithm)
    digest.update(b"".join(base64.b64decode(value) for value in part_values))
    return f"{digest_value(digest)}-{len(part_values)}"


class AdditionalChecksum(msgspec.Struct, frozen=True, kw_only=True):
    """An object's additional checksum: its algorithm and base64 value.

    `parts` is 0 for a full-object value, else the parts of a composite one
    (-1 where the store did not say how many).
    """

    algorithm: str
    value: str
    parts: int = 0

    @property
    def composite(self) -> bool:
        return self.parts != 0

    def recorded(self) -> str:
        """How a copy verified by it is recorded: `crc32c:<b64>` or `crc32c-parts:<b64>-<n>`."""
        name = self.algorithm.lower()
        if not self.composite:
            return f"{name}:{self.value}"
        return (
            f"{name}-parts:{self.value}-{self.parts}"
            if self.parts > 0
            else f"{name}-parts:{self.value}"
        )


def parse_additional(
    algorithm: str, header: str, kind: str = "", etag: str = ""
) -> AdditionalChecksum:
    """The checksum in an `x-amz-checksum-<algorithm>` value (`<b64>` or `<b64>-<parts>`).

    `kind` is x-amz-checksum-type, where the store sent it: COMPOSITE or FULL_OBJECT.
    Without either hint, a multipart object's (by its `etag`) is taken as composite:
    some stores (moto) leave both off.
    """
    value, _, parts = header.partition("-")
    if parts.isdigit():
        return AdditionalChecksum(algorithm=algorithm, value=value, parts=int(parts))
    if kind == "COMPOSITE" or (kind != "FULL_OBJECT" and is_multipart_etag(etag)):
        count = normalize_etag(etag).rpartition("-")[2]
        return AdditionalChecksum(
            algorithm=algorithm, value=value, parts=int(count) if count.isdigit() else -1
        )
    return AdditionalChecksum(algorithm=algorithm, value=value)
