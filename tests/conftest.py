"""Real servers for the test session: Postgres, NATS JetStream and three S3 endpoints.

Each runs as a child process on a free port of 127.0.0.1, with its data in the
session's temporary directory. Tests stay isolated by taking a fresh database
(`database_url`), a fresh nats-server (`nats_server`) and fresh buckets
(`make_bucket`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from launcher.embedded import (
    EmbeddedNats,
    EmbeddedNatsCluster,
    EmbeddedPostgres,
    EmbeddedS3,
    free_port,
    start_moto,
    start_nats,
    start_nats_cluster,
    start_postgres,
    start_rclone_s3,
)
from tests.stack import RunningCstor, create_database, s3_client_for, start_cstor

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Recent boto3 adds CRC checksums to every upload; some S3-compatible stores reject them.
os.environ["AWS_REQUEST_CHECKSUM_CALCULATION"] = "when_required"
os.environ["AWS_RESPONSE_CHECKSUM_VALIDATION"] = "when_required"

SOURCE_ACCESS_KEY, SOURCE_SECRET_KEY = "SOURCEACCESSKEY1", "source-secret-01"
DESTINATION_ACCESS_KEY, DESTINATION_SECRET_KEY = "DESTINATIONKEY02", "destin-secret-02"


# Postgres ------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One Postgres for the session, without fsync."""
    with start_postgres(tmp_path_factory.mktemp("postgres"), free_port(), fast=True) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(embedded_postgres: EmbeddedPostgres) -> str:
    """The URL of the session Postgres's `cstor` database."""
    return embedded_postgres.url


@pytest.fixture
def database_url(embedded_postgres: EmbeddedPostgres) -> Iterator[str]:
    """The URL of a new, empty database of this test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield embedded_postgres.url_for(name)
    with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


# NATS ----------------------------------------------------------------------


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server with JetStream of this test's own; the test may stop and start it."""
    with start_nats(tmp_path / "nats-server", free_port()) as server:
        yield server


@pytest.fixture
def nats_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedNatsCluster]:
    """A JetStream cluster of this test's own, of `@pytest.mark.stack(nats_cluster=N)` nodes."""
    size = int(stack_settings(request.node).get("nats_cluster") or 3)
    with start_nats_cluster(tmp_path / "nats-cluster", size) as cluster:
        yield cluster


@pytest.fixture
def nats_url(request: pytest.FixtureRequest) -> str:
    """The client URL of this test's nats-server, or its cluster's URLs (the stack mark's
    `nats_cluster=N`)."""
    if stack_settings(request.node).get("nats_cluster"):
        return str(request.getfixturevalue("nats_cluster").url)
    return str(request.getfixturevalue("nats_server").url)


# S3 ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """`rclone serve s3` over a folder, with the source's credentials."""
    root = tmp_path_factory.mktemp("s3-source")
    with start_rclone_s3(root, free_port(), SOURCE_ACCESS_KEY, SOURCE_SECRET_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def s3_destination(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """Another `rclone serve s3`, with different credentials from the source's."""
    root = tmp_path_factory.mktemp("s3-destination")
    port = free_port()
    with start_rclone_s3(root, port, DESTINATION_ACCESS_KEY, DESTINATION_SECRET_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[EmbeddedS3]:
    """`moto_server`: slower, in memory, but with versioning, tagging and checksums."""
    with start_moto(free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def s3_client() -> Callable[[EmbeddedS3], S3Client]:
    """Makes a boto3 client for a server: `s3_client(s3_source).list_buckets()`."""
    return s3_client_for


@pytest.fixture
def make_bucket() -> Callable[[EmbeddedS3], str]:
    """Creates a bucket with a name no other test uses: `bucket = make_bucket(s3_source)`."""

    def make(server: EmbeddedS3) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        s3_client_for(server).create_bucket(Bucket=name)
        return name

    return make


# The whole stack -----------------------------------------------------------


def stack_settings(node: pytest.Item | pytest.Module) -> dict[str, Any]:
    """The settings a test or its module asks for with `@pytest.mark.stack(**settings)`."""
    marker = node.get_closest_marker("stack")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def log_format(request: pytest.FixtureRequest) -> str:
    """How the `cstor` fixture's services log (CSTOR_LOG_FORMAT): as the stack mark says,
    else text. `@pytest.mark.parametrize("log_format", LOG_FORMATS)` runs a test with each."""
    return str(stack_settings(request.node).get("log_format", "text"))


@pytest.fixture
def cstor(
    request: pytest.FixtureRequest,
    database_url: str,
    nats_url: str,
    tmp_path: Path,
    log_format: str,
) -> Iterator[RunningCstor]:
    """The four services as processes, on a database and a nats-server of the test's own."""
    settings = {**stack_settings(request.node), "log_format": log_format}
    if settings.pop("nats_cluster", 0):
        settings.setdefault("stream_replicas", 3)
    yield from start_cstor(database_url, nats_url, tmp_path, **settings)


@pytest.fixture(scope="module")
def module_cstor(
    request: pytest.FixtureRequest,
    embedded_postgres: EmbeddedPostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningCstor]:
    """One stack for a whole module, for tests that each work in buckets or accounts of their
    own: starting the services once saves seconds per test."""
    data_dir = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with start_nats(data_dir / "nats", free_port()) as nats:
        yield from start_cstor(
            create_database(embedded_postgres),
            nats.url,
            data_dir,
            **stack_settings(request.node),
        )
