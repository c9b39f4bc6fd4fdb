"""One event schema: what earlier releases stored decodes with every field, and is published
as those releases published it.

``data/landed_events.json`` holds stored events (topic and state, as the library's JSON
transcoder wrote them) made by three releases' own aggregates: 2639420 (the first one,
without overwrite, filters, limits, skipped or a packet's checkpoint), 46bc0cc (before
storage classes and limits) and bc4b075 (the landed one), each with the bus message the
landed outbox (bc4b075) made of it. ``data/current_messages.json`` holds the messages the
landed outbox made of the events that ``current_events`` builds.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from cstor import contracts
from cstor.domain.migration import Migration
from cstor.domain.route import Route
from cstor.domain.transfer import ObjectTransfer, Packet, copied_event
from cstor.outbox import CONTRACTS, to_contract

DATA = Path(__file__).parent / "data"
LANDED: list[dict[str, Any]] = json.loads((DATA / "landed_events.json").read_text())
CURRENT: dict[str, str] = json.loads((DATA / "current_messages.json").read_text())

# What a release that did not record a field meant by its absence.
MEANT: dict[str, dict[str, Any]] = {
    "cstor.domain.migration:Migration.Requested": {
        "overwrite": "if-different",
        "filters": {},
        "sync_of": None,
        "storage_class": None,
        "limits": {},
    },
    "cstor.domain.migration:Migration.Planned": {"skipped": 0},
    # A landed copy was tried at least once; no landed release kept how often.
    "cstor.domain.transfer:ObjectTransfer.Copied": {"attempts": 1, "key": ""},
    # No landed release repeated an outcome's key; its feed message has none.
    "cstor.domain.transfer:ObjectTransfer.Failed": {"key": ""},
    "cstor.domain.transfer:ObjectTransfer.Retried": {"key": ""},
    "cstor.domain.transfer:Packet.Planned": {
        "skipped": [],
        "last_key": "",
        "planned_total": 0,
        "bytes_total": 0,
        "skipped_total": 0,
    },
}


def _app() -> Application[UUID]:
    """An in-memory application: the library's mapper and JSON transcoder, as the store's."""
    return Application[UUID]()


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=row["state"].encode(),
    )


def _name(row: dict[str, Any]) -> str:
    return f"{row['era']}-{row['position']}-{row['topic'].split(':')[1]}"


def test_the_fixture_holds_events_written_before_the_fields_added_later() -> None:
    # Given the first release's events, Then they lack what later releases added
    # (so the tests below read events through their upcasters, not just as written)
    first = {row["topic"]: json.loads(row["state"]) for row in LANDED if row["era"] == "spine"}
    for topic, meant in MEANT.items():
        assert not meant.keys() & first.get(topic, {}).keys(), topic  # (none retried)
    assert {row["topic"] for row in LANDED} == {get_topic(cls) for cls in CONTRACTS}


@pytest.mark.parametrize("row", LANDED, ids=_name)
def test_a_stored_event_of_any_release_decodes_with_every_field_of_its_class(
    row: dict[str, Any],
) -> None:
    # Given an event as a release stored it
    app = _app()
    recorded = app.mapper.transcoder.decode(row["state"].encode())
    # When the current code decodes it
    event = app.mapper.to_domain_event(_stored(row))
    # Then it has every field its class declares: as recorded, or as the release meant it
    meant = MEANT.get(row["topic"], {})
    for field in dataclasses.fields(type(event)):  # type: ignore[arg-type]
        name = field.name
        if name in ("originator_id", "originator_version"):
            continue
        expected = recorded[name] if name in recorded else meant[name]
        assert getattr(event, name) == expected, name


@pytest.mark.parametrize("row", LANDED, ids=_name)
def test_a_stored_event_of_any_release_is_published_as_the_landed_outbox_published_it(
    row: dict[str, Any],
) -> None:
    # Given an event as a release stored it, and the bus message the landed outbox made of it
    event = _app().mapper.to_domain_event(_stored(row))
    # When it is mapped to its contract now
    message = contracts.encoder.encode(to_contract(event, row["position"]))
    # Then the message is byte for byte the same
    assert message.decode() == row["bus"]


def test_a_migration_and_packet_of_the_first_release_load_with_what_later_ones_added() -> None:
    # Given the first release's events in an event store
    app = _app()
    rows = [row for row in LANDED if row["era"] == "spine"]
    app.recorder.insert_events([_stored(row) for row in rows])
    first = UUID(rows[0]["originator_id"])
    packet = next(row for row in rows if row["topic"].endswith("Packet.Planned"))
    # When the aggregates are loaded
    migration = app.repository.get(first)
    closed = app.repository.get(UUID(packet["originator_id"]))
    # Then they have the fields the first release did not record, as it meant them
    assert isinstance(migration, Migration)
    assert (migration.overwrite, migration.filters, migration.limits) == ("if-different", {}, {})
    assert (migration.sync_of, migration.storage_class, migration.skipped) == (None, None, 0)
    assert migration.status == Migration.COMPLETED
    assert migration.route == Route.of(migration)
    assert (migration.route.source_bucket, migration.route.destination_prefix) == (
        "photos",
        "old/2024/",
    )
    assert isinstance(closed, Packet)
    assert (closed.skipped, closed.last_key, closed.planned_total) == ([], "", 0)


MIGRATION = UUID("0b1e7a5c-6d7e-4f80-9a1b-2c3d4e5f6a7b")
SOURCE = UUID("11111111-1111-4111-8111-111111111111")
DESTINATION = UUID("22222222-2222-4222-8222-222222222222")
AT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
ROUTE = {
    "source_connection_id": SOURCE,
    "source_bucket": "photos",
    "source_prefix": "2024/",
    "destination_connection_id": DESTINATION,
    "destination_bucket": "archive",
    "destination_prefix": "old/2024/",
}


def current_events() -> dict[str, Any]:
    """One event of each class, as the code writes it now, with fixed ids and times."""
    object_id, packet_id = uuid_of("object"), uuid_of("packet")
    of_migration = {"originator_id": MIGRATION, "timestamp": AT}
    of_object = {"originator_id": object_id, "timestamp": AT, "migration_id": MIGRATION}
    of_packet = {"originator_id": packet_id, "timestamp": AT, "migration_id": MIGRATION}
    migration_topic = {"originator_topic": get_topic(Migration)}
    made: dict[str, Any] = {
        "Migration.Requested": Migration.Requested(
            **of_migration,
            **migration_topic,
            originator_version=1,
            name="photos → archive",
            owner="ana@example.com",
            **ROUTE,
            overwrite="skip-existing",
            filters={"include": ["*.jpg"], "modified_after": "2024-01-01T00:00:00+00:00"},
            sync_of=uuid_of("earlier"),
            storage_class="STANDARD_IA",
            limits={"bandwidth_bytes_per_second": 1_000_000},
        ),
        "Migration.PlanningStarted": Migration.PlanningStarted(
            **of_migration, originator_version=2
        ),
        "Migration.Paused": Migration.Paused(
            **of_migration, originator_version=3, previous="planning"
        ),
        "Migration.Resumed": Migration.Resumed(
            **of_migration, originator_version=4, status="planning"
        ),
        "Migration.Planned": Migration.Planned(
            **of_migration, originator_version=5, packets=2, objects=3, bytes=4096, skipped=1
        ),
        "Migration.Completed": Migration.Completed(
            **of_migration, originator_version=6, copied=2, failed=1
        ),
        "Migration.RetryRequested": Migration.RetryRequested(
            **of_migration, originator_version=7, objects=1, packets=3
        ),
        "Migration.Failed": Migration.Failed(
            **of_migration, originator_version=8, reason="source_unreachable", message="gone"
        ),
        "Migration.Cancelled": Migration.Cancelled(**of_migration, originator_version=9),
        "ObjectTransfer.Planned": ObjectTransfer.Planned(
            **of_object,
            originator_topic=get_topic(ObjectTransfer),
            originator_version=1,
            key="2024/a.jpg",
            size=2048,
            etag="0cc175b9c0f1b6a831c399e269772661",
            packet_id=packet_id,
        ),
        "ObjectTransfer.Copied": ObjectTransfer.Copied(
            **of_object,
            originator_version=2,
            size=2048,
            checksum="md5:0cc175b9c0f1b6a8",
            attempts=1,
            key="",
        ),
        "ObjectTransfer.Failed": ObjectTransfer.Failed(
            **of_object,
            originator_version=2,
            reason="AccessDenied",
            message="no",
            attempts=3,
            key="",
        ),
        "ObjectTransfer.Retried": ObjectTransfer.Retried(
            **of_object,
            originator_version=3,
            packet_id=uuid_of("retry packet"),
            key="",
        ),
        "Packet.Planned": Packet.Planned(
            **of_packet,
            originator_topic=get_topic(Packet),
            originator_version=1,
            sequence=0,
            **ROUTE,
            objects=[
                ["2024/a.jpg", 2048, "0cc175b9c0f1b6a831c399e269772661"],
                ["2024/b", 1, "e", 3],
            ],
            skipped=[["2024/c.jpg", 2048, "identical at the destination"]],
            last_key="2024/c.jpg",
            planned_total=2,
            bytes_total=2049,
            skipped_total=1,
        ),
        "Packet.Transferred": Packet.Transferred(
            **of_packet, originator_version=2, sequence=0, copied=1, failed=1, bytes=2048
        ),
    }
    return made


def uuid_of(name: str) -> UUID:
    """A fixed id, by name."""
    return uuid5(MIGRATION, name)


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_an_event_written_now_is_published_byte_for_byte_as_before(name: str) -> None:
    # Given an event as the code writes it now, stored and read back
    app = _app()
    written = current_events()[name]
    event = app.mapper.to_domain_event(app.mapper.to_stored_event(written))
    # When it is mapped to its contract
    message = contracts.encoder.encode(to_contract(event, 42))
    # Then consumers get the bytes the landed outbox gave them for the same event
    assert message.decode() == CURRENT[name]


def test_a_copy_is_published_with_its_attempts_and_a_landed_one_as_tried_once() -> None:
    # Given the copies landed releases stored (without their attempts), and one written now
    # that went through at its second attempt
    app = _app()
    landed = [row for row in LANDED if row["topic"].endswith("ObjectTransfer.Copied")]
    twice = copied_event(MIGRATION, "2024/a.jpg", 2048, "md5:0cc175b9c0f1b6a8", 2, AT)
    assert landed
    # When each is read from the store and published
    published = [to_contract(app.mapper.to_domain_event(_stored(row)), 1) for row in landed]
    again = app.mapper.to_domain_event(app.mapper.to_stored_event(twice))
    message = to_contract(again, 42)
    # Then the landed ones say one attempt, the new one two, on the bus as in the store
    assert all(isinstance(m, contracts.ObjectCopied) and m.attempts == 1 for m in published)
    assert isinstance(message, contracts.ObjectCopied)
    assert again.attempts == message.attempts == 2  # type: ignore[attr-defined]
    assert json.loads(contracts.encoder.encode(message))["attempts"] == 2


def test_every_event_class_of_every_aggregate_has_one_contract() -> None:
    # Given the event classes the three aggregates declare (not the library's own bases)
    declared = {
        value
        for aggregate in (Migration, ObjectTransfer, Packet)
        for name, value in vars(aggregate).items()
        if isinstance(value, type)
        and issubclass(value, Aggregate.Event)
        and name not in ("Event", "Created")
    }
    # Then the table maps each of them, to a contract of its own on the bus
    assert set(CONTRACTS) == declared
    published = [contract for contract, _ in CONTRACTS.values()]
    assert len(set(published)) == len(published) == len(contracts.AnyEvent.__args__)


@pytest.mark.parametrize("event_class", list(CONTRACTS), ids=lambda cls: cls.__qualname__)
def test_every_field_of_a_contract_comes_from_its_stored_event(event_class: type[Any]) -> None:
    # Given a stored event class, its contract, and the renames between them
    contract, renames = CONTRACTS[event_class]
    # Then each field of the contract is a field of the event (renamed), or one every
    # message has: no message field is left to a contract default
    stored = {renames.get(f.name, f.name) for f in dataclasses.fields(event_class)}
    assert set(contract.__struct_fields__) <= stored | {"event_id", "occurred_at", "position"}
