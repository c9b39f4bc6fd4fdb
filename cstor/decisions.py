"""Decide each source object of a migration: copy it, or skip it and say why.

The source and destination listings are streamed side by side (both in key order),
so neither is held in memory. The planner records these decisions; the api counts
them for an estimate (a dry run) without recording anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from queue import Full, Queue
from typing import Any, TypeVar

from cstor import s3
from cstor.domain import planning
from cstor.domain.checksums import SOURCE_ETAG_METADATA
from cstor.domain.migration import Migration
from cstor.domain.route import Route

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    """What a migration covers: where from, where to, which objects, and what to overwrite."""

    route: Route
    overwrite: planning.Overwrite = planning.IF_DIFFERENT
    filters: planning.Filters = field(default_factory=planning.Filters)

    @classmethod
    def of(cls, migration: Migration) -> Scope:
        return cls(
            route=migration.route,
            overwrite=migration.overwrite,
            filters=filters_from_dict(migration.filters),
        )


def filters_from_dict(raw: dict[str, Any]) -> planning.Filters:
    def when(name: str) -> datetime | None:
        value = raw.get(name)
        return datetime.fromisoformat(value) if value else None

    return planning.Filters(
        include=tuple(raw.get("include") or ()),
        exclude=tuple(raw.get("exclude") or ()),
        min_size=raw.get("min_size"),
        max_size=raw.get("max_size"),
        modified_after=when("modified_after"),
        modified_before=when("modified_before"),
    )


def _listed(
    endpoint: s3.Endpoint, bucket: str, prefix: str, after: str, side: str
) -> Iterator[planning.Listed]:
    pages = s3.list_pages(endpoint, bucket, prefix, start_after=after or None, side=side)
    for page in prefetched(pages):
        for obj in page:
            yield planning.Listed(obj.key, obj.size, obj.etag, obj.last_modified)


def prefetched(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The same pages, fetched up to ``depth`` ahead in a thread.

    Waiting for the store's next page then overlaps with deciding on this one; memory
    stays bounded by ``depth`` pages.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    closed = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        while not closed.is_set():
            try:
                queue.put(item, timeout=0.5)
            except Full:
                continue
            return True
        return False  # the consumer has gone: stop listing

    def fill() -> None:
        try:
            for page in pages:
                if not offer(("page", page)):
                    return
            offer(("end", None))
        except BaseException as error:  # handed over to the consumer, raised there
            offer(("error", error))

    threading.Thread(target=fill, name="listing", daemon=True).start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        closed.set()


def decisions(
    scope: Scope, source: s3.Endpoint, destination: s3.Endpoint, after: str = ""
) -> Iterator[planning.Decision]:
    """Every in-scope source object after ``after``, decided: copy or skip (with why)."""
    route, filters = scope.route, scope.filters
    src_prefix, dst_prefix = route.source_prefix, route.destination_prefix
    dst_after = route.destination_key(after) if after else ""
    in_scope = (
        obj
        for obj in _listed(source, route.source_bucket, src_prefix, after, "source")
        if filters.admits(obj, obj.key.removeprefix(src_prefix))
    )
    existing = (
        _listed(destination, route.destination_bucket, dst_prefix, dst_after, "destination")
        if scope.overwrite != planning.ALWAYS
        else iter(())
    )
    for obj, target in planning.pair_listings(in_scope, existing, src_prefix, dst_prefix):
        if target is not None and planning.needs_metadata(obj, target, scope.overwrite):
            yield _decided_by_stamp(obj, target, scope, destination)
        else:
            yield planning.decide(obj, target, scope.overwrite)


def _decided_by_stamp(
    obj: planning.Listed, target: planning.Listed, scope: Scope, destination: s3.Endpoint
) -> planning.Decision:
    """The decision on an object whose destination copy only its metadata can tell apart
    (the source ETag cstor stamped on it); if that cannot be read, the object's alone."""
    bucket = scope.route.destination_bucket
    try:
        metadata = s3.head_metadata(destination, bucket, target.key, side="destination")
    except s3.S3Error as error:
        return planning.decide_unread(obj, error.reason, str(error))
    stamp = metadata.get(SOURCE_ETAG_METADATA)
    return planning.decide(obj, target, scope.overwrite, stamp)


def estimate(scope: Scope, source: s3.Endpoint, destination: s3.Endpoint) -> dict[str, int]:
    """What planning would decide, counted, without recording anything (a dry run).

    An object whose destination copy could not be read counts as one to copy: planning
    plans it (failed), and retry-failed copies it.
    """
    counts = {"objects_to_copy": 0, "bytes_to_copy": 0, "objects_to_skip": 0, "bytes_to_skip": 0}
    for decision in decisions(scope, source, destination):
        if isinstance(decision, planning.Skip):
            counts["objects_to_skip"] += 1
            counts["bytes_to_skip"] += decision.size
        else:
            counts["objects_to_copy"] += 1
            counts["bytes_to_copy"] += decision.size
    return counts
