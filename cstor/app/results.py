"""Plain values the use cases take and return, which the services build and read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryObject:
    """A failed object to try again: as the source has it now, at its current version."""

    key: str
    size: int
    etag: str
    version: int


@dataclass(frozen=True)
class Tally:
    """Outcomes counted: objects copied and failed, and the bytes copied."""

    copied: int = 0
    failed: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class PlanTotals:
    """Running totals of a migration's planning."""

    packets: int = 0
    objects: int = 0
    bytes: int = 0
    skipped: int = 0


class CopyResult:
    """The outcome of one object of a packet, as the transfer service reports it."""

    __slots__ = ("attempts", "checksum", "key", "message", "reason", "size", "version")

    def __init__(
        self,
        key: str,
        *,
        size: int = 0,
        checksum: str = "",
        reason: str = "",
        message: str = "",
        attempts: int = 1,
        version: int = 1,
    ) -> None:
        self.version = version  # the object's version when it was packed
        self.key = key
        self.size = size
        self.checksum = checksum
        self.reason = reason
        self.message = message
        self.attempts = attempts

    @property
    def copied(self) -> bool:
        return not self.reason
