"""A migration request checked on one path: the schema, then the domain's rules, each
refusal naming the field at fault; the dashboard's form reaches the same checks and is
refused for the same field, in its own labels."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import msgspec
import pytest

from cstor.domain.exceptions import InvalidRequest
from services.api.migrations.form import in_form_words, migration_request, parse_size, parse_whole
from services.api.migrations.request import CheckedMigration, check_migration
from services.api.migrations.schemas import MigrationCreate

SOURCE, DESTINATION = str(uuid4()), str(uuid4())
BODY: dict[str, Any] = {
    "source_connection_id": SOURCE,
    "source_bucket": "source-bucket",
    "destination_connection_id": DESTINATION,
    "destination_bucket": "destination-bucket",
}
FORM = {k: str(v) for k, v in BODY.items()}


def rest(**changes: Any) -> CheckedMigration:
    """A REST body decoded as the api decodes it, then checked."""
    body = msgspec.json.encode(BODY | changes)
    return check_migration(msgspec.json.decode(body, type=MigrationCreate))


def form(**changes: str) -> CheckedMigration:
    """The dashboard's form fields, converted and checked."""
    return check_migration(migration_request(FORM | changes))


def refused_field(check: Any, **changes: Any) -> str | None:
    with pytest.raises(InvalidRequest) as raised:
        check(**changes)
    # The message begins with the field it is about ("field: why", or "field is too long.")
    assert raised.value.field is not None
    assert str(raised.value).startswith(raised.value.field)
    return raised.value.field


# The schema ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"overwrite": "sometimes"}, "$.overwrite"),
        ({"source_bucket": ""}, "$.source_bucket"),
        ({"destination_bucket": "b" * 256}, "$.destination_bucket"),
        ({"source_connection_id": "not-a-uuid"}, "$.source_connection_id"),
        ({"filters": {"min_size": -1}}, "$.filters.min_size"),
        ({"filters": {"max_size": 2**63}}, "$.filters.max_size"),
        ({"filters": {"include": "*.jpg"}}, "$.filters.include"),
        ({"limits": {"concurrent_objects": "4"}}, "$.limits.concurrent_objects"),
        ({"name": "n" * 201}, "$.name"),
        ({"source_prefix": "p" * 1025}, "$.source_prefix"),
    ],
)
def test_a_body_the_schema_refuses_names_the_field(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"at `{path.replace('$', '[$]')}`"):
        rest(**changes)


@pytest.mark.parametrize("field", ["source_connection_id", "destination_bucket"])
def test_a_body_without_a_required_field_names_it(field: str) -> None:
    body = {k: v for k, v in BODY.items() if k != field}
    with pytest.raises(msgspec.ValidationError, match=f"missing required field `{field}`"):
        msgspec.json.decode(msgspec.json.encode(body), type=MigrationCreate)


def test_a_field_the_schema_does_not_know_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `dry_run`"):
        rest(dry_run=True)


# The domain's rules, through REST ---------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source_bucket": "a..b"}, "source_bucket"),
        ({"destination_bucket": "10.0.0.1"}, "destination_bucket"),
        ({"storage_class": "COLD"}, "storage_class"),
        ({"filters": {"include": ["*.jpg", ""]}}, "filters.include"),
        ({"filters": {"exclude": [""]}}, "filters.exclude"),
        ({"filters": {"modified_after": "yesterday"}}, "filters.modified_after"),
        ({"filters": {"modified_before": "2024-13-01"}}, "filters.modified_before"),
        # Its UTC is past the year 9999: it cannot be shown or compared
        ({"filters": {"modified_before": "9999-12-31T23:59:59-05:00"}}, "filters.modified_before"),
        ({"filters": {"min_size": 10, "max_size": 9}}, "filters.max_size"),
        (
            {"filters": {"modified_after": "2024-02-01", "modified_before": "2024-01-01"}},
            "filters.modified_before",
        ),
        (
            {
                "filters": {
                    "modified_after": "2024-01-01T00:00:00Z",
                    "modified_before": "2024-01-01",
                }
            },
            "filters.modified_before",
        ),
        ({"limits": {"concurrent_objects": 0}}, "limits.concurrent_objects"),
        ({"limits": {"concurrent_objects": 10_001}}, "limits.concurrent_objects"),
        ({"limits": {"bandwidth_bytes_per_second": -5}}, "limits.bandwidth_bytes_per_second"),
        ({"limits": {"bandwidth_bytes_per_second": 10**18}}, "limits.bandwidth_bytes_per_second"),
    ],
)
def test_a_request_that_breaks_a_rule_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    assert refused_field(rest, **changes) == field


def test_the_first_rule_broken_is_the_one_told() -> None:
    # Bucket names are checked before filters and limits
    changes = {"source_bucket": "-x-", "limits": {"concurrent_objects": 0}}
    assert refused_field(rest, **changes) == "source_bucket"


def test_a_request_that_passes_keeps_its_filters_and_limits_as_a_migration_does() -> None:
    checked = rest(
        filters={
            "include": ["*.jpg"],
            "min_size": 0,
            "modified_after": "2024-01-01T01:00:00+01:00",
            "modified_before": "2024-06-01",
        },
        limits={"concurrent_objects": 5, "bandwidth_bytes_per_second": None},
        storage_class="STANDARD_IA",
    )
    # Then times are in UTC (a time without a zone taken as UTC), empty things are left out
    assert checked.filters == {
        "include": ["*.jpg"],
        "min_size": 0,
        "modified_after": "2024-01-01T00:00:00+00:00",
        "modified_before": "2024-06-01T00:00:00+00:00",
    }
    assert checked.limits == {"concurrent_objects": 5}
    assert checked.request.storage_class == "STANDARD_IA"


def test_a_bare_request_has_no_filters_and_no_limits() -> None:
    checked = rest()
    assert (checked.filters, checked.limits) == ({}, {})
    assert checked.request.overwrite == "if-different"


# The form reaches the same checks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rest_changes", "form_changes", "field"),
    [
        ({"source_bucket": "a..b"}, {"source_bucket": "a..b"}, "source_bucket"),
        ({"storage_class": "COLD"}, {"storage_class": "COLD"}, "storage_class"),
        (
            {"filters": {"min_size": 2048, "max_size": 1024}},
            {"min_size": "2 KiB", "max_size": "1 KiB"},
            "filters.max_size",
        ),
        (
            {"filters": {"modified_after": "soon"}},
            {"modified_after": "soon"},
            "filters.modified_after",
        ),
        (
            {"limits": {"concurrent_objects": 0}},
            {"concurrent_objects": "0"},
            "limits.concurrent_objects",
        ),
        (
            {"limits": {"bandwidth_bytes_per_second": 0}},
            {"bandwidth_bytes_per_second": "0 MiB/s"},
            "limits.bandwidth_bytes_per_second",
        ),
    ],
)
def test_the_form_and_rest_refuse_the_same_request_for_the_same_field(
    rest_changes: dict[str, Any], form_changes: dict[str, str], field: str
) -> None:
    assert refused_field(rest, **rest_changes) == field
    assert refused_field(form, **form_changes) == field


@pytest.mark.parametrize(
    ("form_changes", "field"),
    [
        ({"overwrite": "sometimes"}, "overwrite"),
        ({"source_connection_id": "not-one-of-the-list"}, "source_connection_id"),
        ({"name": "n" * 201}, "name"),
        ({"min_size": "ten"}, "filters.min_size"),
        ({"max_size": "9" * 400}, "filters.max_size"),
        ({"concurrent_objects": "٣"}, "limits.concurrent_objects"),  # an Arabic-Indic three
    ],
)
def test_a_form_the_schema_refuses_is_an_invalid_request_naming_the_field(
    form_changes: dict[str, str], field: str
) -> None:
    assert refused_field(form, **form_changes) == field


def test_the_form_says_the_refusal_with_its_own_labels() -> None:
    with pytest.raises(InvalidRequest) as raised:
        form(min_size="10 MiB", max_size="1 KiB")
    assert str(raised.value) == "filters.max_size: it is smaller than filters.min_size."
    assert in_form_words(raised.value) == "Largest size: it is smaller than Smallest size."


def test_a_form_left_blank_where_it_may_be_is_a_bare_request() -> None:
    checked = form(min_size="  ", concurrent_objects="", include="\n \n", storage_class=" ")
    assert (checked.filters, checked.limits) == ({}, {})
    assert checked.request.storage_class is None


def test_globs_are_one_per_line_on_the_form() -> None:
    checked = form(include="*.jpg\r\n  raw/*  \n\n", exclude="tmp/*")
    assert checked.filters == {"include": ["*.jpg", "raw/*"], "exclude": ["tmp/*"]}


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("4096", 4096),
        (" 10 MiB ", 10 * 1024**2),
        ("10mib", 10 * 1024**2),
        ("1.5 GB", 1_500_000_000),
        ("2k", 2048),
        ("3 KB", 3000),
        ("1 TiB", 1024**4),
        ("5 MB/s", 5_000_000),
        ("0", 0),
        # Decimals, not floats: 2**53 + 1 is not rounded away
        (str(2**53 + 1), 2**53 + 1),
    ],
)
def test_a_size_is_read_as_people_write_it(text: str, count: int) -> None:
    assert parse_size(text, "filters.min_size") == count


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ten", "is not a size"),
        ("10 parsecs", "is not a size"),
        ("-5", "is not a size"),
        ("1e9", "is not a size"),
        ("9" * 21, "more bytes than can be counted"),
        ("8 EiB", "is not a size"),  # no such unit here
        ("8388608 TiB", "more bytes than can be counted"),
    ],
)
def test_a_size_that_is_not_one_is_refused_naming_the_field(text: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as raised:
        parse_size(text, "limits.bandwidth_bytes_per_second")
    assert raised.value.field == "limits.bandwidth_bytes_per_second"


@pytest.mark.parametrize(
    ("text", "ok"), [("7", True), (" 12 ", True), ("1.0", False), ("²", False)]
)
def test_a_whole_number_is_ascii_digits_only(text: str, ok: bool) -> None:
    if ok:
        assert parse_whole(text, "limits.concurrent_objects") == int(text)
    else:
        with pytest.raises(InvalidRequest, match="is not a whole number"):
            parse_whole(text, "limits.concurrent_objects")
