"""Copies of objects with S3 additional checksums (CRC32C, SHA-256): sent, checked, recorded.

moto keeps additional checksums; rclone serve s3 does not, and its copies fall
back to MD5. moto does not check a checksum it is sent against the bytes (it
keeps what it was told), which is how a source whose bytes and checksum
disagree is made here.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import crc32c
import pytest

from cstor import s3
from cstor.domain.checksums import (
    MIB,
    SOURCE_ETAG_METADATA,
    AdditionalChecksum,
    composite_value,
    digest_value,
    new_digest,
    parse_additional,
)
from launcher.embedded import EmbeddedS3
from tests.s3_objects import MemoryJournal, endpoint_of, open_uploads, other_keys, parts_of, planned
from tests.stack import RunningCstor

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MakeBucket = Callable[[EmbeddedS3], str]
ClientFor = Callable[[EmbeddedS3], "S3Client"]


def crc32c_of(data: bytes) -> str:
    return base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode()


def sha256_of(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def composite_crc32c(body: bytes, part: int) -> str:
    """S3's composite CRC32C of `body` uploaded in parts of `part` bytes: `<b64>-<n>`."""
    parts = [
        crc32c.crc32c(body[i : i + part]).to_bytes(4, "big") for i in range(0, len(body), part)
    ]
    return f"{crc32c_of(b''.join(parts))}-{len(parts)}"


def put_with_crc32c(client: S3Client, bucket: str, key: str, body: bytes, value: str) -> None:
    client.put_object(
        Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="CRC32C", ChecksumCRC32C=value
    )


def moto_copier(moto_s3: EmbeddedS3) -> s3.ObjectCopier:
    """GET -> PUT between two keys of one moto (not the same keys: not on the server)."""
    return s3.ObjectCopier(
        endpoint_of(moto_s3), other_keys(moto_s3), multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
    )  # fmt: skip


# How checksums are computed, read and recorded (unit) --------------------------------


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [
        ("CRC32", "NhCmhg=="),  # 0x3610a686
        ("CRC32C", "mnG7TA=="),  # 0x9a71bb4c
        ("SHA1", "qvTGHdzF6KLavt4PO0gs2a6pQ00="),
        ("SHA256", "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),
    ],
)
def test_each_algorithm_gives_the_value_s3_gives(algorithm: str, value: str) -> None:
    digest = new_digest(algorithm)
    digest.update(b"hel")
    digest.update(b"lo")
    assert digest_value(digest) == value


def test_a_composite_is_the_checksum_of_the_parts_checksums_with_their_count() -> None:
    body = os.urandom(3 * 1000 + 7)
    parts = [crc32c_of(body[i : i + 1000]) for i in range(0, len(body), 1000)]
    assert composite_value("CRC32C", parts) == composite_crc32c(body, 1000)


@pytest.mark.parametrize(
    ("header", "kind", "etag", "parsed"),
    [
        ("mnG7TA==", "", "5d41402abc4b2a76b9719d911017c592", ("mnG7TA==", 0)),
        ("HOobSQ==-2", "COMPOSITE", "", ("HOobSQ==", 2)),
        ("HOobSQ==", "COMPOSITE", "", ("HOobSQ==", -1)),
        ("HOobSQ==", "", "0f343b0931126a20f133d67c2b018a3b-2", ("HOobSQ==", 2)),
        ("HOobSQ==", "FULL_OBJECT", "0f343b0931126a20f133d67c2b018a3b-2", ("HOobSQ==", 0)),
    ],
    ids=["single-part", "composite", "composite-uncounted", "multipart-etag", "full-object"],
)
def test_a_stores_checksum_header_is_read_as_full_object_or_composite(
    header: str, kind: str, etag: str, parsed: tuple[str, int]
) -> None:
    checksum = parse_additional("CRC32C", header, kind, etag)
    assert (checksum.value, checksum.parts) == parsed


def test_copies_are_recorded_by_algorithm_value_and_parts() -> None:
    assert AdditionalChecksum(algorithm="CRC32C", value="mnG7TA==").recorded() == (
        "crc32c:mnG7TA=="
    )
    assert AdditionalChecksum(algorithm="SHA256", value="x=", parts=3).recorded() == (
        "sha256-parts:x=-3"
    )


# Single-part copies -----------------------------------------------------------------


async def test_a_crc32c_object_is_copied_with_its_checksum_and_recorded_by_it(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object on moto stored with its CRC32C
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(3000)
    put_with_crc32c(client, source, "k", body, crc32c_of(body))
    listed = planned(moto_s3, source, "k")

    # When it is copied by GET -> PUT
    outcome = await moto_copier(moto_s3).copy(
        source, "k", destination, "k", listed.size, listed.etag
    )

    # Then the copy is recorded by its CRC32C, which the destination keeps too
    assert outcome == s3.CopyOutcome(size=3000, checksum=f"crc32c:{crc32c_of(body)}")
    copy = client.head_object(Bucket=destination, Key="k", ChecksumMode="ENABLED")
    assert copy["ChecksumCRC32C"] == crc32c_of(body)
    assert client.get_object(Bucket=destination, Key="k")["Body"].read() == body


async def test_a_sha256_object_is_copied_with_its_checksum_and_keeps_its_metadata(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object on moto stored with its SHA-256, a content type, metadata and tags
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(70_000)
    client.put_object(
        Bucket=source, Key="k", Body=body, ChecksumAlgorithm="SHA256",
        ContentType="image/png", Metadata={"team": "storage"}, Tagging="tier=gold",
    )  # fmt: skip
    listed = planned(moto_s3, source, "k")

    # When it is copied by GET -> PUT
    outcome = await moto_copier(moto_s3).copy(
        source, "k", destination, "k", listed.size, listed.etag
    )

    # Then it is recorded by its SHA-256, kept at the destination with the rest
    assert outcome == s3.CopyOutcome(size=70_000, checksum=f"sha256:{sha256_of(body)}")
    copy = client.head_object(Bucket=destination, Key="k", ChecksumMode="ENABLED")
    assert copy["ChecksumSHA256"] == sha256_of(body)
    assert (copy["ContentType"], copy["Metadata"]) == ("image/png", {"team": "storage"})
    tags = client.get_object_tagging(Bucket=destination, Key="k")["TagSet"]
    assert tags == [{"Key": "tier", "Value": "gold"}]


async def test_an_object_without_additional_checksum_is_still_recorded_by_md5(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object on moto stored without an additional checksum
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    client.put_object(Bucket=source, Key="k", Body=b"plain")
    listed = planned(moto_s3, source, "k")

    # When it is copied
    outcome = await moto_copier(moto_s3).copy(
        source, "k", destination, "k", listed.size, listed.etag
    )

    # Then it is recorded by MD5, and the copy has no additional checksum either
    assert outcome.checksum == f"md5:{hashlib.md5(b'plain').hexdigest()}"
    copy = client.head_object(Bucket=destination, Key="k", ChecksumMode="ENABLED")
    assert "ChecksumCRC32C" not in copy
    assert "ChecksumSHA256" not in copy


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-part", "multipart"])
async def test_a_checksummed_copy_gets_the_migrations_storage_class_and_expires(
    size: int, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a CRC32C object with an Expires header
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(size)
    expires = datetime(2031, 1, 1, tzinfo=UTC)
    client.put_object(
        Bucket=source, Key="k", Body=body, Expires=expires,
        ChecksumAlgorithm="CRC32C", ChecksumCRC32C=crc32c_of(body),
    )  # fmt: skip
    listed = planned(moto_s3, source, "k")

    # When it is copied for a migration that asks for STANDARD_IA
    outcome = await moto_copier(moto_s3).copy(
        source, "k", destination, "k", listed.size, listed.etag,
        options=s3.CopyOptions(storage_class="STANDARD_IA"),
    )  # fmt: skip

    # Then the copy is recorded by CRC32C and keeps the class and Expires
    assert outcome.checksum.startswith("crc32c")
    copy = client.head_object(Bucket=destination, Key="k")
    assert (copy["StorageClass"], copy["Expires"]) == ("STANDARD_IA", expires)


# Multipart copies -------------------------------------------------------------------


async def test_a_large_crc32c_object_goes_in_parts_and_keeps_its_full_object_crc32c(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a 12 MiB object on moto stored in one PUT with its CRC32C
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(12 * MIB)
    put_with_crc32c(client, source, "big", body, crc32c_of(body))
    listed = planned(moto_s3, source, "big")

    # When it is copied in parts of 5 MiB
    outcome = await moto_copier(moto_s3).copy(
        source, "big", destination, "big", listed.size, listed.etag
    )

    # Then the parts carried CRC32Cs, and the copy keeps, and is recorded by, the
    # source's own full-object CRC32C (whatever the part size)
    assert outcome == s3.CopyOutcome(size=12 * MIB, checksum=f"crc32c:{crc32c_of(body)}")
    copy = client.get_object(Bucket=destination, Key="big", ChecksumMode="ENABLED")
    assert (copy["ChecksumCRC32C"], copy["ChecksumType"]) == (crc32c_of(body), "FULL_OBJECT")
    assert copy["Body"].read() == body
    assert open_uploads(client, destination) == []


async def test_a_large_sha256_object_goes_in_parts_recorded_by_their_composite(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a 12 MiB object on moto stored in one PUT with its SHA-256 (which S3 keeps
    # for multipart objects only as a composite)
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(12 * MIB)
    client.put_object(Bucket=source, Key="big", Body=body, ChecksumAlgorithm="SHA256")
    listed = planned(moto_s3, source, "big")

    # When it is copied in parts of 5 MiB
    outcome = await moto_copier(moto_s3).copy(
        source, "big", destination, "big", listed.size, listed.etag
    )

    # Then the copy is recorded by the composite of its parts' SHA-256s
    part = 5 * MIB
    digests = [hashlib.sha256(body[i : i + part]).digest() for i in range(0, len(body), part)]
    composite = f"{sha256_of(b''.join(digests))}-{len(digests)}"
    assert outcome == s3.CopyOutcome(size=12 * MIB, checksum=f"sha256-parts:{composite}")
    copy = client.get_object(Bucket=destination, Key="big", ChecksumMode="ENABLED")
    assert (copy["ChecksumSHA256"], copy["ChecksumType"]) == (composite, "COMPOSITE")
    assert copy["Body"].read() == body


def upload_with_crc32c(client: S3Client, bucket: str, key: str, body: bytes, part: int) -> None:
    """Store `body` on moto as a multipart upload with CRC32Cs: its checksum is a composite."""
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32C")[
        "UploadId"
    ]
    parts = []
    for number, start in enumerate(range(0, len(body), part), start=1):
        chunk = body[start : start + part]
        answer = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk,
            ChecksumAlgorithm="CRC32C", ChecksumCRC32C=crc32c_of(chunk),
        )  # fmt: skip
        parts.append(
            {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32C": crc32c_of(chunk)}
        )
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


@pytest.mark.parametrize("threshold", [64 * MIB, 5 * MIB], ids=["single-part", "multipart"])
async def test_a_source_with_a_composite_checksum_is_not_mistaken_for_a_corrupt_one(
    threshold: int, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an 11 MiB object uploaded to moto in 5 MiB parts with CRC32Cs (moto's HEAD
    # gives its composite without the number of parts or the checksum type)
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(11 * MIB)
    upload_with_crc32c(client, source, "mp", body, 5 * MIB)
    listed = planned(moto_s3, source, "mp")
    copier = s3.ObjectCopier(
        endpoint_of(moto_s3), other_keys(moto_s3), multipart_threshold=threshold,
        min_part_size=5 * MIB,
    )  # fmt: skip

    # When it is copied in one PUT, or in parts
    outcome = await copier.copy(source, "mp", destination, "mp", listed.size, listed.etag)

    # Then it verifies: by MD5 in one PUT (a composite says nothing of the whole), by
    # the parts' composite CRC32C in parts
    if threshold > 11 * MIB:
        assert outcome.checksum == f"md5:{hashlib.md5(body).hexdigest()}"
    else:
        assert outcome.checksum == f"crc32c-parts:{composite_crc32c(body, 5 * MIB)}"
    assert client.get_object(Bucket=destination, Key="mp")["Body"].read() == body


async def test_a_crc32c_upload_interrupted_resumes_with_the_checksums_of_its_parts(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a 23 MiB CRC32C object whose upload of 5 MiB parts, with CRC32Cs, crashed
    # after parts 1 and 2, as the journal recorded
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(23 * MIB)
    put_with_crc32c(client, source, "big", body, crc32c_of(body))
    listed = planned(moto_s3, source, "big")
    upload_id = client.create_multipart_upload(
        Bucket=destination, Key="big", ChecksumAlgorithm="CRC32C"
    )["UploadId"]
    md5s = {}
    for number in (1, 2):
        part = body[(number - 1) * 5 * MIB : number * 5 * MIB]
        client.upload_part(
            Bucket=destination, Key="big", UploadId=upload_id, PartNumber=number, Body=part,
            ChecksumAlgorithm="CRC32C", ChecksumCRC32C=crc32c_of(part),
        )  # fmt: skip
        md5s[number] = hashlib.md5(part).hexdigest()
    journal = MemoryJournal()
    journal.uploads["object-1"] = s3.JournaledUpload(
        bucket=destination, key="big", upload_id=upload_id, part_size=5 * MIB,
        source_etag=listed.etag, parts=md5s, checksum_algorithm="CRC32C",
    )  # fmt: skip
    copier = s3.ObjectCopier(
        endpoint_of(moto_s3), other_keys(moto_s3),
        multipart_threshold=5 * MIB, min_part_size=5 * MIB, journal=journal,
    )  # fmt: skip

    # When the copy runs again under the same journal key
    outcome = await copier.copy(
        source, "big", destination, "big", listed.size, listed.etag, upload_key="object-1"
    )

    # Then only parts 3 to 5 were sent, and the composite of all five is recorded
    assert sorted(journal.parts_done) == [3, 4, 5]
    composite = composite_crc32c(body, 5 * MIB)
    assert outcome == s3.CopyOutcome(size=23 * MIB, checksum=f"crc32c-parts:{composite}")
    assert client.get_object(Bucket=destination, Key="big")["Body"].read() == body
    assert open_uploads(client, destination) == []


# Sources whose bytes do not match their checksum -------------------------------------


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-part", "multipart"])
async def test_a_source_whose_bytes_do_not_match_its_checksum_is_not_copied(
    size: int, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object whose stored CRC32C is not that of its bytes (moto keeps what it is told)
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(size)
    put_with_crc32c(client, source, "k", body, crc32c_of(b"other bytes"))
    listed = planned(moto_s3, source, "k")

    # When it is copied
    with pytest.raises(s3.S3Error) as raised:
        await moto_copier(moto_s3).copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then the copy fails as a checksum mismatch, and nothing is left at the destination
    assert raised.value.reason == "checksum-mismatch"
    assert "Contents" not in client.list_objects_v2(Bucket=destination)
    assert open_uploads(client, destination) == []


# Destinations that keep no additional checksums ---------------------------------------


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-part", "multipart"])
async def test_a_copy_to_rclone_falls_back_to_md5(
    size: int,
    moto_s3: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given two objects with CRC32Cs on moto, and rclone, which keeps none, as destination
    source, destination = make_bucket(moto_s3), make_bucket(s3_destination)
    bodies = {"a": os.urandom(size), "b": os.urandom(size)}
    for key, body in bodies.items():
        put_with_crc32c(s3_client(moto_s3), source, key, body, crc32c_of(body))
    copier = s3.ObjectCopier(
        endpoint_of(moto_s3), endpoint_of(s3_destination), multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
    )  # fmt: skip

    for key, body in bodies.items():
        # When each is copied
        listed = planned(moto_s3, source, key)
        outcome = await copier.copy(source, key, destination, key, listed.size, listed.etag)

        # Then each is verified and recorded by MD5, as before
        md5 = hashlib.md5(body).hexdigest()
        expected = f"md5:{md5}" if size <= 5 * MIB else f"md5-parts:{parts_of(body, 5 * MIB)}"
        assert outcome == s3.CopyOutcome(size=size, checksum=expected)
        copy = s3_client(s3_destination).get_object(Bucket=destination, Key=key)
        assert copy["Body"].read() == body


# Through the services: what the copied events record ------------------------------------


def test_a_migration_records_each_copy_by_its_additional_checksum_and_fails_a_corrupt_one(
    cstor: RunningCstor, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given on moto a CRC32C object, a SHA-256 object, a plain one, and one whose bytes
    # are not those of its CRC32C; the destination is moto under other keys (not on the
    # server)
    source_bucket, dest_bucket = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    bodies = {key: os.urandom(5000) for key in ("crc", "sha", "plain", "corrupt")}
    put_with_crc32c(client, source_bucket, "crc", bodies["crc"], crc32c_of(bodies["crc"]))
    client.put_object(
        Bucket=source_bucket, Key="sha", Body=bodies["sha"], ChecksumAlgorithm="SHA256"
    )
    client.put_object(Bucket=source_bucket, Key="plain", Body=bodies["plain"])
    put_with_crc32c(client, source_bucket, "corrupt", bodies["corrupt"], crc32c_of(b"x"))
    source_id = cstor.connect(moto_s3, "moto")
    response = cstor.api.post(
        "/api/v1/connections",
        json={
            "name": "moto, other keys",
            "endpoint": moto_s3.endpoint,
            "access_key": "OTHERACCESSKEY01",
            "secret_key": "other",
        },
    )
    assert response.status_code == 201, response.text
    dest_id = str(response.json()["id"])

    # When the bucket is migrated
    migration_id = cstor.migrate(source_id, source_bucket, dest_id, dest_bucket)
    state = cstor.wait_finished(migration_id)

    # Then three objects are recorded copied, each by the checksum that verified it,
    # and the corrupt one failed as a checksum mismatch
    assert (state["objects_copied"], state["objects_failed"]) == (3, 1), state
    items = cstor.api.get(f"/api/v1/migrations/{migration_id}/objects").json()["items"]
    found = {item["key"]: (item["status"], item["checksum"], item["error"]) for item in items}
    assert found["crc"] == ("copied", f"crc32c:{crc32c_of(bodies['crc'])}", "")
    assert found["sha"] == ("copied", f"sha256:{sha256_of(bodies['sha'])}", "")
    plain_md5 = hashlib.md5(bodies["plain"]).hexdigest()
    assert found["plain"] == ("copied", f"md5:{plain_md5}", "")
    status, _, error = found["corrupt"]
    assert (status, error.split(":")[0]) == ("failed", "checksum-mismatch")
    assert "corrupt" not in {
        obj["Key"] for obj in client.list_objects_v2(Bucket=dest_bucket).get("Contents", [])
    }


async def test_a_multipart_crc32c_source_copied_whole_is_stamped_with_its_etag(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a 6 MiB source uploaded in two parts with a full-object CRC32C (a multipart
    # ETag, and a checksum the copy's single PUT can carry)
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(6 * MIB)
    upload_id = client.create_multipart_upload(
        Bucket=source, Key="k", ChecksumAlgorithm="CRC32C", ChecksumType="FULL_OBJECT",
        Metadata={"team": "storage"},
    )["UploadId"]  # fmt: skip
    parts = []
    for number, start in enumerate((0, 5 * MIB), start=1):
        chunk = body[start : start + 5 * MIB]
        answer = client.upload_part(
            Bucket=source, Key="k", UploadId=upload_id, PartNumber=number, Body=chunk,
            ChecksumAlgorithm="CRC32C", ChecksumCRC32C=crc32c_of(chunk),
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket=source, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts},
        ChecksumCRC32C=crc32c_of(body), ChecksumType="FULL_OBJECT",
    )  # fmt: skip
    listed = planned(moto_s3, source, "k")
    assert listed.etag.endswith("-2")

    # When it is copied whole, by GET -> PUT with its CRC32C
    copier = s3.ObjectCopier(endpoint_of(moto_s3), other_keys(moto_s3))
    outcome = await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then the copy, recorded by that CRC32C, has an MD5 ETag and so carries the source's
    # ETag for a later sync, next to the user's metadata
    assert outcome == s3.CopyOutcome(size=6 * MIB, checksum=f"crc32c:{crc32c_of(body)}")
    copy = client.head_object(Bucket=destination, Key="k", ChecksumMode="ENABLED")
    assert copy["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert copy["Metadata"] == {"team": "storage", SOURCE_ETAG_METADATA: listed.etag}
