"""What a copy carries over besides its bytes, as the headers and arguments each request
takes: content headers, user metadata, tags, Expires and the additional checksum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from cstor.domain.checksums import AdditionalChecksum
from cstor.s3.metadata import (
    Extras,
    create_arguments,
    head_attributes,
    head_checksum,
    header_attributes,
    header_extras,
    put_headers,
    replace_headers,
    tag_count,
)

ATTRIBUTES = {"Content-Type": "image/jpeg", "Cache-Control": "max-age=60", "owner": "ada"}
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_gets_headers_become_the_attributes_a_copy_carries() -> None:
    headers = {
        "content-type": "image/jpeg",
        "cache-control": "max-age=60",
        "x-amz-meta-owner": "ada",
        "content-length": "5",  # not carried: the copy has its own
        "etag": '"x"',
    }
    assert header_attributes(headers) == ATTRIBUTES


def test_attributes_become_boto3_arguments_content_headers_and_metadata_apart() -> None:
    extras = Extras(tags={"team": "a b", "env": "prod"}, expires=EXPIRES)
    assert create_arguments(ATTRIBUTES, extras) == {
        "ContentType": "image/jpeg",
        "CacheControl": "max-age=60",
        "Metadata": {"owner": "ada"},
        "Tagging": "team=a+b&env=prod",
        "Expires": EXPIRES,
    }
    assert create_arguments({}, Extras()) == {}


def test_a_replacing_copy_sends_user_metadata_as_amz_meta_and_expires_in_gmt() -> None:
    later = EXPIRES.astimezone(timezone(timedelta(hours=5)))
    headers = replace_headers(ATTRIBUTES, Extras(tags={"t": "1"}, expires=later))
    assert headers == {
        "Content-Type": "image/jpeg",
        "Cache-Control": "max-age=60",
        "x-amz-meta-owner": "ada",
        "Expires": "Wed, 02 Jan 2030 03:04:05 GMT",
    }


def test_a_put_keeps_the_sources_expires_as_written_and_sends_the_tags() -> None:
    headers = put_headers(
        {"owner": "ada"}, Extras(tags={"k": "v"}, expires=EXPIRES), {"expires": "not a date"}
    )
    assert headers == {"x-amz-meta-owner": "ada", "Expires": "not a date", "x-amz-tagging": "k=v"}


def test_a_heads_answer_gives_attributes_expires_and_checksum() -> None:
    head = {
        "ContentType": "text/plain",
        "ContentEncoding": "",  # empty: not carried
        "Metadata": {"owner": "ada"},
        "Expires": EXPIRES,
        "ChecksumSHA256": "c2hh",
        "ETag": '"0cc175b9c0f1b6a831c399e269772661"',
    }
    attributes, extras = head_attributes(head)
    assert attributes == {"Content-Type": "text/plain", "owner": "ada"}
    assert extras.expires == EXPIRES
    assert extras.checksum == AdditionalChecksum(algorithm="SHA256", value="c2hh")


def test_a_multipart_heads_checksum_is_read_as_its_type_says() -> None:
    etag = '"0cc175b9c0f1b6a831c399e269772661-4"'
    composite = head_checksum({"ChecksumCRC32C": "Y3Jj", "ChecksumType": "COMPOSITE", "ETag": etag})
    full = head_checksum({"ChecksumCRC32C": "Y3Jj", "ChecksumType": "FULL_OBJECT", "ETag": etag})
    assert composite == AdditionalChecksum(algorithm="CRC32C", value="Y3Jj", parts=4)
    assert full == AdditionalChecksum(algorithm="CRC32C", value="Y3Jj")


def test_a_head_without_a_checksum_cstor_computes_has_none() -> None:
    assert head_checksum({"ETag": '"x"'}) is None
    assert head_checksum({"ChecksumCRC64NVME": "AAAAAAAAAAA=", "ETag": '"x"'}) is None


def test_a_gets_answer_gives_expires_checksum_and_how_many_tags() -> None:
    # Given a GET's answer with Expires, a composite CRC32C and two tags counted
    headers = {
        "expires": "Wed, 02 Jan 2030 03:04:05 GMT",
        "x-amz-checksum-crc32c": "Y3Jj",
        "x-amz-checksum-type": "COMPOSITE",
        "etag": '"0cc175b9c0f1b6a831c399e269772661-4"',
        "x-amz-tagging-count": "2",
    }
    # Then those are what the copy carries, and the tags are to be asked for
    assert header_extras(headers) == Extras(
        expires=EXPIRES, checksum=AdditionalChecksum(algorithm="CRC32C", value="Y3Jj", parts=4)
    )
    assert tag_count(headers) == 2


def test_a_gets_answer_without_a_tag_count_or_a_date_has_neither() -> None:
    # An Expires that is not a date goes in the PUT as written (put_headers), not here
    headers = {"expires": "never", "etag": '"x"'}
    assert header_extras(headers) == Extras()
    assert tag_count(headers) == 0
