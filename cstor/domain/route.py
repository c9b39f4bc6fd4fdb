"""Where a migration copies from and to: the six fields that always travel together."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol
from uuid import UUID

from cstor.domain.planning import destination_key


class HasRoute(Protocol):
    """Anything that names a route in its six fields (a migration, a packet, a request)."""

    @property
    def source_connection_id(self) -> UUID: ...
    @property
    def source_bucket(self) -> str: ...
    @property
    def source_prefix(self) -> str: ...
    @property
    def destination_connection_id(self) -> UUID: ...
    @property
    def destination_bucket(self) -> str: ...
    @property
    def destination_prefix(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Route:
    """A source (connection, bucket, prefix) and a destination (connection, bucket, prefix).

    Stored events and bus messages keep the six flat fields (they are the store's and the
    consumers' schema); code passes a Route, and ``fields()`` spreads it back into them.
    """

    source_connection_id: UUID
    source_bucket: str
    source_prefix: str
    destination_connection_id: UUID
    destination_bucket: str
    destination_prefix: str

    @classmethod
    def of(cls, holder: HasRoute) -> Route:
        """The route named by the six fields of an event, a message, an aggregate or a request."""
        return cls(
            source_connection_id=holder.source_connection_id,
            source_bucket=holder.source_bucket,
            source_prefix=holder.source_prefix,
            destination_connection_id=holder.destination_connection_id,
            destination_bucket=holder.destination_bucket,
            destination_prefix=holder.destination_prefix,
        )

    def fields(self) -> dict[str, Any]:
        """The six fields by the names events and messages give them."""
        return asdict(self)

    def destination_key(self, key: str) -> str:
        """Where a source key lands: its source prefix replaced by the destination prefix."""
        return destination_key(key, self.source_prefix, self.destination_prefix)
