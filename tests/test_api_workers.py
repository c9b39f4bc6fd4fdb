"""The api in several worker processes: one port, the relay once, a dead worker replaced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from cstor.embedded import EmbeddedS3
from tests.stack import RunningCstor, s3_client_for, start_cstor


@pytest.fixture
def cstor(database_url: str, nats_url: str, tmp_path: Path) -> Iterator[RunningCstor]:
    yield from start_cstor(database_url, nats_url, tmp_path, api_workers=3)


def api_workers(cstor: RunningCstor) -> list[psutil.Process]:
    api = psutil.Process(cstor.services.processes["api"].pid)
    return [p for p in api.children() if "spawn_main" in " ".join(p.cmdline())]


def test_workers_share_the_port_and_the_relay_runs_once(
    cstor: RunningCstor,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: Callable[[EmbeddedS3], str],
) -> None:
    # Given the api started with three workers
    workers = api_workers(cstor)
    assert len(workers) == 3
    nats_port = int(cstor.settings.nats_url.rsplit(":", 1)[1])

    # When 30 clients each keep a connection to its one port open
    clients = [httpx.Client(base_url=str(cstor.api.base_url)) for _ in range(30)]
    try:
        for client in clients:
            assert client.get("/api/v1/health").status_code == 200
        # Then the connections are spread over the workers (each has some: by chance, one
        # would have none once in 60,000 runs)
        for worker in workers:
            held = [c for c in worker.net_connections() if c.status == "ESTABLISHED"]
            assert [c for c in held if c.laddr.port == cstor.settings.api_port], worker
    finally:
        for client in clients:
            client.close()
    # And only the workers listen (the api's first process does not), and only the first
    # process talks to NATS: it alone runs the relay
    listening = {c.laddr.port for w in workers for c in w.net_connections() if c.status == "LISTEN"}
    assert listening == {cstor.settings.api_port}
    api = psutil.Process(cstor.services.processes["api"].pid)
    assert not [c for c in api.net_connections() if c.status == "LISTEN"]
    assert [c for c in api.net_connections() if c.raddr and c.raddr.port == nats_port]
    for worker in workers:
        assert not [c for c in worker.net_connections() if c.raddr and c.raddr.port == nats_port]

    # And a migration requested through any worker is relayed, copied and completed
    source, dest = make_bucket(s3_source), make_bucket(s3_destination)
    s3_client_for(s3_source).put_object(Bucket=source, Key="a.txt", Body=b"through the workers")
    migration_id = cstor.migrate(
        cstor.connect(s3_source), source, cstor.connect(s3_destination), dest
    )
    assert cstor.wait_finished(migration_id)["status"] == "completed"


def test_a_worker_that_dies_is_replaced(cstor: RunningCstor) -> None:
    # Given the api's three workers
    before = api_workers(cstor)

    # When one of them is killed
    before[0].kill()
    before[0].wait(10)

    # Then the api keeps answering, and a new worker takes its place
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = api_workers(cstor)
        if len(now) == 3 and before[0].pid not in {p.pid for p in now}:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the dead worker was not replaced: {api_workers(cstor)}")
    for _ in range(10):
        assert cstor.api.get("/api/v1/health").status_code == 200
