"""What a copy carries over besides the bytes: content headers, user metadata, tags, Expires.

The GET of a whole object hands back its content headers, user metadata, Expires
and additional checksum (`header_attributes`, `header_extras`); a multipart source's
come from a HEAD. Either answer counts the object's tags (x-amz-tagging-count), which
are asked for (GetObjectTagging) only when there are some.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from cstor.domain.checksums import ADDITIONAL_ALGORITHMS, AdditionalChecksum, parse_additional

CONTENT_HEADERS = {
    "Content-Type": "ContentType",
    "Content-Encoding": "ContentEncoding",
    "Content-Disposition": "ContentDisposition",
    "Content-Language": "ContentLanguage",
    "Cache-Control": "CacheControl",
}
"""Content header name (as a copy's attributes name it) → boto3 parameter name."""
_LOWER = {name: name.lower() for name in CONTENT_HEADERS}


class Extras(msgspec.Struct, frozen=True, kw_only=True):
    """What a GET may not tell: the object's tags, Expires, additional checksum."""

    tags: dict[str, str] = {}
    expires: datetime | None = None
    checksum: AdditionalChecksum | None = None


def create_arguments(attributes: Mapping[str, str], extras: Extras) -> dict[str, Any]:
    """create_multipart_upload / put_object arguments carrying the same attributes."""
    arguments: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for name, value in attributes.items():
        if name in CONTENT_HEADERS:
            arguments[CONTENT_HEADERS[name]] = value
        else:
            metadata[name] = value
    if metadata:
        arguments["Metadata"] = metadata
    if extras.tags:
        arguments["Tagging"] = urlencode(extras.tags)
    if extras.expires is not None:
        arguments["Expires"] = extras.expires
    return arguments


def replace_headers(attributes: Mapping[str, str], extras: Extras) -> dict[str, str]:
    """The HTTP headers of a CopyObject that replaces metadata, carrying the same attributes.

    Tags are not among them: the copy keeps the source's (the COPY tagging directive).
    """
    headers: dict[str, str] = {}
    for name, value in attributes.items():
        headers[name if name in CONTENT_HEADERS else f"x-amz-meta-{name}"] = value
    if extras.expires is not None:
        headers["Expires"] = format_datetime(extras.expires.astimezone(UTC), usegmt=True)
    return headers


def header_attributes(headers: Mapping[str, str]) -> dict[str, str]:
    """The attributes a copy carries over, from a GET's response headers (lower-case names)."""
    attributes = {name: headers[lower] for name, lower in _LOWER.items() if lower in headers}
    for name, value in headers.items():
        if name.startswith("x-amz-meta-"):
            attributes[name.removeprefix("x-amz-meta-")] = value
    return attributes


def put_headers(
    attributes: Mapping[str, str], extras: Extras, source: Mapping[str, str]
) -> dict[str, str]:
    """The headers of a PUT carrying the attributes, tags and Expires of the `source` GET."""
    headers = replace_headers(attributes, extras)
    if "expires" in source:  # as the source wrote it, whether or not it parses as a date
        headers["Expires"] = source["expires"]
    if extras.tags:
        headers["x-amz-tagging"] = urlencode(extras.tags)
    return headers


def head_attributes(head: Mapping[str, Any]) -> tuple[dict[str, str], Extras]:
    """The attributes and Expires of a boto3 head_object answer (tags come separately)."""
    attributes = {name: head[param] for name, param in CONTENT_HEADERS.items() if head.get(param)}
    attributes.update(head.get("Metadata", {}))
    return attributes, Extras(expires=head.get("Expires"), checksum=head_checksum(head))


def head_checksum(head: Mapping[str, Any]) -> AdditionalChecksum | None:
    """The additional checksum in a head_object answer asked with ChecksumMode ENABLED."""
    for algorithm in ADDITIONAL_ALGORITHMS:
        value = head.get(f"Checksum{algorithm}")
        if value:
            kind = head.get("ChecksumType", "")
            return parse_additional(algorithm, value, kind, head.get("ETag", ""))
    return None


def tag_count(headers: Mapping[str, str]) -> int:
    """How many tags a GET's answer says the object has (x-amz-tagging-count: sent only
    when there are some, by the stores that keep tags)."""
    count = headers.get("x-amz-tagging-count", "")
    return int(count) if count.isdigit() else 0


def header_extras(headers: Mapping[str, str]) -> Extras:
    """The Expires and additional checksum of a GET's answer sent with x-amz-checksum-mode
    ENABLED (lower-case names); the tags come separately, when `tag_count` says so."""
    return Extras(expires=_expires(headers.get("expires", "")), checksum=header_checksum(headers))


def header_checksum(headers: Mapping[str, str]) -> AdditionalChecksum | None:
    """The additional checksum of a GET's answer (lower-case names), as `head_checksum`."""
    for algorithm in ADDITIONAL_ALGORITHMS:
        value = headers.get(f"x-amz-checksum-{algorithm.lower()}")
        if value:
            kind = headers.get("x-amz-checksum-type", "")
            return parse_additional(algorithm, value, kind, headers.get("etag", ""))
    return None


def _expires(value: str) -> datetime | None:
    """An Expires header as a date, or None (the PUT of a whole copy sends it as written)."""
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
