"""The new-migration form: its flat fields as the API's request, and errors in its words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.api.commands import Unprocessable
from services.api.schemas import BIGINT

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
_WHOLE = re.compile(r"[0-9]+")
_MOST_DIGITS = 20  # more is beyond any count a field takes (and slow to convert)


def request_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """The form's non-blank fields, shaped as MigrationCreate (filters and limits nested).

    Globs are one per line; sizes and the bandwidth take units (``10 MiB``, ``1.5GB``).
    """
    fields: dict[str, Any] = {
        name: form[name].strip() for name in PLAIN_FIELDS if form.get(name, "").strip()
    }
    filters: dict[str, Any] = {}
    for name in ("include", "exclude"):
        patterns = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
        if patterns:
            filters[name] = patterns
    for name in ("min_size", "max_size"):
        if form.get(name, "").strip():
            filters[name] = parse_size(form[name], LABELS[name])
    for name in ("modified_after", "modified_before"):
        if form.get(name, "").strip():
            filters[name] = form[name].strip()
    limits: dict[str, Any] = {}
    if form.get("bandwidth_bytes_per_second", "").strip():
        limits["bandwidth_bytes_per_second"] = parse_size(
            form["bandwidth_bytes_per_second"], LABELS["bandwidth_bytes_per_second"]
        )
    if form.get("concurrent_objects", "").strip():
        text = form["concurrent_objects"].strip()
        if not _WHOLE.fullmatch(text):
            raise Unprocessable(f"Objects at a time: {text[:40]!r} is not a whole number.")
        if len(text) > _MOST_DIGITS:
            raise Unprocessable("Objects at a time: that number is too large.")
        limits["concurrent_objects"] = int(text)
    return fields | {"filters": filters, "limits": limits}


def parse_size(text: str, label: str) -> int:
    """A byte count as people write one: ``"4096"``, ``"10 MiB"``, ``"1.5 GB"``.

    Counted in decimals, not floats: a float turns 400 digits into infinity, which no
    int can be, and rounds 2**53 + 1 bytes away.
    """
    found = _SIZE.fullmatch(text.strip().lower())
    if found is None or found[3] not in _UNITS:
        raise Unprocessable(
            f"{label}: {text.strip()[:40]!r} is not a size; write bytes, or a number with a"
            " unit such as 10 MiB or 1.5 GB."
        )
    too_large = f"{label}: that is more bytes than can be counted (8 EiB at most)."
    if len(found[1]) > _MOST_DIGITS:
        raise Unprocessable(too_large)
    count = int(Decimal(found[1] + (found[2] or "")) * _UNITS[found[3]])
    if count > BIGINT:
        raise Unprocessable(too_large)
    return count


def in_form_words(detail: str, labels: Mapping[str, str] = LABELS) -> str:
    """The API's message with its field paths (``filters.min_size``) named as on the form."""
    return re.sub(
        r"\b(?:filters\.|limits\.)?(\w+)(?=:)|\b(?:filters|limits)\.(\w+)",
        lambda m: labels.get(m[1] or m[2], m[0]),
        detail,
    )
