"""Each copy strategy against real servers: what arrives, how it was verified, what it kept."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from cstor import s3
from cstor.domain.checksums import MIB, SOURCE_ETAG_METADATA
from launcher.embedded import EmbeddedS3
from tests.s3_objects import MemoryJournal, endpoint_of, open_uploads, other_keys, parts_of, planned

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MakeBucket = Callable[[EmbeddedS3], str]
ClientFor = Callable[[EmbeddedS3], "S3Client"]

HEADERS: dict[str, Any] = {
    "ContentType": "text/csv; charset=utf-8",
    "ContentEncoding": "identity",
    "ContentLanguage": "de-CH",
    "ContentDisposition": 'attachment; filename="x.csv"',
    "CacheControl": "max-age=60",
    "Expires": datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC),
    "Metadata": {"team": "storage", "run": "7"},
}
TAGS = "project=cstor&tier=gold%20plus"


def assert_kept_everything(copy: dict[str, Any], tags: list[dict[str, str]]) -> None:
    # A copy of a source uploaded in parts also carries its ETag, cstor's own stamp (for sync).
    metadata = dict(copy["Metadata"])
    metadata.pop(SOURCE_ETAG_METADATA, None)
    assert metadata == HEADERS["Metadata"]
    for name, value in HEADERS.items():
        if name != "Metadata":
            assert copy[name] == value, name
    assert sorted((t["Key"], t["Value"]) for t in tags) == [
        ("project", "cstor"),
        ("tier", "gold plus"),
    ]


# Metadata and tags ----------------------------------------------------------------


@pytest.mark.parametrize("size", [1024, 12 * MIB], ids=["single-part", "multipart"])
async def test_content_headers_metadata_expires_and_tags_survive_a_copy(
    size: int, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object on moto with every content header, user metadata, Expires and tags
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    client.put_object(Bucket=source, Key="k", Body=os.urandom(size), Tagging=TAGS, **HEADERS)
    listed = planned(moto_s3, source, "k")
    copier = s3.ObjectCopier(
        endpoint_of(moto_s3), other_keys(moto_s3), multipart_threshold=5 * MIB,
        min_part_size=5 * MIB,
    )  # fmt: skip

    # When it is copied by GET -> PUT (other keys, so not on the server)
    outcome = await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then the copy has all of them
    assert outcome.size == size
    copy = client.head_object(Bucket=destination, Key="k")
    assert_kept_everything(copy, client.get_object_tagging(Bucket=destination, Key="k")["TagSet"])


async def test_rclone_capitalises_metadata_keys_and_the_copy_still_verifies(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given an object on rclone with lower-case metadata and content headers
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client(s3_source).put_object(
        Bucket=source, Key="k", Body=b"x" * 100, Metadata={"team": "a"}, ContentLanguage="fr"
    )
    listed = planned(s3_source, source, "k")
    copier = s3.ObjectCopier(endpoint_of(s3_source), endpoint_of(s3_destination))

    # When it is copied
    outcome = await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then it verifies; rclone hands the metadata key back capitalised ("Team"), as it does
    # for any object it stores: a property of rclone serve s3, not of the copy
    assert outcome.checksum == f"md5:{hashlib.md5(b'x' * 100).hexdigest()}"
    copy = s3_client(s3_destination).head_object(Bucket=destination, Key="k")
    assert {k.lower(): v for k, v in copy["Metadata"].items()} == {"team": "a"}
    assert copy["ContentLanguage"] == "fr"


# Server-side copies ---------------------------------------------------------------


async def test_same_store_and_keys_copy_on_the_server_verified_by_etag(
    s3_source: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given two buckets on one store, reached with the same keys
    source, destination = make_bucket(s3_source), make_bucket(s3_source)
    body = os.urandom(3000)
    s3_client(s3_source).put_object(Bucket=source, Key="a/k", Body=body, ContentType="image/gif")
    listed = planned(s3_source, source, "a/k")
    copier = s3.ObjectCopier(endpoint_of(s3_source), endpoint_of(s3_source))
    assert copier.server_side

    # When an object is copied
    outcome = await copier.copy(source, "a/k", destination, "b/k", listed.size, listed.etag)

    # Then the store copied it, and its ETag is the source's MD5
    assert outcome == s3.CopyOutcome(size=3000, checksum=f"md5:{hashlib.md5(body).hexdigest()}")
    copy = s3_client(s3_source).get_object(Bucket=destination, Key="b/k")
    assert copy["Body"].read() == body
    assert copy["ContentType"] == "image/gif"


@pytest.mark.parametrize("store", ["rclone", "moto"])
async def test_server_side_copies_take_keys_with_spaces_unicode_and_symbols(
    store: str,
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given objects whose keys need percent-encoding, on one store
    server = s3_source if store == "rclone" else moto_s3
    source, destination = make_bucket(server), make_bucket(server)
    keys = ["a b/c d.txt", "ünï/cödé€.bin", "x+y=z&w;v,u@t$s!r'q(p)*o~n.txt", "p%20q/%2F#h?i"]
    for key in keys:
        s3_client(server).put_object(Bucket=source, Key=key, Body=key.encode())
    copier = s3.ObjectCopier(endpoint_of(server), endpoint_of(server))

    # When each is copied on the server
    for key in keys:
        listed = planned(server, source, key)
        outcome = await copier.copy(source, key, destination, "to/" + key, listed.size, listed.etag)

        # Then each arrives under its own key, verified
        assert outcome.checksum == f"md5:{hashlib.md5(key.encode()).hexdigest()}"
        copy = s3_client(server).get_object(Bucket=destination, Key="to/" + key)
        assert copy["Body"].read() == key.encode()


async def test_a_server_side_copy_of_a_changed_source_is_refused(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object planned, then overwritten
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    s3_client(moto_s3).put_object(Bucket=source, Key="k", Body=b"first")
    listed = planned(moto_s3, source, "k")
    s3_client(moto_s3).put_object(Bucket=source, Key="k", Body=b"second")
    copier = s3.ObjectCopier(endpoint_of(moto_s3), endpoint_of(moto_s3))

    # When it is copied on the server as planned
    with pytest.raises(s3.S3Error) as raised:
        await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then CopySourceIfMatch refused it, for good
    assert raised.value.reason == "source-changed"
    assert not raised.value.transient


async def test_a_server_side_copy_of_a_deleted_source_is_reported_missing(
    s3_source: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an object planned, then deleted
    source, destination = make_bucket(s3_source), make_bucket(s3_source)
    s3_client(s3_source).put_object(Bucket=source, Key="gone", Body=b"soon gone")
    listed = planned(s3_source, source, "gone")
    s3_client(s3_source).delete_object(Bucket=source, Key="gone")
    copier = s3.ObjectCopier(endpoint_of(s3_source), endpoint_of(s3_source))

    # When it is copied on the server
    with pytest.raises(s3.S3Error) as raised:
        await copier.copy(source, "gone", destination, "gone", listed.size, listed.etag)

    # Then the copy fails as source-missing, for good
    assert (raised.value.reason, raised.value.transient) == ("source-missing", False)


async def test_a_server_side_copy_of_a_multipart_source_keeps_everything_and_is_stamped(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a source uploaded in two parts, with headers, metadata, Expires and tags
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(7 * MIB)
    upload = client.create_multipart_upload(Bucket=source, Key="mp", Tagging=TAGS, **HEADERS)
    parts = []
    for n, start in enumerate((0, 5 * MIB), start=1):
        part = client.upload_part(
            Bucket=source, Key="mp", UploadId=upload["UploadId"], PartNumber=n,
            Body=body[start : start + 5 * MIB],
        )  # fmt: skip
        parts.append({"PartNumber": n, "ETag": part["ETag"]})
    client.complete_multipart_upload(
        Bucket=source, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    listed = planned(moto_s3, source, "mp")
    assert listed.etag.endswith("-2")
    copier = s3.ObjectCopier(endpoint_of(moto_s3), endpoint_of(moto_s3))

    # When it is copied on the server (one CopyObject: it is under 5 GiB)
    outcome = await copier.copy(source, "mp", destination, "mp", listed.size, listed.etag)

    # Then the copy has the bytes, the headers, metadata and tags, and the source's ETag
    # stamped on it, so that a sync can tell it is the same object
    assert outcome.size == 7 * MIB
    assert client.get_object(Bucket=destination, Key="mp")["Body"].read() == body
    copy = client.head_object(Bucket=destination, Key="mp")
    assert_kept_everything(copy, client.get_object_tagging(Bucket=destination, Key="mp")["TagSet"])
    assert copy["Metadata"][SOURCE_ETAG_METADATA] == listed.etag


async def test_a_large_server_side_copy_goes_in_part_copies_and_keeps_everything(
    moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given a 12 MiB object, and a copier whose CopyObject limit is 5 MiB (S3's is 5 GiB)
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client(moto_s3)
    body = os.urandom(12 * MIB)
    client.put_object(Bucket=source, Key="big", Body=body, Tagging=TAGS, **HEADERS)
    listed = planned(moto_s3, source, "big")
    copier = s3.ObjectCopier(
        endpoint_of(moto_s3), endpoint_of(moto_s3),
        server_copy_threshold=5 * MIB, copy_part_size=5 * MIB,
    )  # fmt: skip

    # When it is copied
    outcome = await copier.copy(source, "big", destination, "big", listed.size, listed.etag)

    # Then it went as three UploadPartCopy parts, verified, with headers and tags
    assert outcome == s3.CopyOutcome(size=12 * MIB, checksum=f"md5-parts:{parts_of(body, 5 * MIB)}")
    assert client.get_object(Bucket=destination, Key="big")["Body"].read() == body
    copy = client.head_object(Bucket=destination, Key="big")
    assert_kept_everything(copy, client.get_object_tagging(Bucket=destination, Key="big")["TagSet"])
    assert open_uploads(client, destination) == []


# Sizes at the edges ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kind"),
    [
        (0, "md5"),
        (5 * MIB - 1, "md5"),
        (5 * MIB, "md5"),
        (5 * MIB + 1, "md5-parts"),
    ],
    ids=["empty", "threshold-1", "threshold", "threshold+1"],
)
async def test_objects_at_the_multipart_threshold_copy_exactly(
    size: int,
    kind: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given an object of 0 bytes or of the multipart threshold give or take one byte
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    body = os.urandom(size)
    s3_client(s3_source).put_object(Bucket=source, Key="k", Body=body)
    listed = planned(s3_source, source, "k")
    copier = s3.ObjectCopier(
        endpoint_of(s3_source), endpoint_of(s3_destination),
        multipart_threshold=5 * MIB, min_part_size=5 * MIB,
    )  # fmt: skip

    # When it is copied
    outcome = await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then up to the threshold it is one PUT verified by MD5, above it two parts (5 MiB + 1 B)
    expected = hashlib.md5(body).hexdigest() if kind == "md5" else parts_of(body, 5 * MIB)
    assert outcome == s3.CopyOutcome(size=size, checksum=f"{kind}:{expected}")
    copy = s3_client(s3_destination).get_object(Bucket=destination, Key="k")
    assert copy["Body"].read() == body
    assert open_uploads(s3_client(s3_destination), destination) == []


# Resuming a multipart upload -------------------------------------------------------


async def test_a_journaled_upload_resumes_from_its_finished_parts(
    s3_source: EmbeddedS3,
    moto_s3: EmbeddedS3,
    make_bucket: MakeBucket,
    s3_client: ClientFor,
) -> None:
    # Given a 23 MiB object whose upload of 5 MiB parts crashed after parts 1 and 2
    source, destination = make_bucket(s3_source), make_bucket(moto_s3)
    body = os.urandom(23 * MIB)
    s3_client(s3_source).put_object(Bucket=source, Key="big", Body=body)
    listed = planned(s3_source, source, "big")
    client = s3_client(moto_s3)
    upload_id = client.create_multipart_upload(Bucket=destination, Key="big")["UploadId"]
    journal = MemoryJournal()
    md5s = {}
    for number in (1, 2):
        part = body[(number - 1) * 5 * MIB : number * 5 * MIB]
        client.upload_part(
            Bucket=destination, Key="big", UploadId=upload_id, PartNumber=number, Body=part
        )
        md5s[number] = hashlib.md5(part).hexdigest()
    journal.uploads["object-1"] = s3.JournaledUpload(
        bucket=destination, key="big", upload_id=upload_id, part_size=5 * MIB,
        source_etag=listed.etag, parts=md5s,
    )  # fmt: skip
    copier = s3.ObjectCopier(
        endpoint_of(s3_source), endpoint_of(moto_s3),
        multipart_threshold=5 * MIB, min_part_size=5 * MIB, journal=journal,
    )  # fmt: skip

    # When the copy runs again under the same journal key
    outcome = await copier.copy(
        source, "big", destination, "big", listed.size, listed.etag, upload_key="object-1"
    )

    # Then only parts 3 to 5 were sent, the object is whole and verified
    assert sorted(journal.parts_done) == [3, 4, 5]
    assert outcome == s3.CopyOutcome(size=23 * MIB, checksum=f"md5-parts:{parts_of(body, 5 * MIB)}")
    assert client.get_object(Bucket=destination, Key="big")["Body"].read() == body
    # And the journal and the store hold no open upload any more
    assert journal.uploads == {}
    assert open_uploads(client, destination) == []


async def test_an_upload_left_unjournaled_by_a_crash_is_aborted(
    s3_source: EmbeddedS3, moto_s3: EmbeddedS3, make_bucket: MakeBucket, s3_client: ClientFor
) -> None:
    # Given an upload a crash left open before it was journaled
    source, destination = make_bucket(s3_source), make_bucket(moto_s3)
    body = os.urandom(11 * MIB)
    s3_client(s3_source).put_object(Bucket=source, Key="big", Body=body)
    listed = planned(s3_source, source, "big")
    client = s3_client(moto_s3)
    client.create_multipart_upload(Bucket=destination, Key="big")
    copier = s3.ObjectCopier(
        endpoint_of(s3_source), endpoint_of(moto_s3),
        multipart_threshold=5 * MIB, min_part_size=5 * MIB, journal=MemoryJournal(),
    )  # fmt: skip

    # When the object is copied
    await copier.copy(
        source, "big", destination, "big", listed.size, listed.etag, upload_key="object-1"
    )

    # Then the stray upload is gone along with the copy's own
    assert open_uploads(client, destination) == []
    assert client.get_object(Bucket=destination, Key="big")["Body"].read() == body
