"""Planning rules: which listed objects to copy or skip, and how they group into packets.

Pure functions over key-ordered listings: the planner streams the source and the
destination side by side, so neither listing is ever held in memory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from cstor.domain.checksums import is_md5_etag, normalize_etag

MiB = 1024 * 1024

Overwrite = Literal["if-different", "skip-existing", "always"]
"""What planning does when the destination already has the key: the one list of policies
(the api's request schema takes this type, so a request names one of them)."""
IF_DIFFERENT: Overwrite = "if-different"
SKIP_EXISTING: Overwrite = "skip-existing"
ALWAYS: Overwrite = "always"
OVERWRITE_POLICIES: tuple[Overwrite, ...] = get_args(Overwrite)


@dataclass(frozen=True)
class Listed:
    """An object as a listing shows it."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None


@dataclass(frozen=True)
class PlannedObject:
    """An object of the source listing that is to be copied."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class Skip:
    """An object left alone, and why (e.g. the destination already holds an identical copy)."""

    key: str
    size: int
    reason: str


@dataclass(frozen=True)
class FailedObject:
    """An object of the source listing whose outcome planning already knows: failed, and
    why (its destination copy could not be read to decide). It is recorded planned and
    failed with its packet, retried like any failed object, and never copied meanwhile."""

    key: str
    size: int
    etag: str
    reason: str
    message: str


@dataclass(frozen=True)
class Filters:
    """Which source objects a migration covers, besides its prefix."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None

    def admits(self, obj: Listed, relative_key: str) -> bool:
        """Whether an object passes every filter; globs match the key below the source prefix."""
        return (
            self._admits_key(relative_key)
            and self._admits_size(obj.size)
            and self._admits_time(obj.last_modified)
        )

    def _admits_key(self, relative_key: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(relative_key, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(relative_key, p) for p in self.exclude)

    def _admits_size(self, size: int) -> bool:
        too_small = self.min_size is not None and size < self.min_size
        return not too_small and (self.max_size is None or size <= self.max_size)

    def _admits_time(self, modified: datetime | None) -> bool:
        # An object whose store gives no time passes the time filters.
        if modified is None:
            return True
        if self.modified_after is not None and modified <= self.modified_after:
            return False
        return self.modified_before is None or modified < self.modified_before


@dataclass(frozen=True)
class PacketLimits:
    """How large a packet may grow before it is closed."""

    max_bytes: int = 200 * MiB
    max_objects: int = 1000
    # NATS carries a packet as one message; keys may be up to 1 KiB each.
    max_key_bytes: int = 512 * 1024
    # Skipped objects ride in their packet's event too; bound how many one event holds.
    max_decisions: int = 5000


@dataclass
class PacketDraft:
    """A packet being filled by the planner (not yet recorded: that is `transfer.Packet`):
    the objects to copy, those that failed already, and those skipped.

    A failed object is one of the packet's objects like a planned one (its size in
    ``bytes``, its place among ``max_objects``): it is recorded planned, then failed.
    """

    planned: list[PlannedObject] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    failed: list[FailedObject] = field(default_factory=list)
    last_key: str = ""
    bytes: int = 0
    key_bytes: int = 0

    @property
    def objects(self) -> int:
        """How many objects the packet carries (to copy, or failed already)."""
        return len(self.planned) + len(self.failed)

    def fits(self, size: int, key_bytes: int, limits: PacketLimits) -> bool:
        """Whether one more decision (copying ``size`` bytes) still fits in this packet."""
        if self.objects + len(self.skipped) >= limits.max_decisions:
            return False
        if self.key_bytes + key_bytes > limits.max_key_bytes:
            return False
        if not self.objects:
            return True  # even an object larger than max_bytes: it goes alone
        return self.bytes + size <= limits.max_bytes and self.objects < limits.max_objects


Decision = PlannedObject | Skip | FailedObject


def destination_key(key: str, source_prefix: str, destination_prefix: str) -> str:
    """Where a source key lands: its source prefix replaced by the destination prefix."""
    return destination_prefix + key.removeprefix(source_prefix)


def pair_listings(
    source: Iterable[Listed],
    destination: Iterable[Listed],
    source_prefix: str,
    destination_prefix: str,
) -> Iterator[tuple[Listed, Listed | None]]:
    """Each source object with the destination object at its key, if any.

    Both listings come in key order and the prefix mapping keeps that order, so one
    pass over each (a merge) pairs them without holding either in memory.
    """
    targets = iter(destination)
    target = next(targets, None)
    for obj in source:
        wanted = destination_key(obj.key, source_prefix, destination_prefix)
        while target is not None and target.key < wanted:
            target = next(targets, None)
        yield obj, target if target is not None and target.key == wanted else None


def decide(
    source: Listed, existing: Listed | None, policy: str, existing_source_etag: str | None = None
) -> Decision:
    """Copy the object, or skip it with a reason, under an overwrite policy.

    ``existing_source_etag`` is the source ETag cstor stamped on an earlier copy (read
    from the destination's metadata only when ETags cannot be compared directly, e.g.
    multipart ETags made with different part sizes).
    """
    if existing is None or policy == ALWAYS:
        return PlannedObject(source.key, source.size, source.etag)
    if policy == SKIP_EXISTING:
        return Skip(source.key, source.size, "exists at the destination")
    if existing.size == source.size and same_content(source, existing, existing_source_etag):
        return Skip(source.key, source.size, "identical at the destination")
    return PlannedObject(source.key, source.size, source.etag)


def same_content(source: Listed, existing: Listed, existing_source_etag: str | None) -> bool:
    """Whether two objects of equal size hold the same bytes, as far as their ETags tell."""
    ours, theirs = normalize_etag(source.etag), normalize_etag(existing.etag)
    if is_md5_etag(ours) and is_md5_etag(theirs):
        return ours == theirs
    if ours and ours == theirs:
        return True  # the same multipart ETag: the same parts
    # A source without an ETag is never matched by a stamp (an empty one proves nothing).
    return bool(ours) and normalize_etag(existing_source_etag) == ours


def needs_metadata(source: Listed, existing: Listed | None, policy: str) -> bool:
    """Whether deciding needs the destination's stamped source ETag (a HEAD request)."""
    if existing is None or policy != IF_DIFFERENT or existing.size != source.size:
        return False
    ours, theirs = normalize_etag(source.etag), normalize_etag(existing.etag)
    return not (is_md5_etag(ours) and is_md5_etag(theirs)) and ours != theirs


def decide_unread(source: Listed, reason: str, message: str) -> Decision:
    """The decision when the destination object's metadata could not be read (``reason``
    and ``message``: why, as the S3 adapter words it).

    A key the store says is not there (not-found) is not there, whatever its listing
    showed: the object is copied (and the copy verified, as every copy is). Any other
    failure is that one object's outcome, never the migration's.
    """
    if reason == "not-found":
        return PlannedObject(source.key, source.size, source.etag)
    return FailedObject(source.key, source.size, source.etag, reason, message)


def plan_packets(decisions: Iterable[Decision], limits: PacketLimits) -> Iterator[PacketDraft]:
    """Group decisions into packets in listing order; an object too large for one goes alone."""
    packet = PacketDraft()
    for decision in decisions:
        key_bytes = len(decision.key.encode())
        size = 0 if isinstance(decision, Skip) else decision.size
        if (packet.objects or packet.skipped) and not packet.fits(size, key_bytes, limits):
            yield packet
            packet = PacketDraft()
        if isinstance(decision, Skip):
            packet.skipped.append(decision)
        elif isinstance(decision, FailedObject):
            packet.failed.append(decision)
        else:
            packet.planned.append(decision)
        packet.bytes += size
        packet.key_bytes += key_bytes
        packet.last_key = decision.key
    if packet.objects or packet.skipped:
        yield packet
