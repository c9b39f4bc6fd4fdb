"""S3's bucket naming rules, with the leniency legacy buckets need, each refusal naming
the field and the rule broken."""

from __future__ import annotations

import pytest

from cstor.domain.bucket_names import MAX_LENGTH, check_bucket_name
from cstor.domain.exceptions import InvalidRequest


@pytest.mark.parametrize(
    "name",
    [
        "abc",
        "a" * 63,
        "test-0123abcd",
        "my.bucket.name",
        "1bucket9",
        "a-b.c-d",
        "192.168.5.4x",  # looks like an address, is not one
        "bucket-xn--inside",  # reserved words only at the ends
        # Legacy us-east-1 names: uppercase, underscores, long
        "My_Old_Bucket",
        "a" * MAX_LENGTH,
    ],
)
def test_a_name_s3_allows_passes(name: str) -> None:
    check_bucket_name(name, "source_bucket")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 63 characters"),
        ("", "3 to 63 characters"),
        ("a" * (MAX_LENGTH + 1), "3 to 63 characters"),
        ("a b", "only letters, digits, dots, hyphens"),
        ("a/b", "only letters, digits, dots, hyphens"),
        ("bücket", "only letters, digits, dots, hyphens"),
        ("a\x00b", "only letters, digits, dots, hyphens"),
        ("-abc", "begin and end with a letter or a digit"),
        ("abc-", "begin and end with a letter or a digit"),
        (".abc", "begin and end with a letter or a digit"),
        ("_abc", "begin and end with a letter or a digit"),
        ("a..b", "two dots may not be next to each other"),
        ("10.0.0.1", "may not be an IP address"),
        ("xn--abc", "reserved by S3"),
        ("XN--abc", "reserved by S3"),
        ("sthree-bucket", "reserved by S3"),
        ("amzn-s3-demo-bucket", "reserved by S3"),
        ("bucket-s3alias", "reserved by S3"),
        ("bucket--ol-s3", "reserved by S3"),
        ("bucket.mrap", "reserved by S3"),
        ("bucket--x-s3", "reserved by S3"),
        ("bucket--table-s3", "reserved by S3"),
    ],
)
def test_a_name_that_breaks_a_rule_is_refused_naming_the_field_and_the_rule(
    name: str, rule: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_bucket_name(name, "destination_bucket")
    assert raised.value.field == "destination_bucket"
    assert str(raised.value).startswith("destination_bucket: ")
    assert rule in str(raised.value)


def test_a_long_name_is_quoted_only_in_part() -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_bucket_name("a" * 10_000, "source_bucket")
    assert len(str(raised.value)) < 300
    assert "a" * 81 not in str(raised.value)
