"""A migration request checked once, the same way for create, estimate and the dashboard's form.

REST bodies and the form both become a MigrationCreate (the form through
services.api.migrations.form); create and estimate both call check_migration on it, so
a request one of them refuses, the other refuses too, with the same words. Every refusal,
the schema's on the form and the rules' here, is an InvalidRequest naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from cstor.domain.bucket_names import check_bucket_name
from cstor.domain.exceptions import InvalidRequest
from cstor.domain.migration import check_storage_class, checked_limits
from services.api.migrations.schemas import FiltersIn, MigrationCreate


@dataclass(frozen=True)
class CheckedMigration:
    """A request that passed every check, with its filters and limits as a migration keeps them."""

    request: MigrationCreate
    filters: dict[str, Any]
    limits: dict[str, int]


def check_migration(data: MigrationCreate) -> CheckedMigration:
    """The request checked against the rules msgspec's schema cannot express.

    Raises InvalidRequest naming the field's path (``limits.concurrent_objects``), which
    the api answers as a 422 naming it, and the form shows next to the field's label.
    """
    check_bucket_name(data.source_bucket, "source_bucket")
    check_bucket_name(data.destination_bucket, "destination_bucket")
    check_storage_class(data.storage_class)
    return CheckedMigration(
        request=data,
        filters=checked_filters(data.filters),
        limits=checked_limits(msgspec.structs.asdict(data.limits)),
    )


def checked_filters(filters: FiltersIn) -> dict[str, Any]:
    """The filters as stored with the migration; InvalidRequest naming the field if one is not."""
    raw: dict[str, Any] = {}
    for name in ("include", "exclude"):
        patterns = getattr(filters, name)
        if any(not pattern for pattern in patterns):
            raise InvalidRequest("a glob pattern may not be empty.", field=f"filters.{name}")
        if patterns:
            raw[name] = list(patterns)
    for name in ("modified_after", "modified_before"):
        value = getattr(filters, name)
        if value is not None:
            raw[name] = _instant(name, value)
    for name in ("min_size", "max_size"):
        if getattr(filters, name) is not None:
            raw[name] = getattr(filters, name)
    low, high = filters.min_size, filters.max_size
    if low is not None and high is not None and low > high:
        raise InvalidRequest(
            "it is smaller than filters.min_size.",
            field="filters.max_size",
            mentions=("filters.min_size",),
        )
    after, before = raw.get("modified_after"), raw.get("modified_before")
    if after and before and datetime.fromisoformat(after) >= datetime.fromisoformat(before):
        raise InvalidRequest(
            "it is not after filters.modified_after.",
            field="filters.modified_before",
            mentions=("filters.modified_after",),
        )
    return raw


def _instant(name: str, value: str) -> str:
    """An ISO 8601 date-time as UTC (taken as UTC when it names no zone).

    In UTC because that is how every page shows it: a time whose UTC falls outside the
    years 1 to 9999 (9999-12-31T23:59:59-05:00) cannot be shown, nor compared with
    one that can.
    """
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{value[:64]!r} is not an ISO 8601 date-time (e.g. 2024-01-31T00:00:00Z).",
            field=f"filters.{name}",
        ) from None
    try:
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    except OverflowError:
        raise InvalidRequest(
            f"{value[:64]!r} in UTC is not between the years 1 and 9999.",
            field=f"filters.{name}",
        ) from None
