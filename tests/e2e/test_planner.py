"""The planner against real servers: overwrite policies, filters, estimates, scans, sync."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from launcher.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for

# One stack for the module: each test works in buckets of its own.
pytestmark = pytest.mark.stack(packet_max_objects=20)


def put(server: EmbeddedS3, bucket: str, objects: dict[str, bytes]) -> None:
    client = s3_client_for(server)
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def keys(server: EmbeddedS3, bucket: str) -> dict[str, bytes]:
    client = s3_client_for(server)
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return found


def body(n: int) -> bytes:
    return f"object {n} ".encode() * (n % 7 + 1)


@pytest.fixture
def buckets(
    module_cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> dict[str, str]:
    return {
        "source_connection_id": module_cstor.connect(s3_source, "source"),
        "source_bucket": make_bucket(s3_source),
        "destination_connection_id": module_cstor.connect(s3_destination, "destination"),
        "destination_bucket": make_bucket(s3_destination),
    }


def run(module_cstor: RunningCstor, **request: Any) -> dict[str, Any]:
    response = module_cstor.api.post("/api/v1/migrations", json=request)
    assert response.status_code == 201, response.text
    return module_cstor.wait_finished(response.json()["id"])


def test_if_different_copies_only_what_is_missing_or_changed(
    module_cstor: RunningCstor,
    buckets: dict[str, str],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    # Given 60 source objects, 30 of them already identical at the destination, 5 changed
    source = {f"k/{n:03d}": body(n) for n in range(60)}
    put(s3_source, buckets["source_bucket"], source)
    there = dict(list(source.items())[:30])
    there |= dict.fromkeys(list(source)[30:35], b"stale")
    put(s3_destination, buckets["destination_bucket"], there)

    # When the migration runs with the default policy
    state = run(module_cstor, **buckets)

    # Then the identical ones are skipped and counted, everything else copied
    assert state["status"] == "completed"
    assert (state["objects_copied"], state["objects_skipped"]) == (30, 30)
    assert state["bytes_skipped"] == sum(len(source[k]) for k in list(source)[:30])
    assert keys(s3_destination, buckets["destination_bucket"]) == source
    # And skipped objects are listed with their reason
    page = module_cstor.api.get(
        f"/api/v1/migrations/{state['id']}/objects", params={"status": "skipped", "limit": 100}
    ).json()
    assert len(page["items"]) == 30
    assert {item["reason"] for item in page["items"]} == {"identical at the destination"}


def test_skip_existing_and_always(
    module_cstor: RunningCstor,
    buckets: dict[str, str],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    put(s3_source, buckets["source_bucket"], {"a": b"new a", "b": b"new b"})
    put(s3_destination, buckets["destination_bucket"], {"a": b"old a"})

    skip = run(module_cstor, **buckets, overwrite="skip-existing")
    assert (skip["objects_copied"], skip["objects_skipped"]) == (1, 1)
    assert keys(s3_destination, buckets["destination_bucket"])["a"] == b"old a"

    always = run(module_cstor, **buckets, overwrite="always")
    assert (always["objects_copied"], always["objects_skipped"]) == (2, 0)
    assert keys(s3_destination, buckets["destination_bucket"])["a"] == b"new a"


def test_filters_and_prefix_mapping(
    module_cstor: RunningCstor,
    buckets: dict[str, str],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    # Given photos of several kinds and sizes under a prefix, and other things beside it
    put(
        s3_source,
        buckets["source_bucket"],
        {
            "photos/a.jpg": b"x" * 100,
            "photos/b.png": b"x" * 100,
            "photos/tmp/c.jpg": b"x" * 100,
            "photos/tiny.jpg": b"x",
            "other/d.jpg": b"x" * 100,
        },
    )
    # When only large-enough jpgs outside tmp/ are migrated to another prefix
    state = run(
        module_cstor,
        **buckets,
        source_prefix="photos/",
        destination_prefix="backup/2024/",
        filters={"include": ["*.jpg"], "exclude": ["tmp/*"], "min_size": 10},
    )
    # Then exactly that object arrives, under the new prefix
    assert state["objects_copied"] == 1
    assert list(keys(s3_destination, buckets["destination_bucket"])) == ["backup/2024/a.jpg"]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"modified_after": "yesterday"}, "filters.modified_after"),
        ({"min_size": 10, "max_size": 5}, "filters.max_size"),
        (
            {"modified_after": "2025-01-01T00:00:00Z", "modified_before": "2024-01-01"},
            "filters.modified_before",
        ),
        ({"include": [""]}, "filters.include"),
    ],
)
def test_an_invalid_filter_is_a_422_naming_the_field(
    module_cstor: RunningCstor, buckets: dict[str, str], filters: dict[str, Any], field: str
) -> None:
    before = len(module_cstor.api.get("/api/v1/migrations").json())
    response = module_cstor.api.post("/api/v1/migrations", json={**buckets, "filters": filters})
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert len(module_cstor.api.get("/api/v1/migrations").json()) == before  # nothing created


def test_the_estimate_counts_before_anything_is_copied(
    module_cstor: RunningCstor,
    buckets: dict[str, str],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    source = {f"e/{n}": body(n) for n in range(12)}
    put(s3_source, buckets["source_bucket"], source)
    put(s3_destination, buckets["destination_bucket"], {"e/0": source["e/0"], "e/1": source["e/1"]})

    before = len(module_cstor.api.get("/api/v1/migrations").json())
    estimate = module_cstor.api.post("/api/v1/migrations/estimate", json=buckets)

    assert estimate.status_code == 201, estimate.text
    assert estimate.json()["objects_to_copy"] == 10
    assert estimate.json()["objects_to_skip"] == 2
    assert estimate.json()["bytes_to_copy"] == sum(len(source[f"e/{n}"]) for n in range(2, 12))
    assert estimate.json()["estimated_seconds"] >= 0
    assert len(keys(s3_destination, buckets["destination_bucket"])) == 2  # nothing copied
    assert len(module_cstor.api.get("/api/v1/migrations").json()) == before


def test_a_bucket_scan_counts_objects_and_bytes_by_top_level_prefix(
    module_cstor: RunningCstor,
    buckets: dict[str, str],
    s3_source: EmbeddedS3,
) -> None:
    put(
        s3_source,
        buckets["source_bucket"],
        {
            "a/1": b"1",
            "a/b/2": b"22",
            "c/3": b"333",
            "root": b"4444",
        },
    )
    response = module_cstor.api.get(
        f"/api/v1/connections/{buckets['source_connection_id']}/buckets/"
        f"{buckets['source_bucket']}/scan"
    )
    assert response.status_code == 200, response.text
    scan = response.json()
    assert (scan["objects"], scan["bytes"]) == (4, 10)
    assert [(p["prefix"], p["objects"], p["bytes"]) for p in scan["prefixes"]] == [
        ("", 1, 4),
        ("a/", 2, 3),
        ("c/", 1, 3),
    ]


def test_sync_again_copies_only_new_or_changed_objects(
    module_cstor: RunningCstor,
    buckets: dict[str, str],
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    # Given a finished migration
    source = {f"s/{n:02d}": body(n) for n in range(25)}
    put(s3_source, buckets["source_bucket"], source)
    first = run(module_cstor, **buckets)
    assert first["objects_copied"] == 25
    # When one object changes, one is added, and the migration is synced again
    put(s3_source, buckets["source_bucket"], {"s/03": b"changed", "s/99": b"new"})
    response = module_cstor.api.post(f"/api/v1/migrations/{first['id']}/sync")
    assert response.status_code == 201, response.text
    second = module_cstor.wait_finished(response.json()["id"])
    # Then only those two are copied; the rest is skipped as identical
    assert (second["objects_copied"], second["objects_skipped"]) == (2, 24)
    assert second["sync_of"] == first["id"]
    assert keys(s3_destination, buckets["destination_bucket"])["s/03"] == b"changed"
