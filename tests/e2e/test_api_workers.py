"""The api in several worker processes: one port, the relay once, a dead worker replaced."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import psutil
import psycopg
import pytest

from launcher.embedded import EmbeddedS3
from tests.sessions import PASSWORD, api_token, csrf_field, new_email
from tests.stack import RunningCstor, s3_client_for

pytestmark = pytest.mark.stack(api_workers=3)


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
        # And every worker is ready, NATS included: the relay's connection, by its process
        for client in clients:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["nats"] == "ok"
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


def on_every_worker(cstor: RunningCstor, path: str, headers: dict[str, str]) -> list[int]:
    """The statuses of ``path`` asked on 30 new connections, which the workers share."""
    statuses = []
    for _ in range(30):
        with httpx.Client(base_url=str(cstor.api.base_url), headers=headers) as client:
            statuses.append(client.get(path).status_code)
    return statuses


def test_a_revoked_token_and_an_ended_session_stop_working_on_every_worker_at_once(
    cstor: RunningCstor,
) -> None:
    # Given two users, each with a token and a dashboard session, used through every
    # worker (which now remember whose they are)
    users = []
    for _ in range(2):
        email = new_email()
        token = api_token(cstor.api, email)
        session = sign_in_session(cstor, email)
        users.append((email, {"Authorization": f"Bearer {token}"}, session))
    for email, bearer, session in users:
        for headers in (bearer, {"Cookie": f"cstor_session={session}"}):
            with httpx.Client(base_url=str(cstor.api.base_url), headers=headers) as client:
                for _ in range(10):
                    assert client.get("/api/v1/me").json()["email"] == email
            assert on_every_worker(cstor, "/api/v1/me", headers) == [200] * 30
    email, bearer, session = users[0]

    # When the first user's token is revoked and their session signed out
    token_id = cstor.api.get("/api/v1/tokens", headers=bearer).json()[0]["id"]
    assert cstor.api.delete(f"/api/v1/tokens/{token_id}", headers=bearer).status_code == 204
    with httpx.Client(base_url=str(cstor.api.base_url)) as browser:
        browser.cookies.set("cstor_session", session)
        home = browser.get("/")
        signed_out = browser.post(
            "/sign-out", data={"_csrf_token": csrf_field(home.text)}, follow_redirects=False
        )
        assert signed_out.status_code == 303

    # Then neither works on any worker, from the very next request on
    assert on_every_worker(cstor, "/api/v1/me", bearer) == [401] * 30
    assert (
        on_every_worker(cstor, "/api/v1/me", {"Cookie": f"cstor_session={session}"}) == [401] * 30
    )
    # And the other user's still do
    other_email, other_bearer, other_session = users[1]
    assert on_every_worker(cstor, "/api/v1/me", other_bearer) == [200] * 30
    other_cookie = {"Cookie": f"cstor_session={other_session}"}
    assert on_every_worker(cstor, "/api/v1/me", other_cookie) == [200] * 30
    with httpx.Client(base_url=str(cstor.api.base_url), headers=other_cookie) as client:
        assert client.get("/api/v1/me").json()["email"] == other_email


def sign_in_session(cstor: RunningCstor, email: str) -> str:
    """A dashboard session of the user, signed in through the form."""
    with httpx.Client(base_url=str(cstor.api.base_url)) as browser:
        form = browser.get("/sign-in")
        browser.post(
            "/sign-in",
            data={"email": email, "password": PASSWORD, "_csrf_token": csrf_field(form.text)},
        )
        session = browser.cookies.get("cstor_session")
    assert session
    return session


def test_a_migration_changed_by_the_projector_is_seen_changed_on_every_worker_at_once(
    cstor: RunningCstor,
) -> None:
    # Given a migration in the read models, read through every worker (which now
    # remember its row), and another user
    owner = cstor.api.get("/api/v1/me").json()["id"]
    migration_id = uuid.uuid4()
    with psycopg.connect(cstor.settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO migrations_view (id, owner, name, status, source_connection_id,"
            " source_bucket, source_prefix, destination_connection_id, destination_bucket,"
            " destination_prefix, objects_copied, created_at, updated_at)"
            " VALUES (%s, %s, 'seen', 'running', %s, 'src', '', %s, 'dst', '', 1, now(), now())",
            (migration_id, owner, uuid.uuid4(), uuid.uuid4()),
        )
        path = f"/api/v1/migrations/{migration_id}"
        mine = dict(cstor.api.headers)
        assert set(totals_on_every_worker(cstor, path, mine)) == {("running", 1)}

        # When the projector records more copies and the end (as it does, in SQL)
        conn.execute(
            "UPDATE migrations_view SET status = 'completed', objects_copied = 7 WHERE id = %s",
            (migration_id,),
        )

        # Then every worker shows the new totals from the very next request on
        assert set(totals_on_every_worker(cstor, path, mine)) == {("completed", 7)}
    # And to anyone else it does not exist, on any worker
    stranger = {"Authorization": f"Bearer {api_token(cstor.api)}"}
    assert on_every_worker(cstor, path, stranger) == [404] * 30


def totals_on_every_worker(
    cstor: RunningCstor, path: str, headers: dict[str, str]
) -> list[tuple[str, int]]:
    seen = []
    for _ in range(30):
        with httpx.Client(base_url=str(cstor.api.base_url), headers=headers) as client:
            state = client.get(path).json()
            seen.append((state["status"], state["objects_copied"]))
    return seen
