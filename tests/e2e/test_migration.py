"""A migration end to end, through the REST API, on real Postgres, NATS and S3 servers."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import psycopg
import pytest

from launcher.embedded import EmbeddedS3
from tests.leak_scan import LOG_FORMATS, every_log_as_text
from tests.stack import RunningCstor, s3_client_for

pytestmark = pytest.mark.stack(packet_max_objects=40)


def seed(server: EmbeddedS3, bucket: str, count: int, seed: int = 1) -> dict[str, bytes]:
    """Objects of mixed sizes (empty, small, one over a MiB) under a few prefixes."""
    rng = random.Random(seed)
    client = s3_client_for(server)
    objects = {}
    for n in range(count):
        size = 0 if n % 20 == 0 else (1536 * 1024 if n == 1 else rng.randint(1, 64 * 1024))
        key = f"{['a', 'b/c', 'd e'][n % 3]}/object-{n:04d}.bin"
        objects[key] = rng.randbytes(size)
        client.put_object(Bucket=bucket, Key=key, Body=objects[key])
    return objects


def test_every_object_arrives_with_identical_bytes_and_exact_totals(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a source bucket of 150 objects and an empty destination bucket
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    objects = seed(s3_source, source_bucket, 150)

    # When a migration between them is created through the REST API
    source_id = cstor.connect(s3_source, "source")
    dest_id = cstor.connect(s3_destination, "destination")
    migration_id = cstor.migrate(source_id, source_bucket, dest_id, dest_bucket)
    state = cstor.wait_finished(migration_id)

    # Then every object is at the destination with identical bytes
    assert state["status"] == "completed"
    destination = s3_client_for(s3_destination)
    for key, body in objects.items():
        copied = destination.get_object(Bucket=dest_bucket, Key=key)["Body"].read()
        assert hashlib.md5(copied).digest() == hashlib.md5(body).digest(), key
    # And the read model's totals equal the objects
    assert state["objects_planned"] == state["objects_copied"] == len(objects)
    assert state["bytes_planned"] == state["bytes_copied"] == sum(map(len, objects.values()))
    assert state["objects_failed"] == 0
    # And each object's verified checksum can be paged through
    keys, cursor = [], None
    while True:
        params = {"limit": 60, "status": "copied", **({"cursor": cursor} if cursor else {})}
        page = cstor.api.get(f"/api/v1/migrations/{migration_id}/objects", params=params).json()
        keys += [item["key"] for item in page["items"]]
        assert all(item["checksum"].startswith("md5") for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert keys == sorted(objects)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_secret_keys_stay_in_the_credential_store(
    cstor: RunningCstor,
    database_url: str,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a finished migration between two connections
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    seed(s3_source, source_bucket, 5)
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    assert cstor.wait_finished(migration_id)["status"] == "completed"
    secrets = [s3_source.secret_key.encode(), s3_destination.secret_key.encode()]

    # Then no secret is in the event store, the connections table, the logs or the API
    with psycopg.connect(database_url) as conn:
        stored = b"".join(bytes(row[0]) for row in conn.execute("SELECT state FROM cstor_events"))
        ciphertexts = b"".join(
            bytes(row[0]) for row in conn.execute("SELECT secret_ciphertext FROM connections")
        )
    logs = every_log_as_text(cstor.settings.data_dir, cstor.settings.log_format).encode()
    answers = b"".join(
        cstor.api.get(path).content
        for path in (
            "/api/v1/connections",
            "/api/v1/migrations",
            f"/api/v1/migrations/{migration_id}",
        )
    )
    for secret in secrets:
        for where, text in (
            ("events", stored),
            ("connections", ciphertexts),
            ("logs", logs),
            ("api", answers),
        ):
            assert secret not in text, f"a secret key leaked into {where}"


def test_an_empty_source_completes_at_once(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given an empty source bucket
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    # When it is migrated
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source_bucket, cstor.connect(s3_destination), dest_bucket
    )
    # Then the migration completes with nothing planned
    state = cstor.wait_finished(migration_id, timeout=30)
    assert (state["status"], state["objects_planned"], state["objects_copied"]) == (
        "completed",
        0,
        0,
    )
