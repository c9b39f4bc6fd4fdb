"""Planning rules, as pure functions: filters, overwrite policies, merging, packets."""

from __future__ import annotations

from datetime import UTC, datetime

from cstor.domain import planning
from cstor.domain.planning import Listed, PacketLimits, PlannedObject, Skip

MD5_A = "0cc175b9c0f1b6a831c399e269772661"
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"


def test_pairing_walks_both_listings_once_under_a_prefix_mapping() -> None:
    # Given a source under "photos/" and a destination under "archive/photos/"
    source = [Listed(f"photos/{k}", 1, MD5_A) for k in ("a", "b", "c", "d")]
    destination = [Listed(f"archive/photos/{k}", 1, MD5_A) for k in ("b", "bb", "d", "e")]
    # When they are paired
    pairs = planning.pair_listings(iter(source), iter(destination), "photos/", "archive/photos/")
    # Then each source object meets the destination object at its key, if there is one
    assert [(s.key, d.key if d else None) for s, d in pairs] == [
        ("photos/a", None),
        ("photos/b", "archive/photos/b"),
        ("photos/c", None),
        ("photos/d", "archive/photos/d"),
    ]


def test_if_different_skips_identical_copies_and_copies_changed_ones() -> None:
    src = Listed("k", 1, MD5_A)
    assert planning.decide(src, None, planning.IF_DIFFERENT) == PlannedObject("k", 1, MD5_A)
    assert planning.decide(src, Listed("k", 1, MD5_A), planning.IF_DIFFERENT) == Skip(
        "k", 1, "identical at the destination"
    )
    assert isinstance(
        planning.decide(src, Listed("k", 1, MD5_B), planning.IF_DIFFERENT), PlannedObject
    )
    assert isinstance(
        planning.decide(src, Listed("k", 2, MD5_A), planning.IF_DIFFERENT), PlannedObject
    )


def test_multipart_etags_of_different_part_sizes_compare_by_the_stamped_source_etag() -> None:
    # Given a multipart source and a copy made with another part size
    src, copy = Listed("k", 10, f"{MD5_A}-3"), Listed("k", 10, f"{MD5_B}-2")
    # Then the ETags alone cannot tell, so the stamp cstor left on the copy decides
    assert planning.needs_metadata(src, copy, planning.IF_DIFFERENT)
    assert isinstance(planning.decide(src, copy, planning.IF_DIFFERENT, f"{MD5_A}-3"), Skip)
    assert isinstance(planning.decide(src, copy, planning.IF_DIFFERENT, None), PlannedObject)
    # And two plain MD5 ETags never need a look at the metadata
    assert not planning.needs_metadata(
        Listed("k", 1, MD5_A), Listed("k", 1, MD5_B), planning.IF_DIFFERENT
    )


def test_skip_existing_and_always() -> None:
    src, there = Listed("k", 1, MD5_A), Listed("k", 5, MD5_B)
    assert planning.decide(src, there, planning.SKIP_EXISTING) == Skip(
        "k", 1, "exists at the destination"
    )
    assert isinstance(planning.decide(src, Listed("k", 1, MD5_A), planning.ALWAYS), PlannedObject)


def test_filters_by_glob_size_and_time() -> None:
    day = datetime(2024, 6, 1, tzinfo=UTC)
    filters = planning.Filters(
        include=("*.jpg", "raw/*"),
        exclude=("*/tmp/*",),
        min_size=10,
        max_size=100,
        modified_after=datetime(2024, 1, 1, tzinfo=UTC),
        modified_before=datetime(2025, 1, 1, tzinfo=UTC),
    )

    def admits(key: str, size: int = 50, when: datetime = day) -> bool:
        return filters.admits(Listed(key, size, MD5_A, when), key)

    assert admits("a.jpg")
    assert admits("raw/x.cr2")
    assert not admits("a.png")
    assert not admits("x/tmp/a.jpg")
    assert not admits("a.jpg", size=9)
    assert not admits("a.jpg", size=101)
    assert not admits("a.jpg", when=datetime(2023, 12, 31, tzinfo=UTC))
    assert not admits("a.jpg", when=datetime(2025, 1, 1, tzinfo=UTC))


def test_packets_close_on_count_bytes_and_keep_large_objects_alone() -> None:
    limits = PacketLimits(max_bytes=100, max_objects=3)
    decisions: list[planning.Decision] = [
        PlannedObject("a", 10, MD5_A),
        PlannedObject("b", 10, MD5_A),
        Skip("c", 10, "identical at the destination"),
        PlannedObject("d", 10, MD5_A),
        PlannedObject("e", 10, MD5_A),
        PlannedObject("f", 500, MD5_A),
        PlannedObject("g", 10, MD5_A),
    ]
    packets = list(planning.plan_packets(decisions, limits))
    assert [[o.key for o in p.planned] for p in packets] == [["a", "b", "d"], ["e"], ["f"], ["g"]]
    assert [[o.key for o in p.skipped] for p in packets] == [["c"], [], [], []]
    assert [p.last_key for p in packets] == ["d", "e", "f", "g"]
    assert packets[2].bytes == 500
