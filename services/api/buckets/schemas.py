"""What the REST API answers about a connection's buckets: the list, and a bucket's scan."""

from __future__ import annotations

from datetime import datetime

import msgspec


class BucketOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    created_at: datetime | None


class PrefixTotals(msgspec.Struct, frozen=True, kw_only=True):
    prefix: str
    objects: int
    bytes: int


class ScanOut(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket's object count and bytes, in all and by top-level prefix."""

    bucket: str
    prefix: str
    objects: int
    bytes: int
    prefixes: list[PrefixTotals]
