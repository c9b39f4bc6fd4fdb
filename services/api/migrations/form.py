"""The new-migration form: its flat fields as the API's request, and errors in its words.

The form's fields are shaped as MigrationCreate (sizes with units parsed, globs one per
line) and converted into it as a REST body is (services.api.forms); every refusal on
the way, and the request's checks after (services.api.migrations.request), is an
InvalidRequest naming the field, which the form shows with the field's label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cstor.domain.exceptions import InvalidRequest
from cstor.domain.planning import ALWAYS, IF_DIFFERENT, SKIP_EXISTING, Overwrite
from services.api.edge import BIGINT
from services.api.forms import convert_form, labelled
from services.api.migrations.schemas import MigrationCreate

LABELS = {
    "source_connection_id": "Source connection",
    "source_bucket": "Source bucket",
    "source_prefix": "Source prefix",
    "destination_connection_id": "Destination connection",
    "destination_bucket": "Destination bucket",
    "destination_prefix": "Destination prefix",
    "name": "Name",
    "overwrite": "When the destination already has the key",
    "include": "Include",
    "exclude": "Exclude",
    "min_size": "Smallest size",
    "max_size": "Largest size",
    "modified_after": "Modified after",
    "modified_before": "Modified before",
    "storage_class": "Storage class",
    "bandwidth_bytes_per_second": "Bandwidth limit",
    "concurrent_objects": "Objects at a time",
}
# The overwrite policies (one definition: cstor.domain.planning) as the form offers them.
OVERWRITE_CHOICES: dict[Overwrite, str] = {
    IF_DIFFERENT: "Copy only if different (size and checksum)",
    SKIP_EXISTING: "Skip it",
    ALWAYS: "Always copy",
}
PLAIN_FIELDS = (
    "source_connection_id",
    "source_bucket",
    "source_prefix",
    "destination_connection_id",
    "destination_bucket",
    "destination_prefix",
    "name",
    "overwrite",
    "storage_class",
)

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
}
# ASCII digits only: \d would take other scripts' digits, which int() reads but no one means.
_SIZE = re.compile(r"([0-9]+)(\.[0-9]+)?\s*([a-z]*)(?:/s)?")
_MOST_DIGITS = 20  # more is beyond any count a field takes (and slow to convert)


def request_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """The form's non-blank fields, shaped as MigrationCreate (filters and limits nested).

    Globs are one per line; sizes and the bandwidth take units (``10 MiB``, ``1.5GB``).
    """
    fields: dict[str, Any] = {
        name: form[name].strip() for name in PLAIN_FIELDS if form.get(name, "").strip()
    }
    return fields | {"filters": _filters(form), "limits": _limits(form)}


def _filters(form: Mapping[str, str]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name in ("include", "exclude"):
        patterns = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
        if patterns:
            filters[name] = patterns
    for name in ("min_size", "max_size"):
        if form.get(name, "").strip():
            filters[name] = parse_size(form[name], f"filters.{name}")
    for name in ("modified_after", "modified_before"):
        if form.get(name, "").strip():
            filters[name] = form[name].strip()
    return filters


def _limits(form: Mapping[str, str]) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if form.get("bandwidth_bytes_per_second", "").strip():
        limits["bandwidth_bytes_per_second"] = parse_size(
            form["bandwidth_bytes_per_second"], "limits.bandwidth_bytes_per_second"
        )
    if form.get("concurrent_objects", "").strip():
        limits["concurrent_objects"] = parse_whole(
            form["concurrent_objects"], "limits.concurrent_objects"
        )
    return limits


def parse_whole(text: str, field: str) -> int:
    """A whole number written in ASCII digits (not another script's, which int() reads)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidRequest(f"{text[:40]!r} is not a whole number.", field=field)
    if len(text) > _MOST_DIGITS:
        raise InvalidRequest("that number is too large.", field=field)
    return int(text)


def parse_size(text: str, field: str) -> int:
    """A byte count as people write one: ``"4096"``, ``"10 MiB"``, ``"1.5 GB"``.

    Counted in decimals, not floats: a float turns 400 digits into infinity, which no
    int can be, and rounds 2**53 + 1 bytes away.
    """
    found = _SIZE.fullmatch(text.strip().lower())
    if found is None or found[3] not in _UNITS:
        raise InvalidRequest(
            f"{text.strip()[:40]!r} is not a size; write bytes, or a number with a"
            " unit such as 10 MiB or 1.5 GB.",
            field=field,
        )
    too_large = InvalidRequest(
        "that is more bytes than can be counted (8 EiB at most).", field=field
    )
    if len(found[1]) > _MOST_DIGITS:
        raise too_large
    count = int(Decimal(found[1] + (found[2] or "")) * _UNITS[found[3]])
    if count > BIGINT:
        raise too_large
    return count


def migration_request(form: Mapping[str, str]) -> MigrationCreate:
    """The form as the API's request; InvalidRequest naming the field if it is not one."""
    return convert_form(request_fields(form), MigrationCreate)


def in_form_words(error: InvalidRequest) -> str:
    """The refusal with its field paths (``filters.min_size``) named as on the form."""
    return labelled(error, LABELS)
