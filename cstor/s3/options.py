"""What one migration asks of each of its copies, besides the object: its storage class,
its share of the migration's bandwidth, and whether to stop (paused or cancelled)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

PAUSED, CANCELLED = "paused", "cancelled"
"""Why a copy stops half-way (the migration's status): keep what is done, or discard it."""


class Throttle(Protocol):
    """A migration's bandwidth, shared by all its copies (on every replica, if it is honest)."""

    async def draw(self, wanted: int) -> int:
        """Wait for leave to send up to `wanted` more bytes; how many may go (1 to `wanted`)."""
        ...


class CopyHalted(Exception):
    """The copy stopped before it ended because its migration was paused or cancelled.

    Paused, a multipart upload stays open with its finished parts (journaled), for the
    copy after the resume to go on from; cancelled, it was aborted.
    """

    def __init__(self, why: str) -> None:
        super().__init__(f"the copy stopped half-way: its migration was {why}")
        self.why = why

    @property
    def paused(self) -> bool:
        return self.why == PAUSED


def _going() -> str:
    return ""


@dataclass(frozen=True, kw_only=True)
class CopyOptions:
    """A migration's wishes for every copy it makes (one copier serves many migrations)."""

    storage_class: str | None = None  # x-amz-storage-class of the copy; None: the default
    throttle: Throttle | None = None  # None: as fast as it goes
    halted: Callable[[], str] = _going  # PAUSED or CANCELLED once the copy should stop; ""

    def check(self) -> None:
        """Raise CopyHalted if the migration was paused or cancelled meanwhile."""
        why = self.halted()
        if why:
            raise CopyHalted(why)

    async def pace(self, amount: int) -> None:
        """Wait until `amount` more bytes may be sent (at once, if there is no throttle);
        CopyHalted if the migration is paused or cancelled while it waits."""
        while self.throttle is not None and amount > 0:
            self.check()
            amount -= await self.throttle.draw(amount)
        self.check()


DEFAULT_OPTIONS = CopyOptions()
