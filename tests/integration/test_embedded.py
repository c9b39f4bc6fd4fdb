"""The embedded servers start, serve, and keep what they should."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import nats
import psutil
import psycopg
import pytest
from botocore.exceptions import ClientError

from launcher.embedded import EmbeddedNats, EmbeddedS3, free_port, start_postgres

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_postgres_answers_a_query_in_a_database_of_the_tests_own(database_url: str) -> None:
    # Given the database made for this test
    with psycopg.connect(database_url) as conn:
        # When we ask it something
        row = conn.execute("SELECT current_database(), 6 * 7").fetchone()

    # Then it answers, from its own database
    assert row is not None
    assert row[0].startswith("test_")
    assert row[1] == 42


def test_postgres_starts_over_a_data_dir_with_a_stale_pid_file(tmp_path: Path) -> None:
    # Given a data dir whose postmaster.pid names a process that is not its postgres
    with start_postgres(tmp_path, free_port(), fast=True):
        pass
    pid_file = tmp_path / "pgdata" / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{tmp_path / 'pgdata'}\n")

    # When Postgres starts again over it
    with (
        start_postgres(tmp_path, free_port(), fast=True) as server,
        psycopg.connect(server.url) as conn,
    ):
        row = conn.execute("SELECT 1").fetchone()

    # Then it served queries
    assert row == (1,)


async def test_nats_keeps_jetstream_messages_across_a_restart(nats_server: EmbeddedNats) -> None:
    # Given a stream holding three messages
    client = await nats.connect(nats_server.url)
    js = client.jetstream()
    await js.add_stream(name="EVENTS", subjects=["events.>"])
    for n in range(3):
        await js.publish(f"events.{n}", f"event {n}".encode())
    await client.close()

    # When the server stops and starts again
    nats_server.stop()
    nats_server.start()

    # Then the stream still holds them, in order
    client = await nats.connect(nats_server.url)
    js = client.jetstream()
    info = await js.stream_info("EVENTS")
    assert info.state.messages == 3
    subscription = await js.pull_subscribe("events.>", durable="reader")
    messages = await subscription.fetch(3, timeout=5)
    assert [m.data for m in messages] == [b"event 0", b"event 1", b"event 2"]
    await client.close()


def test_rclone_servers_accept_only_their_own_credentials(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    s3_client: Callable[[EmbeddedS3], S3Client],
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a bucket on each server
    source_bucket = make_bucket(s3_source)
    destination_bucket = make_bucket(s3_destination)

    # Then each server lists its own bucket for its own credentials
    source_names = [b["Name"] for b in s3_client(s3_source).list_buckets()["Buckets"]]
    destination_names = [b["Name"] for b in s3_client(s3_destination).list_buckets()["Buckets"]]
    assert source_bucket in source_names
    assert destination_bucket in destination_names

    # And refuses the other server's credentials
    for server, other in ((s3_source, s3_destination), (s3_destination, s3_source)):
        intruder = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=other.access_key,
            aws_secret_access_key=other.secret_key,
            region_name="us-east-1",
        )
        with pytest.raises(ClientError) as refused:
            intruder.list_buckets()
        assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_moto_stores_and_returns_an_object(
    moto_s3: EmbeddedS3,
    s3_client: Callable[[EmbeddedS3], S3Client],
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given a bucket on moto
    bucket = make_bucket(moto_s3)
    client = s3_client(moto_s3)

    # When an object is put
    client.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello", Metadata={"owner": "ops"})

    # Then it comes back with its metadata exactly as sent
    got = client.get_object(Bucket=bucket, Key="hello.txt")
    assert got["Body"].read() == b"hello"
    assert got["Metadata"] == {"owner": "ops"}


def test_a_server_dies_with_its_parent(tmp_path: Path) -> None:
    # Given a process that started a nats-server, and is then killed outright
    script = (
        "import sys, time; from pathlib import Path; from launcher.embedded import *\n"
        "server = start_nats(Path(sys.argv[1]), free_port())\n"
        "print(server.pid, flush=True); time.sleep(60)\n"
    )
    argv = [sys.executable, "-c", script, str(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        server = psutil.Process(int(parent.stdout.readline()))
        parent.kill()

    # Then the server goes too (a zombie is gone: only its exit status is left to reap)
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
