"""The planning rules on their own: pairing listings, filters, overwrite policies, packets.

Pure functions of cstor.domain.planning (and the parts of cstor.decisions that do no
I/O), checked without any server.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from cstor import decisions, s3
from cstor.domain import planning
from cstor.domain.migration import Migration
from cstor.domain.planning import (
    FailedObject,
    Filters,
    Listed,
    PacketLimits,
    PlannedObject,
    Skip,
)
from cstor.domain.route import Route

MD5_A = "0cc175b9c0f1b6a831c399e269772661"
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"
MULTI_A = f"{MD5_A}-3"
MULTI_B = f"{MD5_B}-2"
NOON = datetime(2024, 6, 1, 12, tzinfo=UTC)


def listed(*keys: str, size: int = 1, etag: str = MD5_A) -> list[Listed]:
    return [Listed(key, size, etag) for key in keys]


def paired(
    source: list[Listed], destination: list[Listed], src: str = "", dst: str = ""
) -> list[tuple[str, str | None]]:
    pairs = planning.pair_listings(iter(source), iter(destination), src, dst)
    return [(s.key, d.key if d else None) for s, d in pairs]


# Where a key lands ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "source_prefix", "destination_prefix", "landed"),
    [
        ("photos/a.jpg", "photos/", "archive/photos/", "archive/photos/a.jpg"),
        ("photos/a.jpg", "photos/", "", "a.jpg"),
        ("a.jpg", "", "backup/", "backup/a.jpg"),
        ("a.jpg", "", "", "a.jpg"),
        # A prefix need not end in a slash: it is a plain string prefix, as in S3.
        ("photos2024/a", "photos", "pics", "pics2024/a"),
    ],
)
def test_a_source_key_lands_under_the_destination_prefix(
    key: str, source_prefix: str, destination_prefix: str, landed: str
) -> None:
    assert planning.destination_key(key, source_prefix, destination_prefix) == landed


# Pairing the two listings --------------------------------------------------------


def test_an_empty_destination_pairs_every_source_object_with_nothing() -> None:
    assert paired(listed("a", "b"), []) == [("a", None), ("b", None)]


def test_an_empty_source_yields_no_pair_whatever_the_destination_holds() -> None:
    assert paired([], listed("a", "b")) == []


def test_destination_objects_past_the_last_source_key_are_never_paired() -> None:
    # Given a destination holding keys before, between and after the source's
    source = listed("b", "d")
    destination = listed("a", "b", "c", "d", "e", "f")
    # Then only the keys the source has meet their counterpart
    assert paired(source, destination) == [("b", "b"), ("d", "d")]


def test_pairing_reads_the_destination_lazily_as_the_source_advances() -> None:
    # Given a destination listing that records how far it was read
    read: list[str] = []

    def destination() -> Iterator[Listed]:
        for key in ("a", "b", "c", "d", "e"):
            read.append(key)
            yield Listed(key, 1, MD5_A)

    pairs = planning.pair_listings(iter(listed("b", "c", "x")), destination(), "", "")
    # When only the first pair is taken
    first = next(pairs)
    # Then the destination was read up to that key and no further
    assert (first[0].key, first[1].key if first[1] else None) == ("b", "b")
    assert read == ["a", "b"]


def test_keys_are_merged_in_code_point_order_as_s3_lists_utf8_keys() -> None:
    # UTF-8 byte order and code point order agree, so non-ASCII keys still pair up.
    keys = sorted(["a", "z", "é", "日本", "\U0001f600"])
    assert keys == sorted(keys, key=lambda k: k.encode())
    assert paired(listed(*keys), listed(*keys[1:])) == [
        (keys[0], None),
        *[(k, k) for k in keys[1:]],
    ]


def test_a_destination_key_that_only_shares_a_beginning_is_not_a_match() -> None:
    assert paired(listed("a"), listed("a/", "ab")) == [("a", None)]


# Filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "exclude", "key", "admitted"),
    [
        ((), (), "anything/at/all", True),
        (("*.jpg",), (), "a.jpg", True),
        # fnmatch's * crosses slashes: "*.jpg" admits a JPEG at any depth.
        (("*.jpg",), (), "deep/down/a.jpg", True),
        (("*.jpg",), (), "a.JPG", False),  # case matters, as in S3 keys
        (("*.jpg", "*.png"), (), "b.png", True),
        (("raw/*",), (), "raw/x", True),
        (("raw/*",), (), "cooked/raw/x", False),
        ((), ("*.tmp",), "a.tmp", False),
        ((), ("*.tmp",), "a.tmp.keep", True),  # the glob matches the whole key
        ((), ("tmp/*",), "tmp/a", False),
        ((), ("tmp/*",), "x/tmp/a", True),
        (("*.jpg",), ("private/*",), "private/a.jpg", False),  # exclude wins over include
        (("report-?.csv",), (), "report-1.csv", True),
        (("report-?.csv",), (), "report-10.csv", False),
        (("[ab]*",), (), "banana", True),
        (("[ab]*",), (), "cherry", False),
    ],
)
def test_globs_match_the_key_below_the_source_prefix(
    include: tuple[str, ...], exclude: tuple[str, ...], key: str, admitted: bool
) -> None:
    filters = Filters(include=include, exclude=exclude)
    assert filters.admits(Listed(key, 1, MD5_A), key) is admitted


def test_globs_see_the_relative_key_not_the_full_one() -> None:
    # Given an include on "a/*" and an object whose full key is "photos/a/x"
    filters = Filters(include=("a/*",))
    obj = Listed("photos/a/x", 1, MD5_A)
    # Then what counts is the key below the prefix the caller cut off
    assert filters.admits(obj, "a/x")
    assert not filters.admits(obj, "photos/a/x")


@pytest.mark.parametrize(
    ("size", "admitted"), [(9, False), (10, True), (55, True), (100, True), (101, False)]
)
def test_the_size_bounds_are_inclusive(size: int, admitted: bool) -> None:
    filters = Filters(min_size=10, max_size=100)
    assert filters.admits(Listed("k", size, MD5_A), "k") is admitted


def test_a_zero_minimum_admits_empty_objects_and_a_zero_maximum_only_them() -> None:
    assert Filters(min_size=0).admits(Listed("k", 0, MD5_A), "k")
    assert Filters(max_size=0).admits(Listed("k", 0, MD5_A), "k")
    assert not Filters(max_size=0).admits(Listed("k", 1, MD5_A), "k")


@pytest.mark.parametrize(
    ("modified", "admitted"),
    [
        (NOON - timedelta(days=1), False),
        (NOON, False),  # modified_after is strictly after
        (NOON + timedelta(microseconds=1), True),
        (NOON + timedelta(days=1), False),  # modified_before is strictly before
        (NOON + timedelta(days=1) - timedelta(microseconds=1), True),
        (None, True),  # a store that gives no time passes the time filters
    ],
)
def test_the_time_bounds_are_exclusive(modified: datetime | None, admitted: bool) -> None:
    filters = Filters(modified_after=NOON, modified_before=NOON + timedelta(days=1))
    assert filters.admits(Listed("k", 1, MD5_A, modified), "k") is admitted


def test_every_filter_must_pass_at_once() -> None:
    filters = Filters(include=("*.jpg",), min_size=10, modified_after=NOON)
    late = NOON + timedelta(hours=1)
    assert filters.admits(Listed("a.jpg", 10, MD5_A, late), "a.jpg")
    assert not filters.admits(Listed("a.png", 10, MD5_A, late), "a.png")
    assert not filters.admits(Listed("a.jpg", 9, MD5_A, late), "a.jpg")
    assert not filters.admits(Listed("a.jpg", 10, MD5_A, NOON), "a.jpg")


# Overwrite policies ----------------------------------------------------------------


@pytest.mark.parametrize("policy", planning.OVERWRITE_POLICIES)
def test_an_object_missing_at_the_destination_is_copied_under_every_policy(policy: str) -> None:
    src = Listed("k", 7, MD5_A)
    assert planning.decide(src, None, policy) == PlannedObject("k", 7, MD5_A)


@pytest.mark.parametrize(
    ("existing", "policy", "decision"),
    [
        (Listed("k", 7, MD5_A), planning.ALWAYS, PlannedObject("k", 7, MD5_A)),
        (
            Listed("k", 7, MD5_A),
            planning.SKIP_EXISTING,
            Skip("k", 7, "exists at the destination"),
        ),
        (
            Listed("k", 1, MD5_B),
            planning.SKIP_EXISTING,
            Skip("k", 7, "exists at the destination"),
        ),
        (
            Listed("k", 7, MD5_A),
            planning.IF_DIFFERENT,
            Skip("k", 7, "identical at the destination"),
        ),
        (
            Listed("k", 7, f'"{MD5_A}"'),
            planning.IF_DIFFERENT,
            Skip("k", 7, "identical at the destination"),
        ),
        (Listed("k", 7, MD5_B), planning.IF_DIFFERENT, PlannedObject("k", 7, MD5_A)),
        (Listed("k", 8, MD5_A), planning.IF_DIFFERENT, PlannedObject("k", 7, MD5_A)),
    ],
    ids=[
        "always-copies-identical",
        "skip-existing-identical",
        "skip-existing-different",
        "if-different-identical",
        "if-different-quoted-etag",
        "if-different-other-md5",
        "if-different-other-size",
    ],
)
def test_an_object_at_the_destination_is_decided_by_the_policy(
    existing: Listed, policy: str, decision: planning.Decision
) -> None:
    assert planning.decide(Listed("k", 7, MD5_A), existing, policy) == decision


def test_a_skipped_object_keeps_the_source_size_not_the_destinations() -> None:
    decided = planning.decide(Listed("k", 7, MD5_A), Listed("k", 99, MD5_B), planning.SKIP_EXISTING)
    assert decided == Skip("k", 7, "exists at the destination")


def test_the_same_multipart_etag_is_the_same_content_without_any_stamp() -> None:
    assert planning.same_content(Listed("k", 9, MULTI_A), Listed("k", 9, f'"{MULTI_A}"'), None)
    assert not planning.needs_metadata(
        Listed("k", 9, MULTI_A), Listed("k", 9, MULTI_A), planning.IF_DIFFERENT
    )


@pytest.mark.parametrize(
    ("source_etag", "destination_etag", "stamp", "same"),
    [
        (MULTI_A, MULTI_B, MULTI_A, True),
        (MULTI_A, MULTI_B, f'"{MULTI_A}"', True),  # the stamp is normalized too
        (MULTI_A, MULTI_B, MULTI_B, False),  # the stamp of another source
        (MULTI_A, MULTI_B, None, False),
        # A single-part source copied in parts: the copy's ETag is multipart, the stamp MD5
        (MD5_A, MULTI_B, MD5_A, True),
        (MD5_A, MULTI_B, None, False),
        # Two plain MD5s decide alone: a stamp cannot make different bytes the same
        (MD5_A, MD5_B, MD5_A, False),
        # A source without an ETag: an empty stamp (older copies in parts had one) proves
        # nothing
        ("", MD5_B, "", False),
        ("", MULTI_B, "", False),
    ],
)
def test_etags_that_cannot_be_compared_fall_back_to_the_stamp(
    source_etag: str, destination_etag: str, stamp: str | None, same: bool
) -> None:
    src, dst = Listed("k", 9, source_etag), Listed("k", 9, destination_etag)
    assert planning.same_content(src, dst, stamp) is same


def test_objects_whose_store_gives_no_etag_are_copied_again() -> None:
    # Nothing proves two ETag-less objects of one size hold the same bytes
    src, dst = Listed("k", 9, ""), Listed("k", 9, "")
    assert not planning.needs_metadata(src, dst, planning.IF_DIFFERENT)
    assert planning.decide(src, dst, planning.IF_DIFFERENT) == PlannedObject("k", 9, "")


@pytest.mark.parametrize(
    ("source", "existing", "policy", "needed"),
    [
        (Listed("k", 9, MD5_A), Listed("k", 9, MULTI_B), planning.IF_DIFFERENT, True),
        (Listed("k", 9, MULTI_A), Listed("k", 9, MD5_B), planning.IF_DIFFERENT, True),
        (Listed("k", 9, MULTI_A), Listed("k", 8, MULTI_B), planning.IF_DIFFERENT, False),
        (Listed("k", 9, MULTI_A), Listed("k", 9, MULTI_B), planning.SKIP_EXISTING, False),
        (Listed("k", 9, MULTI_A), Listed("k", 9, MULTI_B), planning.ALWAYS, False),
        (Listed("k", 9, MULTI_A), None, planning.IF_DIFFERENT, False),
    ],
    ids=[
        "md5-vs-multipart",
        "multipart-vs-md5",
        "sizes-differ",
        "skip-existing",
        "always",
        "absent",
    ],
)
def test_a_head_request_is_needed_only_when_it_can_change_the_decision(
    source: Listed, existing: Listed | None, policy: str, needed: bool
) -> None:
    assert planning.needs_metadata(source, existing, policy) is needed


# Packets -----------------------------------------------------------------------------


def keys_of(packets: list[planning.PacketDraft]) -> list[list[str]]:
    return [[d.key for d in (*p.planned, *p.skipped)] for p in packets]


def test_no_decision_makes_no_packet() -> None:
    assert list(planning.plan_packets([], PacketLimits())) == []


def test_skipped_objects_alone_still_make_a_packet_carrying_the_checkpoint() -> None:
    skipped = [Skip(k, 5, "exists at the destination") for k in ("a", "b")]
    (packet,) = planning.plan_packets(skipped, PacketLimits())
    assert packet.planned == []
    assert [s.key for s in packet.skipped] == ["a", "b"]
    assert (packet.last_key, packet.bytes) == ("b", 0)


def test_skipped_objects_count_neither_bytes_nor_objects_toward_the_limits() -> None:
    # Given room for two planned objects of 10 bytes, with skipped ones between them
    limits = PacketLimits(max_bytes=20, max_objects=2)
    decisions_: list[planning.Decision] = [
        PlannedObject("a", 10, MD5_A),
        Skip("b", 1000, "exists at the destination"),
        Skip("c", 1000, "exists at the destination"),
        PlannedObject("d", 10, MD5_A),
        PlannedObject("e", 10, MD5_A),
    ]
    packets = list(planning.plan_packets(decisions_, limits))
    # Then the skipped ones ride along and the third planned object starts a new packet
    assert [[o.key for o in p.planned] for p in packets] == [["a", "d"], ["e"]]
    assert [p.bytes for p in packets] == [20, 10]


def test_a_packet_closes_at_the_decision_limit_counting_skipped_objects() -> None:
    limits = PacketLimits(max_decisions=3)
    skipped = [Skip(f"k{i}", 1, "identical at the destination") for i in range(7)]
    packets = list(planning.plan_packets(skipped, limits))
    assert [len(p.skipped) for p in packets] == [3, 3, 1]
    assert [p.last_key for p in packets] == ["k2", "k5", "k6"]


def test_a_packet_closes_before_its_keys_outgrow_one_message() -> None:
    # Given keys of 10 UTF-8 bytes each ("é" is two) and room for 25 bytes of keys
    limits = PacketLimits(max_key_bytes=25)
    keys = [f"{i}" + "é" * 4 + "x" for i in range(5)]
    assert all(len(k.encode()) == 10 for k in keys)
    packets = list(planning.plan_packets([PlannedObject(k, 1, MD5_A) for k in keys], limits))
    assert keys_of(packets) == [keys[0:2], keys[2:4], keys[4:5]]
    assert [p.key_bytes for p in packets] == [20, 20, 10]


def test_an_object_larger_than_a_packet_goes_alone_even_after_skipped_ones() -> None:
    limits = PacketLimits(max_bytes=100)
    decisions_: list[planning.Decision] = [
        Skip("a", 1, "exists at the destination"),
        PlannedObject("b", 500, MD5_A),
        PlannedObject("c", 1, MD5_A),
    ]
    packets = list(planning.plan_packets(decisions_, limits))
    assert keys_of(packets) == [["b", "a"], ["c"]]
    assert packets[0].bytes == 500


def test_packets_keep_listing_order_and_lose_no_decision() -> None:
    # Given a long mixed run of decisions and small limits
    decisions_: list[planning.Decision] = [
        PlannedObject(f"{i:04}", i % 7, MD5_A)
        if i % 3
        else Skip(f"{i:04}", i, "exists at the destination")
        for i in range(500)
    ]
    limits = PacketLimits(max_bytes=40, max_objects=9, max_key_bytes=200, max_decisions=30)
    packets = list(planning.plan_packets(decisions_, limits))
    # Then every decision is in exactly one packet, each packet's last key is its greatest
    planned = [o for p in packets for o in p.planned]
    skipped = [s for p in packets for s in p.skipped]
    assert sorted([*planned, *skipped], key=lambda d: d.key) == decisions_
    assert all(p.last_key == max(d.key for d in (*p.planned, *p.skipped)) for p in packets)
    assert [p.last_key for p in packets] == sorted(p.last_key for p in packets)
    # And within its limits
    for p in packets:
        assert len(p.planned) <= 9
        assert len(p.planned) + len(p.skipped) <= 30
        assert p.key_bytes <= 200
        assert p.bytes <= 40 or len(p.planned) == 1
        assert p.bytes == sum(o.size for o in p.planned)


def test_a_destination_object_that_is_not_there_when_read_is_copied() -> None:
    # Given an object whose destination copy the listing showed, but HEAD says is gone
    source = Listed("k", 10, MULTI_A)
    # Then it is not there: it is copied (and the copy verified, as every copy is)
    decision = planning.decide_unread(source, "not-found", "reading ... failed (HTTP 404)")
    assert decision == PlannedObject("k", 10, MULTI_A)


@pytest.mark.parametrize("reason", ["access-denied", "server-error", "unreachable", "s3-error"])
def test_a_destination_object_that_cannot_be_read_otherwise_is_that_object_s_failure(
    reason: str,
) -> None:
    source = Listed("k", 10, MULTI_A)
    decision = planning.decide_unread(source, reason, "the destination said no")
    assert decision == FailedObject("k", 10, MULTI_A, reason, "the destination said no")


def test_an_object_failed_while_planning_rides_in_its_packet_as_one_of_its_objects() -> None:
    # Given room for two objects of 10 bytes, and an object that failed between copies
    limits = PacketLimits(max_bytes=100, max_objects=2)
    decisions_: list[planning.Decision] = [
        PlannedObject("a", 10, MD5_A),
        FailedObject("b", 10, MULTI_A, "access-denied", "denied"),
        Skip("c", 10, "identical at the destination"),
        PlannedObject("d", 10, MD5_A),
    ]
    packets = list(planning.plan_packets(decisions_, limits))
    # Then it is in a packet's failed objects, counted among its objects and bytes (the
    # first packet is full with it)
    assert [[o.key for o in p.planned] for p in packets] == [["a"], ["d"]]
    assert [[o.key for o in p.failed] for p in packets] == [["b"], []]
    assert [[o.key for o in p.skipped] for p in packets] == [[], ["c"]]
    assert [(p.objects, p.bytes, p.last_key) for p in packets] == [(2, 20, "b"), (1, 10, "d")]


def test_a_packet_of_failed_objects_only_is_still_a_packet() -> None:
    failed = [FailedObject(k, 5, MD5_A, "server-error", "failed") for k in ("a", "b")]
    (packet,) = planning.plan_packets(failed, PacketLimits())
    assert (packet.planned, packet.objects, packet.last_key) == ([], 2, "b")


# cstor.decisions: the pure parts ------------------------------------------------------


def test_filters_as_a_migration_stores_them_become_planning_filters() -> None:
    raw = {
        "include": ["*.jpg"],
        "exclude": ["tmp/*", "*.part"],
        "min_size": 1,
        "max_size": 2048,
        "modified_after": "2024-01-01T00:00:00+00:00",
        "modified_before": "2025-01-01T00:00:00+00:00",
    }
    assert decisions.filters_from_dict(raw) == Filters(
        include=("*.jpg",),
        exclude=("tmp/*", "*.part"),
        min_size=1,
        max_size=2048,
        modified_after=datetime(2024, 1, 1, tzinfo=UTC),
        modified_before=datetime(2025, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "raw",
    [{}, {"include": None, "exclude": [], "modified_after": None, "modified_before": ""}],
    ids=["empty", "nulls"],
)
def test_no_filters_stored_means_every_object_is_admitted(raw: dict[str, object]) -> None:
    filters = decisions.filters_from_dict(raw)
    assert filters == Filters()
    assert filters.admits(Listed("any/key", 0, "", None), "any/key")


def test_a_scope_is_what_the_migration_asked_for() -> None:
    source, destination = uuid4(), uuid4()
    migration = Migration(
        name="m",
        owner="o@example.com",
        source_connection_id=source,
        source_bucket="src",
        source_prefix="in/",
        destination_connection_id=destination,
        destination_bucket="dst",
        destination_prefix="out/",
        overwrite=planning.SKIP_EXISTING,
        filters={"include": ["*.csv"], "min_size": 3},
        sync_of=None,
        storage_class=None,
        limits={},
    )
    scope = decisions.Scope.of(migration)
    assert scope == decisions.Scope(
        route=Route(source, "src", "in/", destination, "dst", "out/"),
        overwrite=planning.SKIP_EXISTING,
        filters=Filters(include=("*.csv",), min_size=3),
    )


def test_each_destination_object_that_cannot_be_read_is_decided_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given multipart source objects, each with a copy of its size at the destination
    # under another ETag (only the destination's metadata can tell them apart)
    source = s3.Endpoint(url="http://source:9000", access_key="a", secret_key="s")
    destination = s3.Endpoint(url="http://destination:9000", access_key="b", secret_key="t")
    keys = ["denied", "fine", "gone", "unreachable"]

    def list_pages(
        endpoint: s3.Endpoint, bucket: str, prefix: str = "", start_after: str | None = None,
        *, side: str = "",
    ) -> Iterator[list[s3.ListedObject]]:  # fmt: skip
        etag = MULTI_A if endpoint == source else MD5_B
        yield [s3.ListedObject(key=k, size=9, etag=etag, last_modified=NOON) for k in keys]

    # And a destination that says "gone" is not there, refuses "denied", does not answer
    # for "unreachable", and shows the stamp of the source's ETag on "fine"
    failures = {
        "gone": s3.S3Error("not-found", "reading ... failed (HTTP 404)"),
        "denied": s3.S3Error("access-denied", "reading ... was denied (HTTP 403)"),
        "unreachable": s3.S3Error("unreachable", "connection refused", transient=True),
    }
    read: list[tuple[str, str, str]] = []

    def head_metadata(endpoint: s3.Endpoint, bucket: str, key: str, *, side: str = "") -> dict:
        assert endpoint == destination
        read.append((bucket, key, side))
        if key in failures:
            raise failures[key]
        return {"cstor-source-etag": MULTI_A}

    monkeypatch.setattr(s3, "list_pages", list_pages)
    monkeypatch.setattr(s3, "head_metadata", head_metadata)
    route = Route(uuid4(), "src", "", uuid4(), "dst", "")

    # When they are decided
    decided = list(decisions.decisions(decisions.Scope(route), source, destination))

    # Then each destination object was read once, named as the destination's; the one not
    # there is copied, the identical one skipped, and each other one failed on its own
    assert read == [("dst", key, "destination") for key in keys]
    assert decided == [
        FailedObject("denied", 9, MULTI_A, "access-denied", "reading ... was denied (HTTP 403)"),
        Skip("fine", 9, "identical at the destination"),
        PlannedObject("gone", 9, MULTI_A),
        FailedObject("unreachable", 9, MULTI_A, "unreachable", "connection refused"),
    ]


def test_prefetched_pages_come_in_order_and_all_of_them() -> None:
    pages = [[i, i + 1] for i in range(0, 50, 2)]
    assert list(decisions.prefetched(iter(pages))) == pages


def test_a_listing_that_fails_raises_in_the_consumer_after_the_pages_before() -> None:
    def pages() -> Iterator[list[int]]:
        yield [1]
        yield [2]
        raise ConnectionError("the store went away")

    got: list[list[int]] = []
    stream = decisions.prefetched(pages())
    got.append(next(stream))
    got.append(next(stream))
    with pytest.raises(ConnectionError, match="went away"):
        next(stream)
    assert got == [[1], [2]]


def test_a_consumer_that_stops_early_stops_the_listing_too() -> None:
    # Given an endless listing whose pages are counted as they are fetched
    listed_pages = itertools.count()

    def pages() -> Iterator[int]:
        for n in itertools.count():
            next(listed_pages)
            yield n

    # When the consumer takes three pages and stops
    before = set(threading.enumerate())
    stream = decisions.prefetched(pages(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    (filler,) = [t for t in set(threading.enumerate()) - before if t.name == "listing"]
    stream.close()
    # Then the thread listing ends, having run no further ahead than its queue allows
    filler.join(timeout=5)
    assert not filler.is_alive()
    assert next(listed_pages) <= 3 + 2 + 1


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("source_prefix", "destination_prefix"), [("", ""), ("photos/", "backup/photos/"), ("a", "")]
)
def test_the_streaming_merge_pairs_as_a_lookup_by_key_would(
    seed: int, source_prefix: str, destination_prefix: str
) -> None:
    # Given random key-ordered listings that overlap in part, keys of awkward characters
    rng = random.Random(seed)
    alphabet = "ab/-.é0~"
    names = {"".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(300)}
    source = sorted(source_prefix + n for n in names if rng.random() < 0.7)
    destination = sorted(
        destination_prefix + n
        for n in names | {"".join(rng.choices(alphabet, k=3)) for _ in range(50)}
        if rng.random() < 0.5
    )
    # When they are merged
    got = paired(listed(*source), listed(*destination), source_prefix, destination_prefix)
    # Then each source key meets exactly the destination key a dictionary lookup finds
    there = set(destination)
    expected = []
    for key in source:
        wanted = planning.destination_key(key, source_prefix, destination_prefix)
        expected.append((key, wanted if wanted in there else None))
    assert got == expected


def test_planning_a_sync_end_to_end_counts_what_to_copy_and_skip() -> None:
    # Given a source of 6 objects under "in/", of which the destination has 3 under "out/"
    source = [
        Listed("in/a.jpg", 10, MD5_A),
        Listed("in/b.jpg", 20, MD5_A),
        Listed("in/c.tmp", 30, MD5_A),
        Listed("in/d.jpg", 40, MD5_A),
        Listed("in/e.jpg", 50, MULTI_A),
        Listed("in/f.jpg", 60, MD5_A),
    ]
    destination = [
        Listed("out/a.jpg", 10, MD5_A),  # identical
        Listed("out/b.jpg", 20, MD5_B),  # changed
        Listed("out/e.jpg", 50, MULTI_B),  # another part size; its stamp says the same source
    ]
    stamps = {"out/e.jpg": MULTI_A}
    filters = Filters(exclude=("*.tmp",))
    # When planned as the planner does: filter, merge, decide, cut into packets
    in_scope = (o for o in source if filters.admits(o, o.key.removeprefix("in/")))
    decided = [
        planning.decide(
            obj,
            target,
            planning.IF_DIFFERENT,
            stamps.get(target.key)
            if target and planning.needs_metadata(obj, target, planning.IF_DIFFERENT)
            else None,
        )
        for obj, target in planning.pair_listings(in_scope, iter(destination), "in/", "out/")
    ]
    packets = list(planning.plan_packets(decided, PacketLimits(max_objects=2)))
    # Then b, d and f are copied, a and e skipped as identical, c never considered
    planned = [o.key for p in packets for o in p.planned]
    skipped = [(s.key, s.reason) for p in packets for s in p.skipped]
    assert planned == ["in/b.jpg", "in/d.jpg", "in/f.jpg"]
    assert skipped == [
        ("in/a.jpg", "identical at the destination"),
        ("in/e.jpg", "identical at the destination"),
    ]
    assert sum(p.bytes for p in packets) == 20 + 40 + 60
    assert packets[-1].last_key == "in/f.jpg"
