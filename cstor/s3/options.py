"""What one migration asks of each of its copies, besides the object: its storage class
and its share of the migration's bandwidth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Throttle(Protocol):
    """A migration's bandwidth, shared by all its copies (on every replica, if it is honest)."""

    async def draw(self, wanted: int) -> int:
        """Wait for leave to send up to `wanted` more bytes; how many may go (1 to `wanted`)."""
        ...


@dataclass(frozen=True, kw_only=True)
class CopyOptions:
    """A migration's wishes for every copy it makes (one copier serves many migrations)."""

    storage_class: str | None = None  # x-amz-storage-class of the copy; None: the default
    throttle: Throttle | None = None  # None: as fast as it goes

    async def pace(self, amount: int) -> None:
        """Wait until `amount` more bytes may be sent (at once, if there is no throttle)."""
        while self.throttle is not None and amount > 0:
            amount -= await self.throttle.draw(amount)


DEFAULT_OPTIONS = CopyOptions()
