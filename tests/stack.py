"""A running cstor for integration tests: the four services as real processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from cstor.settings import Settings
from launcher.embedded import EmbeddedPostgres, EmbeddedS3, free_port
from launcher.stack import ServiceProcesses
from tests.connection_forms import connection_body
from tests.sessions import api_token

API_START_TIMEOUT = 120.0


@dataclass
class RunningCstor:
    """The services of one test, and an HTTP client for its REST API."""

    settings: Settings
    services: ServiceProcesses
    api: httpx.Client

    def connect(self, server: EmbeddedS3, name: str = "conn") -> str:
        """Create a connection to an S3 server through the API; return its id."""
        response = self.api.post(
            "/api/v1/connections",
            json=connection_body(server, name),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def migrate(
        self, source_id: str, source_bucket: str, dest_id: str, dest_bucket: str, **extra: Any
    ) -> str:
        response = self.api.post(
            "/api/v1/migrations",
            json={
                "source_connection_id": source_id,
                "source_bucket": source_bucket,
                "destination_connection_id": dest_id,
                "destination_bucket": dest_bucket,
                **extra,
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def wait_until(
        self, migration_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 120.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.api.get(f"/api/v1/migrations/{migration_id}").json()
            if done(state):
                return state
            time.sleep(0.2)
        raise AssertionError(f"migration did not get there in {timeout} s: {state}")

    def wait_finished(self, migration_id: str, timeout: float = 120.0) -> dict[str, Any]:
        return self.wait_until(
            migration_id, lambda s: s["status"] in ("completed", "failed"), timeout
        )


def s3_client_for(server: EmbeddedS3) -> Any:
    """A boto3 S3 client signed with the server's own credentials."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )


def create_database(server: EmbeddedPostgres) -> str:
    """A new empty database on the test Postgres; its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server.url_for(name)


def start_cstor(
    database_url: str,
    nats_url: str,
    data_dir: Path,
    transfer_replicas: int = 1,
    **settings: Any,
) -> Iterator[RunningCstor]:
    config = Settings(
        database_url=database_url,
        nats_url=nats_url,
        data_dir=data_dir,
        secret_key=Fernet.generate_key().decode(),
        api_port=free_port(),
        transfer_ack_wait=5.0,
        planner_ack_wait=5.0,
        **settings,
    )
    services = ServiceProcesses(config, transfer_replicas=transfer_replicas)
    services.start()
    api = httpx.Client(base_url=f"http://127.0.0.1:{config.api_port}", timeout=30.0)
    try:
        _wait_for_api(api, services)
        # Everything a test does through the API, it does as a signed-up user with a token.
        api.headers["Authorization"] = f"Bearer {api_token(api)}"
        yield RunningCstor(config, services, api)
    finally:
        api.close()
        services.stop()


def _wait_for_api(api: httpx.Client, services: ServiceProcesses) -> None:
    # Starting is not what these tests measure: at a load average of 20 on two cores the api's
    # workers took 26 s to import the app and answer, so allow a lot more than that.
    deadline = time.monotonic() + API_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if api.get("/api/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        for label, process in services.processes.items():
            if process.poll() is not None:
                log = (services.settings.data_dir / "logs" / f"{label}.log").read_text()
                pytest.fail(f"{label} exited:\n{log[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"the api did not answer within {API_START_TIMEOUT:.0f} s")
