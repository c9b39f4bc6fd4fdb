"""ETag and part maths, and the additional checksums, as S3 computes them; no server.

What a copy is verified by: the MD5 of a single-part object, the composite ETag of a
multipart one (the MD5 of its parts' MD5s, and their count), and the CRC/SHA
checksums S3 keeps besides.
"""

from __future__ import annotations

import base64
import hashlib
import random
import zlib
from collections.abc import AsyncIterator

import pytest

from cstor.domain.checksums import (
    DEFAULT_PART_SIZE,
    GIB,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    SOURCE_ETAG_METADATA,
    AdditionalChecksum,
    ObjectTooLarge,
    composite_checksum,
    composite_etag,
    composite_value,
    is_md5_etag,
    is_multipart_etag,
    md5_checksum,
    needs_source_etag,
    new_digest,
    normalize_etag,
    parse_additional,
    part_size_for,
    parts_in_flight_for,
    with_source_etag,
)
from cstor.s3 import md5
from cstor.s3.checksums import (
    StreamChecksums,
    check_kept,
    check_read,
    checksum_headers,
    composite_of,
    digest_of,
    header_name,
)
from cstor.s3.errors import S3Error

MD5_HEX = hashlib.md5(b"hello").hexdigest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def parts_of(data: bytes, part_size: int) -> list[bytes]:
    return [data[i : i + part_size] for i in range(0, len(data), part_size)] or [b""]


def s3_etag(data: bytes, part_size: int) -> str:
    """The ETag S3 gives `data` uploaded in parts of `part_size`, computed the long way."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts_of(data, part_size))
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts_of(data, part_size))}"


# Part sizes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        1,
        MIB,
        DEFAULT_PART_SIZE * MAX_PARTS - 1,
        DEFAULT_PART_SIZE * MAX_PARTS,
        DEFAULT_PART_SIZE * MAX_PARTS + 1,
        100 * GIB,
        1024 * GIB + 12345,
        5 * 1024 * GIB,
        MAX_PART_SIZE * MAX_PARTS,
    ],
)
def test_a_part_size_keeps_every_upload_within_s3s_limits(size: int) -> None:
    part = part_size_for(size)
    # Never more than 10,000 parts, never a part under 5 MiB or over 5 GiB
    assert -(-size // part) <= MAX_PARTS
    assert MIN_PART_SIZE <= part <= MAX_PART_SIZE
    # Whole MiB, and no larger than needed: one MiB less would take too many parts
    assert part % MIB == 0
    if part > DEFAULT_PART_SIZE:
        assert -(-size // (part - MIB)) > MAX_PARTS


@pytest.mark.parametrize(
    ("min_part", "part"),
    [
        (0, MIN_PART_SIZE),
        (MIN_PART_SIZE - 1, MIN_PART_SIZE),
        (16 * MIB, 16 * MIB),
        (6 * MIB + 1, 6 * MIB + 1),
    ],
)
def test_the_configured_part_size_is_kept_when_it_is_at_least_s3s_minimum(
    min_part: int, part: int
) -> None:
    assert part_size_for(10 * MIB, min_part=min_part) == part


def test_the_largest_object_s3_can_hold_fits_and_one_byte_more_does_not() -> None:
    assert part_size_for(MAX_PART_SIZE * MAX_PARTS) == MAX_PART_SIZE
    with pytest.raises(ObjectTooLarge, match="10000 parts of 5 GiB"):
        part_size_for(MAX_PART_SIZE * MAX_PARTS + 1)


@pytest.mark.parametrize(
    ("size", "limit", "in_flight"),
    [
        (0, 8, 2),
        (1, 8, 2),
        (100 * MIB, 8, 2),
        (100 * MIB + 1, 8, 4),
        (300 * MIB, 30, 6),
        (10 * GIB, 30, 30),
        (10 * GIB, 1, 1),  # a limit of one is kept, though two is the least otherwise
        (1, 0, 1),  # never zero parts in flight
    ],
)
def test_parts_in_flight_grow_with_the_object_within_the_limit(
    size: int, limit: int, in_flight: int
) -> None:
    assert parts_in_flight_for(size, limit) == in_flight


# ETags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("etag", "normal"),
    [
        (f'"{MD5_HEX}"', MD5_HEX),
        (f'W/"{MD5_HEX}"', MD5_HEX),
        (MD5_HEX, MD5_HEX),
        (f'"{MD5_HEX}-12"', f"{MD5_HEX}-12"),
        ("", ""),
        (None, ""),
    ],
)
def test_an_etag_is_compared_without_quotes_or_weak_marker(etag: str | None, normal: str) -> None:
    assert normalize_etag(etag) == normal


@pytest.mark.parametrize(
    ("etag", "md5_like", "multipart"),
    [
        (MD5_HEX, True, False),
        (MD5_HEX.upper(), True, False),
        (f'"{MD5_HEX}"', True, False),
        (f"{MD5_HEX}-2", False, True),
        (f'"{MD5_HEX}-10000"', False, True),
        (MD5_HEX[:-1], False, False),  # 31 hex digits: no MD5
        (MD5_HEX + "0", False, False),
        ("z" * 32, False, False),
        ("", False, False),
    ],
)
def test_md5_and_multipart_etags_are_told_apart(etag: str, md5_like: bool, multipart: bool) -> None:
    assert is_md5_etag(etag) is md5_like
    assert is_multipart_etag(etag) is multipart


@pytest.mark.parametrize(("size", "part_size"), [(1, 5), (10, 5), (11, 5), (4096 * 3 + 17, 4096)])
def test_the_composite_of_part_md5s_is_the_etag_s3_gives(size: int, part_size: int) -> None:
    # Given an object's bytes cut into parts as an upload sends them
    data = random.Random(size).randbytes(size)
    pieces = [[memoryview(p)] for p in parts_of(data, part_size)]
    # When the parts' MD5s are hashed (side by side where they have one length)
    part_md5s = [bytes.fromhex(h) for h in md5.md5s_of(pieces)]
    # Then their composite is the multipart ETag, with the number of parts
    assert composite_etag(part_md5s) == s3_etag(data, part_size)
    assert composite_etag(part_md5s).endswith(f"-{len(pieces)}")


def test_the_same_bytes_in_other_parts_have_another_etag() -> None:
    # Why multipart ETags of different part sizes cannot be compared
    data = bytes(range(256)) * 100
    assert s3_etag(data, 1000) != s3_etag(data, 2000)
    assert is_multipart_etag(s3_etag(data, 1000))


def test_copies_are_recorded_by_md5_or_by_their_composite() -> None:
    assert md5_checksum(MD5_HEX) == f"md5:{MD5_HEX}"
    assert composite_checksum(f'"{MD5_HEX}-3"') == f"md5-parts:{MD5_HEX}-3"


# The source's ETag stamped on a copy ---------------------------------------------------


@pytest.mark.parametrize(
    ("etag", "in_parts", "needed"),
    [
        (MD5_HEX, False, False),  # the single-part copy's ETag is the same MD5
        (f'"{MD5_HEX}"', False, False),
        (MD5_HEX, True, True),  # copied in parts: the copy's ETag is multipart
        (f"{MD5_HEX}-4", False, True),  # a multipart source copied whole: its MD5 is not it
        (f"{MD5_HEX}-4", True, True),  # in other parts, another multipart ETag
        ("", False, False),  # nothing to compare: no stamp
        ("", True, False),
    ],
    ids=["md5-whole", "md5-quoted", "md5-in-parts", "multipart-whole", "multipart-in-parts",
         "none-whole", "none-in-parts"],
)  # fmt: skip
def test_a_copy_is_stamped_unless_its_own_etag_is_the_sources(
    etag: str, in_parts: bool, needed: bool
) -> None:
    assert needs_source_etag(etag, in_parts=in_parts) is needed
    stamped = with_source_etag({"team": "storage"}, etag, in_parts=in_parts)
    expected = {SOURCE_ETAG_METADATA: normalize_etag(etag)} if needed else {}
    assert stamped == {"team": "storage", **expected}


def test_the_stamp_replaces_the_one_a_source_carried_and_nothing_of_the_users() -> None:
    # Given a source that is itself a copy, its stamp capitalised (as rclone gives keys)
    attributes = {"Content-Type": "text/csv", "Team": "storage", "Cstor-Source-Etag": "old-2"}

    # When its copy is stamped
    stamped = with_source_etag(attributes, f"{MD5_HEX}-4", in_parts=False)

    # Then the copy carries one stamp, this source's, and the user's keys as they were
    assert stamped == {
        "Content-Type": "text/csv", "Team": "storage", SOURCE_ETAG_METADATA: f"{MD5_HEX}-4"
    }  # fmt: skip
    assert attributes["Cstor-Source-Etag"] == "old-2"  # the source's own are left alone


# Additional checksums ------------------------------------------------------------------


def test_crc32c_gives_the_standard_check_value() -> None:
    # The CRC-32C (Castagnoli) check value of "123456789" is 0xE3069283
    digest = new_digest("CRC32C")
    digest.update(b"123456789")
    assert digest.digest() == bytes.fromhex("e3069283")


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("CRC32", lambda d: zlib.crc32(d).to_bytes(4, "big")),
        ("SHA1", lambda d: hashlib.sha1(d).digest()),
        ("SHA256", lambda d: hashlib.sha256(d).digest()),
    ],
)
def test_a_running_digest_fed_in_pieces_is_the_digest_of_the_whole(
    algorithm: str, expected: object
) -> None:
    data = random.Random(3).randbytes(10_000)
    pieces = [memoryview(data)[i : i + 777] for i in range(0, len(data), 777)]
    assert digest_of(algorithm, pieces) == b64(expected(data))  # type: ignore[operator]


@pytest.mark.parametrize("algorithm", ["MD5", "CRC64NVME", "crc32", ""])
def test_an_algorithm_cstor_does_not_compute_is_refused(algorithm: str) -> None:
    with pytest.raises(ValueError, match="not an additional checksum cstor computes"):
        new_digest(algorithm)


def test_a_composite_is_the_digest_of_the_decoded_part_digests() -> None:
    parts = [hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()]
    expected = b64(hashlib.sha256(b"".join(parts)).digest())
    assert composite_value("SHA256", [b64(p) for p in parts]) == f"{expected}-2"
    # And from numbered parts, in their numbers' order whatever the mapping's order
    numbered = {2: b64(parts[1]), 1: b64(parts[0])}
    assert composite_of("SHA256", numbered, 2) == f"{expected}-2"


@pytest.mark.parametrize(
    ("checksum", "recorded"),
    [
        (AdditionalChecksum(algorithm="CRC32", value="AAAAAA=="), "crc32:AAAAAA=="),
        (AdditionalChecksum(algorithm="SHA1", value="x=", parts=4), "sha1-parts:x=-4"),
        # A store that did not say how many parts: the count is left off
        (AdditionalChecksum(algorithm="CRC32C", value="x=", parts=-1), "crc32c-parts:x="),
    ],
)
def test_a_checksum_is_recorded_with_its_algorithm_and_parts(
    checksum: AdditionalChecksum, recorded: str
) -> None:
    assert checksum.recorded() == recorded
    assert checksum.composite is (checksum.parts != 0)


def test_a_header_with_a_part_count_is_composite_whatever_the_hints() -> None:
    parsed = parse_additional("SHA256", "abc=-7", "FULL_OBJECT", MD5_HEX)
    assert (parsed.value, parsed.parts) == ("abc=", 7)


def test_a_composite_header_of_a_multipart_etag_without_a_count_is_uncounted() -> None:
    parsed = parse_additional("CRC32", "abc=", "COMPOSITE", f"{MD5_HEX}-x")
    assert (parsed.value, parsed.parts) == ("abc=", -1)


def test_checksum_headers_name_the_algorithm_as_s3_and_the_sdk_do() -> None:
    assert header_name("CRC32C") == "x-amz-checksum-crc32c"
    assert checksum_headers("SHA256", "v=") == {
        "x-amz-checksum-sha256": "v=",
        "x-amz-sdk-checksum-algorithm": "SHA256",
    }


# Checking what was read and what the destination kept ----------------------------------------


async def test_bytes_read_are_checked_against_the_full_object_checksum() -> None:
    data = b"x" * (MIB + 5)  # large enough to be hashed in a thread
    good = AdditionalChecksum(algorithm="CRC32", value=digest_of("CRC32", [data]))
    await check_read("k", data, good)
    with pytest.raises(S3Error, match="the bytes read of 'k' has checksum") as raised:
        await check_read("k", data[:-1], good)
    assert (raised.value.reason, raised.value.transient) == ("checksum-mismatch", True)


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("chunk", [1, 7, 10, 64, 1000])
async def test_a_stream_is_checksummed_part_by_part_whatever_its_chunks(chunk: int) -> None:
    # Given 35 bytes streamed in chunks that do not line up with parts of 10
    data = random.Random(chunk).randbytes(35)
    parts: dict[int, str] = {}
    stream = StreamChecksums("CRC32C", size=len(data), part_size=10, parts=parts, whole=True)
    # When the chunks pass
    passed = [c async for c in stream.passing(chunks_of(data, chunk))]
    # Then they pass unchanged, and each part's checksum is that of its own bytes
    assert b"".join(passed) == data
    assert parts == {n + 1: digest_of("CRC32C", [p]) for n, p in enumerate(parts_of(data, 10))}
    whole = AdditionalChecksum(algorithm="CRC32C", value=digest_of("CRC32C", [data]))
    stream.check_whole("k", whole)
    with pytest.raises(S3Error, match="the bytes read of 'k' has checksum"):
        stream.check_whole("k", AdditionalChecksum(algorithm="CRC32C", value="AAAAAA=="))


async def test_bytes_past_the_planned_size_are_not_counted_into_a_part() -> None:
    parts: dict[int, str] = {}
    stream = StreamChecksums("SHA1", size=10, part_size=10, parts=parts, whole=False)
    _ = [c async for c in stream.passing(chunks_of(b"a" * 10 + b"extra", 15))]
    assert parts == {1: digest_of("SHA1", [b"a" * 10])}


SENT = "c29tZQ==-3"


@pytest.mark.parametrize(
    ("stored", "whole", "kept"),
    [
        (None, "", None),
        (AdditionalChecksum(algorithm="SHA1", value="c29tZQ==", parts=3), "", None),
        (
            AdditionalChecksum(algorithm="CRC32", value="c29tZQ==", parts=3),
            "",
            AdditionalChecksum(algorithm="CRC32", value="c29tZQ==", parts=3),
        ),
        # moto hands the composite back without the number of parts
        (
            AdditionalChecksum(algorithm="CRC32", value="c29tZQ==", parts=-1),
            "",
            AdditionalChecksum(algorithm="CRC32", value="c29tZQ==", parts=3),
        ),
        # A full-object value asked for and kept
        (
            AdditionalChecksum(algorithm="CRC32", value="d2hvbGU="),
            "d2hvbGU=",
            AdditionalChecksum(algorithm="CRC32", value="d2hvbGU="),
        ),
    ],
    ids=["nothing-kept", "other-algorithm", "composite", "uncounted-composite", "full-object"],
)
def test_what_the_destination_kept_is_compared_with_what_was_sent(
    stored: AdditionalChecksum | None, whole: str, kept: AdditionalChecksum | None
) -> None:
    assert check_kept("k", "CRC32", SENT, whole, stored) == kept


@pytest.mark.parametrize(
    "stored",
    [
        AdditionalChecksum(algorithm="CRC32", value="b3RoZXI=", parts=3),
        AdditionalChecksum(algorithm="CRC32", value="c29tZQ==", parts=2),
    ],
    ids=["other-value", "other-count"],
)
def test_a_destination_that_kept_another_checksum_fails_the_copy(
    stored: AdditionalChecksum,
) -> None:
    with pytest.raises(S3Error, match="the destination's copy of 'k'") as raised:
        check_kept("k", "CRC32", SENT, "", stored)
    assert raised.value.reason == "checksum-mismatch"
