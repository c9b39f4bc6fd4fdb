"""Map stored domain events to bus contracts: the bus carries only what the store recorded.

One table says which contract each stored event class becomes and what its aggregate's id
(and version) are called there; one function does the mapping for all of them. Fields
with the same name in both pass as they are, the rest of the event (e.g. a packet's
checkpoint totals) stays in the store. Events written by older releases arrive here with
every field, filled by their class's upcaster as the library decodes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from cstor import contracts
from cstor.domain.migration import Migration
from cstor.domain.transfer import ObjectTransfer, Packet, event_id

OF_MIGRATION: Mapping[str, str] = {"originator_id": "migration_id"}
"""An event of a Migration: its id is the migration's."""

OF_OBJECT: Mapping[str, str] = {"originator_id": "object_id", "originator_version": "version"}
"""An event of an ObjectTransfer: the object's id, and its version (outcomes are at fixed ones)."""

OF_PACKET: Mapping[str, str] = {"originator_id": "packet_id"}
"""An event of a Packet: the packet's id."""

CONTRACTS: Mapping[type[Any], tuple[type[contracts.Event], Mapping[str, str]]] = {
    Migration.Requested: (contracts.MigrationRequested, OF_MIGRATION),
    Migration.PlanningStarted: (contracts.MigrationPlanningStarted, OF_MIGRATION),
    Migration.Planned: (contracts.MigrationPlanned, OF_MIGRATION),
    Migration.Completed: (contracts.MigrationCompleted, OF_MIGRATION),
    Migration.Failed: (contracts.MigrationFailed, OF_MIGRATION),
    Migration.RetryRequested: (contracts.MigrationRetryRequested, OF_MIGRATION),
    Migration.Paused: (contracts.MigrationPaused, OF_MIGRATION),
    Migration.Resumed: (contracts.MigrationResumed, OF_MIGRATION),
    Migration.Cancelled: (contracts.MigrationCancelled, OF_MIGRATION),
    ObjectTransfer.Planned: (contracts.ObjectPlanned, OF_OBJECT),
    ObjectTransfer.Copied: (contracts.ObjectCopied, OF_OBJECT),
    ObjectTransfer.Failed: (contracts.ObjectFailed, OF_OBJECT),
    ObjectTransfer.Retried: (contracts.ObjectRetried, OF_OBJECT),
    Packet.Planned: (contracts.PacketPlanned, OF_PACKET),
    Packet.Transferred: (contracts.PacketTransferred, OF_PACKET),
}
"""Each stored event class, the contract it is published as, and its fields' renames."""


def to_contract(event: Any, position: int) -> contracts.Event:
    """The bus message for one stored domain event, at ``position`` in the notification log."""
    contract, renames = CONTRACTS[type(event)]
    fields = vars(event)
    message = {renames.get(name, name): value for name, value in fields.items()}
    message["event_id"] = event_id(event.originator_id, event.originator_version)
    message["occurred_at"] = event.timestamp
    message["position"] = position
    # msgspec builds the nested structs (limits, a packet's objects) and ignores the fields
    # the contract does not carry; a field it needs and the event lacks is an error.
    return msgspec.convert(message, contract)
