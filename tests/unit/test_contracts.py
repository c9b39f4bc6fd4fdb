"""The bus contracts: every event survives the wire, names its subject, and stays readable
across versions (fields are only ever added, with defaults)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from cstor import contracts, subjects

MID = UUID("6f1c1a5e-3a1e-4b7f-9c35-0d1b2c3d4e5f")
AT = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)


def common() -> dict[str, Any]:
    return {"event_id": uuid4(), "migration_id": MID, "occurred_at": AT, "position": 41}


ROUTE = {
    "source_connection_id": uuid4(),
    "source_bucket": "src",
    "source_prefix": "in/",
    "destination_connection_id": uuid4(),
    "destination_bucket": "dst",
    "destination_prefix": "out/",
}

EXAMPLES: list[contracts.Event] = [
    contracts.MigrationRequested(
        **common(),
        **ROUTE,
        name="photos",
        owner="ada@example.com",
        overwrite="skip-existing",
        filters={"include": ["*.jpg"], "min_size": 1},
        sync_of=uuid4(),
        storage_class="STANDARD_IA",
        limits=contracts.MigrationLimits(concurrent_objects=4),
    ),
    contracts.MigrationPlanningStarted(**common()),
    contracts.MigrationPlanned(**common(), packets=3, objects=100, bytes=10**12, skipped=5),
    contracts.MigrationCompleted(**common(), copied=99, failed=1),
    contracts.MigrationFailed(**common(), reason="no-such-bucket", message="gone"),
    contracts.MigrationRetryRequested(**common(), objects=1, packets=1),
    contracts.ObjectRetried(**common(), object_id=uuid4(), packet_id=uuid4(), version=3),
    contracts.MigrationPaused(**common()),
    contracts.MigrationResumed(**common(), status="running"),
    contracts.MigrationCancelled(**common()),
    contracts.ObjectPlanned(
        **common(), object_id=uuid4(), key="k é/ü", size=5, etag="e", packet_id=uuid4(), version=1
    ),
    contracts.ObjectCopied(**common(), object_id=uuid4(), size=5, checksum="md5:x", version=2),
    contracts.ObjectFailed(
        **common(), object_id=uuid4(), reason="timeout", message="m", attempts=3, version=2
    ),
    contracts.PacketPlanned(
        **common(),
        **ROUTE,
        packet_id=uuid4(),
        sequence=7,
        objects=[contracts.PacketObject("a", 1, "e1"), contracts.PacketObject("b", 2, "e2", 3)],
        skipped=[contracts.SkippedObject("c", 3, "identical at the destination")],
        last_key="c",
    ),
    contracts.PacketTransferred(
        **common(), packet_id=uuid4(), sequence=7, copied=2, failed=0, bytes=3
    ),
]


def tag_of(event: contracts.Event) -> str:
    return str(type(event).__struct_config__.tag)


@pytest.mark.parametrize("event", EXAMPLES, ids=tag_of)
def test_every_event_decodes_to_what_was_encoded(event: contracts.Event) -> None:
    assert contracts.decoder.decode(contracts.encoder.encode(event)) == event


@pytest.mark.parametrize("event", EXAMPLES, ids=tag_of)
def test_every_event_is_tagged_and_its_subject_comes_from_the_tag(
    event: contracts.Event,
) -> None:
    # Given an event on the wire
    body = json.loads(contracts.encoder.encode(event))
    # Then its JSON says which event it is, and the subject follows from that
    assert body["type"] == tag_of(event)
    aggregate, name = tag_of(event).split(".")
    assert contracts.subject_of(event) == f"cstor.{aggregate}.{MID}.{name}"


def test_every_member_of_the_union_has_an_example_and_a_tag_of_its_own() -> None:
    members = set(contracts.AnyEvent.__args__)  # type: ignore[attr-defined]
    assert {type(e) for e in EXAMPLES} == members
    tags = [str(m.__struct_config__.tag) for m in members]
    assert len(set(tags)) == len(tags)
    assert all(t.split(".")[0] in {"migration", "object", "packet"} for t in tags)


class OldPlanned(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="migration.planned"
):
    """migration.planned as a release before `skipped` knew it."""

    event_id: UUID
    migration_id: UUID
    occurred_at: datetime
    position: int
    packets: int
    objects: int
    bytes: int


class OldCompleted(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="migration.completed"
):
    event_id: UUID
    migration_id: UUID
    occurred_at: datetime
    position: int
    copied: int
    failed: int


def test_an_older_consumer_reads_a_newer_message_with_fields_it_does_not_know() -> None:
    # Given a consumer of an older release, decoding its own union of contracts
    old_decoder = msgspec.json.Decoder(OldPlanned | OldCompleted)
    # When today's Planned message reaches it
    old = old_decoder.decode(contracts.encoder.encode(EXAMPLES[2]))
    # Then what it knows comes through, and the new field is ignored
    assert isinstance(old, OldPlanned)
    assert (old.packets, old.objects, old.bytes, old.position) == (3, 100, 10**12, 41)


def test_a_newer_consumer_reads_an_older_message_with_the_defaults() -> None:
    # Given messages written before the fields with defaults existed
    planned = {
        "type": "migration.planned",
        "event_id": str(uuid4()),
        "migration_id": str(MID),
        "occurred_at": AT.isoformat(),
        "position": 1,
        "packets": 1,
        "objects": 2,
        "bytes": 3,
    }
    requested = {
        **planned,
        **{k: str(v) for k, v in ROUTE.items()},
        "type": "migration.requested",
        "name": "n",
        "owner": "o",
    }
    copied = {
        **{k: v for k, v in planned.items() if k not in ("packets", "objects", "bytes")},
        "type": "object.copied",
        "object_id": str(uuid4()),
        "size": 5,
        "checksum": "md5:x",
        "version": 2,
    }
    # When today's decoder reads them
    got_planned = contracts.decoder.decode(json.dumps(planned))
    got_requested = contracts.decoder.decode(json.dumps(requested))
    got_copied = contracts.decoder.decode(json.dumps(copied))
    # Then the missing fields take their defaults
    assert isinstance(got_planned, contracts.MigrationPlanned)
    assert got_planned.skipped == 0
    assert isinstance(got_requested, contracts.MigrationRequested)
    assert got_requested.overwrite == "if-different"
    assert (got_requested.filters, got_requested.sync_of, got_requested.storage_class) == (
        {},
        None,
        None,
    )
    assert got_requested.limits == contracts.MigrationLimits()
    assert isinstance(got_copied, contracts.ObjectCopied)
    assert got_copied.attempts == 1  # copied at all: tried at least once


def test_a_copy_names_its_attempts_on_the_wire_only_when_it_took_more_than_one() -> None:
    # Given copies at the first attempt (the default) and at the second
    example = EXAMPLES[11]
    assert isinstance(example, contracts.ObjectCopied)
    first, second = (msgspec.structs.replace(example, attempts=n) for n in (1, 2))
    # Then the first is the message a copy always was; the second says 2, and reads back
    assert "attempts" not in json.loads(contracts.encoder.encode(first))
    assert json.loads(contracts.encoder.encode(second))["attempts"] == 2
    assert contracts.decoder.decode(contracts.encoder.encode(second)) == second


def test_a_packet_object_of_an_older_release_without_its_version_reads_as_version_one() -> None:
    # PacketObject travels as an array: [key, size, etag] before version was added
    body = json.loads(contracts.encoder.encode(EXAMPLES[13]))
    body["objects"] = [["a", 1, "e1"]]
    packet = contracts.decoder.decode(json.dumps(body))
    assert isinstance(packet, contracts.PacketPlanned)
    assert packet.objects == [contracts.PacketObject("a", 1, "e1", 1)]


def test_packet_objects_travel_as_arrays_to_keep_large_packets_small() -> None:
    body = json.loads(contracts.encoder.encode(EXAMPLES[13]))
    assert body["objects"] == [["a", 1, "e1", 1], ["b", 2, "e2", 3]]
    assert body["skipped"] == [["c", 3, "identical at the destination"]]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "migration.exploded", "event_id": str(uuid4())},
        {"event_id": str(uuid4())},
        {**json.loads(contracts.encoder.encode(EXAMPLES[3])), "copied": "many"},
    ],
    ids=["unknown-tag", "no-tag", "wrong-type"],
)
def test_a_message_that_is_not_a_contract_is_refused_by_the_decoder(body: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        contracts.decoder.decode(json.dumps(body))


# The consumers' subject filters match the subjects events are published under ------------


def nats_matches(pattern: str, subject: str) -> bool:
    """NATS's wildcards: `*` is one token, a final `>` is one or more."""
    want, got = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(got) > index
        if index >= len(got) or token not in ("*", got[index]):
            return False
    return len(want) == len(got)


@pytest.mark.parametrize(
    ("pattern", "tags"),
    [
        (subjects.MIGRATION_REQUESTED, {"migration.requested"}),
        (subjects.MIGRATION_PLANNED, {"migration.planned"}),
        (subjects.MIGRATION_RESUMED, {"migration.resumed"}),
        (subjects.PACKET_PLANNED, {"packet.planned"}),
        (subjects.PACKET_TRANSFERRED, {"packet.transferred"}),
        (
            subjects.MIGRATION_CONTROL,
            {tag_of(e) for e in EXAMPLES if tag_of(e).startswith("migration.")},
        ),
        (subjects.ALL, {tag_of(e) for e in EXAMPLES}),
    ],
)
def test_each_consumers_filter_takes_exactly_the_events_it_is_for(
    pattern: str, tags: set[str]
) -> None:
    # Given every event published under its subject
    taken = {tag_of(e) for e in EXAMPLES if nats_matches(pattern, contracts.subject_of(e))}
    # Then the filter takes those events and no other
    assert taken == tags


def test_the_subject_of_an_event_is_the_one_subjects_names() -> None:
    event = EXAMPLES[12]  # object.failed
    assert contracts.subject_of(event) == subjects.subject("object", MID, "failed")
