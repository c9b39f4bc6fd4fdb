"""The lookup the use cases make beyond the library's own (events of many ids at one
version), the recorder choosing how it is answered, and the notification log the outbox
relay reads."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from cstor.app.lookup import EventLookup, RecorderLookup, lookup_for
from cstor.app.migrations import Migrations
from cstor.app.results import CopyResult
from tests.given import Given


def stored(originator_id: UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id, version, "topic", b"{}")


def test_the_lookup_finds_each_id_s_event_at_the_version_only() -> None:
    # Given two originators with three and one events, and one with none
    recorder = POPOApplicationRecorder()
    first, second, absent = uuid4(), uuid4(), uuid4()
    recorder.insert_events([stored(first, v) for v in (1, 2, 3)] + [stored(second, 1)])

    # When events at version 2 of all three are looked up
    found = RecorderLookup(recorder).events_at([first, second, absent], 2)

    # Then only the first's second event is found
    assert [(e.originator_id, e.originator_version) for e in found] == [(first, 2)]


def test_the_lookup_of_no_ids_finds_nothing() -> None:
    recorder = POPOApplicationRecorder()
    recorder.insert_events([stored(uuid4(), 1)])
    assert RecorderLookup(recorder).events_at([], 1) == []


def test_a_recorder_with_a_lookup_of_its_own_answers_it() -> None:
    # Given a recorder answering the lookup itself (as the Postgres one does in one query)
    class OwnLookup(POPOApplicationRecorder):
        def events_at(self, originator_ids: Sequence[UUID], version: int) -> list[StoredEvent]:
            return [stored(originator_id, version) for originator_id in originator_ids]

    recorder = OwnLookup()

    # Then the application's lookup is the recorder itself
    assert lookup_for(recorder) is recorder
    assert isinstance(recorder, EventLookup)


def test_a_recorder_without_one_is_asked_id_by_id() -> None:
    recorder = POPOApplicationRecorder()
    lookup = lookup_for(recorder)
    assert isinstance(lookup, RecorderLookup)
    assert lookup.recorder is recorder


def test_the_application_on_memory_uses_the_library_s_selects(app: Migrations) -> None:
    assert isinstance(app.lookup, RecorderLookup)
    assert app.lookup.recorder is app.recorder


def test_notifications_come_after_a_position_in_the_order_recorded(
    app: Migrations, given: Given
) -> None:
    # Given a migration requested, planning and running: five events
    given.running(["a"])
    everything = app.notifications(0, 100)
    assert [n.id for n in everything] == [1, 2, 3, 4, 5]

    # When the relay asks for two after position 2
    page = app.notifications(2, 2)

    # Then it gets the third and fourth, as recorded
    assert [n.id for n in page] == [3, 4]
    assert [n.topic for n in page] == [n.topic for n in everything[2:4]]


def test_a_copy_result_is_a_copy_unless_it_has_a_reason() -> None:
    assert CopyResult("a", size=1).copied
    assert not CopyResult("a", reason="not-found", message="gone").copied
    assert CopyResult("a").version == 1
