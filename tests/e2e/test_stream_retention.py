"""The stream keeps messages CSTOR_STREAM_MAX_AGE: once they aged out, the read models are
still rebuilt from the store, and the projector goes on with what comes next."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest

from cstor import bus
from launcher.embedded import EmbeddedS3
from tests.launcher_cli import run_cstor
from tests.stack import RunningCstor, s3_client_for

pytestmark = pytest.mark.stack(stream_max_age=4.0, stream_duplicate_window=1.0)


def finished_migration(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> dict[str, object]:
    """A migration of three objects through the REST API, as the list (the read model)
    shows it once projected."""
    source_bucket, dest_bucket = make_bucket(s3_source), make_bucket(s3_destination)
    for n in range(3):
        s3_client_for(s3_source).put_object(Bucket=source_bucket, Key=f"k{n}", Body=b"x" * n)
    migration_id = cstor.migrate(
        cstor.connect(s3_source, "source"),
        source_bucket,
        cstor.connect(s3_destination, "destination"),
        dest_bucket,
    )
    assert cstor.wait_finished(migration_id, timeout=60)["status"] == "completed"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = {m["id"]: m for m in cstor.api.get("/api/v1/migrations").json()}
        if listed.get(migration_id, {}).get("status") == "completed":
            return listed[migration_id]
        time.sleep(0.2)
    raise AssertionError(f"migration {migration_id} was not projected")


async def stream_messages(nats_url: str) -> int:
    nc = await bus.connect(nats_url, "retention-test")
    try:
        return (await nc.jetstream().stream_info("CSTOR")).state.messages
    finally:
        await nc.close()


def wait_until_aged_out(nats_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while asyncio.run(stream_messages(nats_url)) > 0:
        assert time.monotonic() < deadline, "the stream kept its messages past its max age"
        time.sleep(0.5)


def test_the_read_models_are_rebuilt_once_the_streams_messages_aged_out(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a migration projected, and every message of the stream gone with age
    first = finished_migration(cstor, s3_source, s3_destination, make_bucket)
    wait_until_aged_out(cstor.settings.nats_url)

    # When the read models are rebuilt, the projector stopped
    projector = cstor.services.processes["projector"]
    projector.send_signal(signal.SIGTERM)
    projector.wait(15)
    rebuilt = run_cstor(
        "rebuild-read-models", env={**os.environ, **cstor.settings.to_env()}, timeout=120
    )
    cstor.services.start_one("projector", "projector")

    # Then it succeeds, and the migration reads as it did
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr
    listed = {m["id"]: m for m in cstor.api.get("/api/v1/migrations").json()}
    assert listed[str(first["id"])] == first
    # And the projector goes on: a new migration is projected, the first not twice
    second = finished_migration(cstor, s3_source, s3_destination, make_bucket)
    assert second["objects_copied"] == 3
    listed = {m["id"]: m for m in cstor.api.get("/api/v1/migrations").json()}
    assert listed[str(first["id"])] == first
