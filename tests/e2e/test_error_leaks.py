"""S3 errors reach people as words: no signed URL, credential or library text anywhere.

A store that is down, a name that does not resolve, TLS that fails, keys that are
refused, a store that goes silent: each is provoked against real servers through
every door a user has (connection create, bucket list, bucket scan, estimate,
migration create, a migration whose stores go away), and then every answer, every
page, the services' logs, the NATS stream and the event store are searched for what
must never be there: presigned query parameters, Authorization headers, the keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
from psycopg import sql

from cstor import s3
from cstor.s3 import multipart, source_stream, wire
from cstor.s3.control import client
from cstor.s3.copy_context import CopyContext
from cstor.s3.redaction import redact, store_name
from launcher.embedded import EmbeddedS3, free_port, start_rclone_s3
from tests.certificates import self_signed_certificate
from tests.conftest import (
    DESTINATION_ACCESS_KEY,
    DESTINATION_SECRET_KEY,
    SOURCE_ACCESS_KEY,
    SOURCE_SECRET_KEY,
)
from tests.leak_scan import LOG_FORMATS, every_log_as_text
from tests.sessions import PASSWORD, api_token, csrf_field, new_email
from tests.stack import RunningCstor, s3_client_for

OTHER_ACCESS_KEY, OTHER_SECRET_KEY = "OTHERACCESSKEY03", "other-secret-003"
WRONG_SECRET_KEY = "wrong-secret-0004"
SECRETS = (SOURCE_SECRET_KEY, DESTINATION_SECRET_KEY, OTHER_SECRET_KEY, WRONG_SECRET_KEY)
ACCESS_KEYS = (SOURCE_ACCESS_KEY, DESTINATION_ACCESS_KEY, OTHER_ACCESS_KEY)
SIGNED = ("X-Amz-Signature", "X-Amz-Credential", "Authorization", "Signature=")
MIB = 1024 * 1024


def leaks(text: str, *, keys: bool = True) -> list[str]:
    """What of the forbidden words `text` holds (the access key ids too, if `keys`)."""
    lowered = text.lower()
    words = SIGNED + SECRETS + (ACCESS_KEYS if keys else ())
    return [word for word in words if word.lower() in lowered]


# A store that can be made to fail ----------------------------------------------------


@dataclass
class Switch:
    """A loopback TCP port in front of a real S3 server that can be made to fail:
    forward (to `upstream`), silent (accepts, never answers) or down (refuses)."""

    upstream: int
    mode: str = "forward"
    listener: socket.socket = field(default_factory=socket.socket)
    held: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def forward_to(self, port: int) -> None:
        """Forward to another server from now on; kept-alive connections are closed, so
        that clients connect again (to it)."""
        self.upstream = port
        self._drop()

    def down(self) -> None:
        """Close the port: connections are refused from now on."""
        self.mode = "down"
        # shutdown first: close alone leaves the port listening while accept() waits on it.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._drop()

    def _drop(self) -> None:
        # shutdown, not just close: it wakes the pumps blocked reading, and the peers
        # see the connection end at once.
        for sock in self.held:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.held.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed: down
            self.held.append(client)
            if self.mode == "forward":
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
                self.held.append(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()
            # silent: the connection is held open and never answered


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def source_switch(s3_source: EmbeddedS3) -> Iterator[Switch]:
    switch = Switch(s3_source.port)
    yield switch
    switch.down()


@pytest.fixture
def destination_switch(s3_destination: EmbeddedS3) -> Iterator[Switch]:
    switch = Switch(s3_destination.port)
    yield switch
    switch.down()


@pytest.fixture
def other_keys(s3_source: EmbeddedS3) -> Iterator[EmbeddedS3]:
    """The source's folder served again, with other keys: the source's are refused there."""
    assert s3_source.root is not None
    with start_rclone_s3(s3_source.root, free_port(), OTHER_ACCESS_KEY, OTHER_SECRET_KEY) as server:
        yield server


@pytest.fixture
def tls_store(tmp_path: Path, s3_source: EmbeddedS3) -> Iterator[EmbeddedS3]:
    """The source's folder over HTTPS with a certificate nobody vouches for."""
    assert s3_source.root is not None
    certificate = self_signed_certificate(tmp_path)
    port = free_port()
    with start_rclone_s3(
        s3_source.root, port, SOURCE_ACCESS_KEY, SOURCE_SECRET_KEY, tls=certificate
    ) as server:
        yield server


# cstor, and everything it says ------------------------------------------------------


@dataclass
class Said:
    """Every answer the API and the dashboard gave in a test: (what was asked, answer)."""

    answers: list[tuple[str, httpx.Response]] = field(default_factory=list)

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append((f"{response.request.method} {response.request.url}", response))


pytestmark = pytest.mark.stack(transfer_multipart_threshold=5 * MIB, transfer_part_size=5 * MIB)


@pytest.fixture
def said(cstor: RunningCstor) -> Said:
    found = Said()
    cstor.api.event_hooks["response"] = [found.hook]
    return found


@pytest.fixture
def web(cstor: RunningCstor, said: Said) -> Iterator[httpx.Client]:
    """The dashboard, signed in as the user whose token `cstor.api` holds."""
    email = new_email("leaks")
    cstor.api.headers["Authorization"] = f"Bearer {api_token(cstor.api, email)}"
    with httpx.Client(
        base_url=str(cstor.api.base_url), timeout=120.0, event_hooks={"response": [said.hook]}
    ) as client:
        token = csrf_field(client.get("/sign-in").text)
        form = {"email": email, "password": PASSWORD, "_csrf_token": token, "next": "/"}
        signed_in = client.post("/sign-in", data=form)
        assert signed_in.status_code in (200, 303), signed_in.text
        client.headers["x-csrftoken"] = token
        yield client


def connect(cstor: RunningCstor, endpoint: str, access: str, secret: str) -> httpx.Response:
    return cstor.api.post(
        "/api/v1/connections",
        json={"name": "store", "endpoint": endpoint, "access_key": access, "secret_key": secret},
        timeout=90.0,  # a silent store is given up on after 3 tries of 10 s
    )


def connection(cstor: RunningCstor, endpoint: str, access: str, secret: str) -> str:
    response = connect(cstor, endpoint, access, secret)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_nothing_leaked(cstor: RunningCstor, said: Said) -> None:
    """No answer, page, log, NATS message or stored row holds a signed URL or a key."""
    found = []
    for asked, response in said.answers:
        # A saved connection is shown with its access key id, on purpose.
        path = response.request.url.path
        keys = not (path.startswith("/api/v1/connections") and response.is_success)
        found += [(asked, word) for word in leaks(response.text, keys=keys)]
    logs = every_log_as_text(cstor.settings.data_dir, cstor.settings.log_format)
    found += [("logs", word) for word in leaks(logs)]
    found += [("NATS", word) for word in leaks(asyncio.run(_stream_text(cstor)))]
    found += [("Postgres", word) for word in leaks(_stored_text(cstor.settings.database_url))]
    assert found == []


async def _stream_text(cstor: RunningCstor) -> str:
    """Every message of the event stream, as text."""
    nc = await nats.connect(cstor.settings.nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(cstor.settings.stream_name)
        texts: list[str] = []
        if not info.state.messages:
            return ""
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(cstor.settings.stream_name, sequence)
            texts.append(f"{message.subject} {message.headers} {(message.data or b'').decode()}")
        return "\n".join(texts)
    finally:
        await nc.close()


def _stored_text(database_url: str) -> str:
    """Every row of the event store and the read models (not the connections, which keep
    their access key ids, and their secrets encrypted), as text."""
    texts: list[str] = []
    with psycopg.connect(database_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        for table in tables:
            if "connection" in table:
                continue
            for row in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))):
                texts.extend(
                    value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    for value in row
                )
    return "\n".join(texts)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what}")


# The tests -------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_connection_checks_that_fail_say_why_in_words(
    cstor: RunningCstor, said: Said, s3_source: EmbeddedS3, tls_store: EmbeddedS3
) -> None:
    # Given stores that fail each in its own way
    silent = Switch(s3_source.port, mode="silent")
    cases = {
        f"http://127.0.0.1:{free_port()}": "connection refused",
        "http://nonexistent.invalid": "does not resolve",
        s3_source.endpoint.replace("http://", "https://"): "does not answer in TLS",
        tls_store.endpoint: "certificate is not trusted",
        silent.endpoint: "stopped answering",
    }
    for endpoint, words in cases.items():
        # When a connection to it is tested
        response = connect(cstor, endpoint, SOURCE_ACCESS_KEY, SOURCE_SECRET_KEY)

        # Then it is refused, saying why in words
        assert response.status_code == 422, response.text
        assert words in response.json()["detail"], response.json()["detail"]

    # And keys the store refuses are refused with the store's own code and message
    refused = connect(cstor, s3_source.endpoint, SOURCE_ACCESS_KEY, WRONG_SECRET_KEY)
    assert refused.status_code == 422
    assert "SignatureDoesNotMatch" in refused.json()["detail"]
    silent.down()
    assert_nothing_leaked(cstor, said)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_a_store_gone_after_its_connection_was_saved_is_told_in_words(
    cstor: RunningCstor,
    said: Said,
    web: httpx.Client,
    source_switch: Switch,
    other_keys: EmbeddedS3,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    # Given a connection to a store with a bucket, and another to a working store
    bucket = _bucket_with(s3_source, {"a/1": b"one", "b/2": b"two"})
    target = _bucket_with(s3_destination, {})
    source = connection(cstor, source_switch.endpoint, SOURCE_ACCESS_KEY, SOURCE_SECRET_KEY)
    destination = connection(
        cstor, s3_destination.endpoint, DESTINATION_ACCESS_KEY, DESTINATION_SECRET_KEY
    )
    request = {
        "source_connection_id": source,
        "source_bucket": bucket,
        "destination_connection_id": destination,
        "destination_bucket": target,
    }

    # When the store refuses the keys now (another store answers there), then goes down
    for fault, words in (("refused", "InvalidAccessKeyId"), ("down", "connection refused")):
        if fault == "refused":
            source_switch.forward_to(other_keys.port)
        else:
            source_switch.down()

        # Then every way of asking it fails, saying why in words
        answers = [
            cstor.api.get(f"/api/v1/connections/{source}/buckets"),
            cstor.api.get(f"/api/v1/connections/{source}/buckets/{bucket}/scan"),
            cstor.api.post("/api/v1/migrations/estimate", json=request),
            cstor.api.post("/api/v1/migrations", json=request),
        ]
        for answer in answers:
            assert answer.status_code == 422, answer.text
            assert words in answer.json()["detail"], answer.json()["detail"]
        pages = [
            web.get(f"/buckets/{source}"),
            web.get(f"/buckets/{source}/{bucket}/scan"),
            web.post("/migrations/estimate", data=request),
            web.post("/migrations", data=request),
        ]
        for shown in pages:
            assert words in shown.text, shown.text
    assert_nothing_leaked(cstor, said)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_a_migration_whose_stores_go_away_records_words(
    cstor: RunningCstor,
    said: Said,
    web: httpx.Client,
    source_switch: Switch,
    destination_switch: Switch,
    other_keys: EmbeddedS3,
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
) -> None:
    # Given connections through ports that can fail, to buckets with small and large objects
    objects = {"small": b"s" * 1000, "large": b"L" * (6 * MIB)}
    source = connection(cstor, source_switch.endpoint, SOURCE_ACCESS_KEY, SOURCE_SECRET_KEY)
    destination = connection(
        cstor, destination_switch.endpoint, DESTINATION_ACCESS_KEY, DESTINATION_SECRET_KEY
    )
    planner, transfer = (cstor.services.processes[name] for name in ("planner", "transfer"))

    # When the source refuses the keys after the migration was accepted, before it is planned
    planner.terminate()
    planner.wait()
    refused = cstor.migrate(
        source, _bucket_with(s3_source, objects), destination, _bucket_with(s3_destination, {})
    )
    source_switch.forward_to(other_keys.port)
    cstor.services.restart_exited()

    # Then the migration fails, saying why in words
    failed = cstor.wait_finished(refused)
    assert failed["status"] == "failed"
    assert "InvalidAccessKeyId" in failed["error"], failed
    assert "InvalidAccessKeyId" in web.get(f"/migrations/{refused}").text

    # When the destination refuses the keys once the migration is planned, before copies
    source_switch.forward_to(s3_source.port)
    transfer.terminate()
    transfer.wait()
    copying = cstor.migrate(
        source, _bucket_with(s3_source, objects), destination, _bucket_with(s3_destination, {})
    )
    cstor.wait_until(copying, lambda state: state["objects_planned"] == 2, timeout=60)
    destination_switch.forward_to(other_keys.port)
    cstor.services.restart_exited()

    # Then each object fails, saying why in words, on the API and the dashboard
    cstor.wait_finished(copying)
    failures = cstor.api.get(f"/api/v1/migrations/{copying}/objects?status=failed").json()
    assert {item["key"] for item in failures["items"]} == set(objects)
    for item in failures["items"]:
        assert "InvalidAccessKeyId" in item["error"], item
    web.get(f"/migrations/{copying}")
    web.get(f"/migrations/{copying}/objects?status=failed")

    # When the source goes down while a migration is being planned
    destination_switch.forward_to(s3_destination.port)
    planner = cstor.services.processes["planner"]
    planner.terminate()
    planner.wait()
    waiting = cstor.migrate(
        source, _bucket_with(s3_source, objects), destination, _bucket_with(s3_destination, {})
    )
    source_switch.down()
    cstor.services.restart_exited()

    # Then retrying the failed copies of the earlier migration is refused, saying why
    retried = cstor.api.post(f"/api/v1/migrations/{copying}/retry-failed")
    assert retried.status_code == 422, retried.text
    assert "connection refused" in retried.json()["detail"]

    # And the planner tries again, saying why in its log
    log = cstor.settings.data_dir / "logs" / "planner.log"
    wait_for(lambda: "connection refused" in log.read_text(), 150, "the planner's retry")
    assert cstor.api.get(f"/api/v1/migrations/{waiting}").json()["status"] != "failed"
    assert_nothing_leaked(cstor, said)


def _bucket_with(server: EmbeddedS3, objects: dict[str, bytes]) -> str:
    client = s3_client_for(server)
    name = f"leaks-{time.monotonic_ns() % 10**12}"
    client.create_bucket(Bucket=name)
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name


# The adapter's own paths, one by one -----------------------------------------------


@pytest.fixture
def failing(s3_source: EmbeddedS3, tls_store: EmbeddedS3) -> dict[str, tuple[s3.Endpoint, str]]:
    """Endpoints that fail each in its own way, with the words that must say how."""

    def at(url: str, secret: str = SOURCE_SECRET_KEY) -> s3.Endpoint:
        return s3.Endpoint(url=url, access_key=SOURCE_ACCESS_KEY, secret_key=secret)

    return {
        "down": (at(f"http://127.0.0.1:{free_port()}"), "connection refused"),
        "no such name": (at("http://nonexistent.invalid"), "does not resolve"),
        "not TLS": (at(s3_source.endpoint.replace("http:", "https:")), "does not answer in TLS"),
        "untrusted": (at(tls_store.endpoint), "certificate is not trusted"),
        "wrong secret": (at(s3_source.endpoint, WRONG_SECRET_KEY), "SignatureDoesNotMatch"),
    }


async def test_every_data_path_words_its_failures(
    failing: dict[str, tuple[s3.Endpoint, str]], s3_source: EmbeddedS3
) -> None:
    # Given an object at the source
    bucket = _bucket_with(s3_source, {"k": b"data"})
    for fault, (endpoint, words) in failing.items():
        # When it is read, listed and written by each of the adapter's clients
        errors: list[s3.S3Error] = []
        for attempt in _data_paths(endpoint, bucket):
            with pytest.raises(s3.S3Error) as raised:
                await attempt()
            errors.append(raised.value)

        # Then each says what happened in words, and nothing that signs a request
        for error in errors:
            assert words in str(error), (fault, str(error))
            assert leaks(str(error)) == [], (fault, str(error))


def _data_paths(endpoint: s3.Endpoint, bucket: str) -> list[Callable[[], Coroutine[Any, Any, Any]]]:
    """Reading `k` (lean client, source stream), writing, listing: each to raise S3Error."""

    async def get() -> None:
        client = wire.WireClient(endpoint)
        response = await client.get(bucket, "k", {})
        if response.status != 200:  # any answer comes back; the copier words it so
            raise client.error(response, f"reading 'k' in {bucket!r}")

    async def put() -> None:
        await wire.WireClient(endpoint).put(bucket, "new", {}, b"new")

    async def listing() -> None:
        await asyncio.to_thread(lambda: next(s3.list_pages(endpoint, bucket)))

    async def read_stream() -> None:
        await _stream_get(endpoint, bucket, "k")

    return [get, put, listing, read_stream]


async def _stream_get(endpoint: s3.Endpoint, bucket: str, key: str) -> None:
    """A GET stream of `key` (4 bytes), as multipart copies read their sources."""
    context = CopyContext(
        endpoint, endpoint, memory_budget=MIB, threads=2, attempts=1, journal=None
    )
    async with source_stream.opened(context, bucket, key, 4, "") as stream:
        async for _ in stream.chunks(MIB):
            pass


def test_a_logged_chain_carries_no_signed_url(caplog: pytest.LogCaptureFixture) -> None:
    # Given a listing that failed: urllib3's error under it quotes the presigned URL
    endpoint = s3.Endpoint(
        url=f"http://127.0.0.1:{free_port()}",
        access_key=SOURCE_ACCESS_KEY,
        secret_key=SOURCE_SECRET_KEY,
    )
    with pytest.raises(s3.S3Error) as raised:
        next(s3.list_pages(endpoint, "bucket"))
    assert "X-Amz-Signature" in str(raised.value.__cause__)

    # When a service logs it with its chain, as cstor.bus logs a failed handler
    with caplog.at_level(logging.WARNING):
        logging.getLogger("services.planner").error("planning failed", exc_info=raised.value)
        logging.getLogger("urllib3.connectionpool").warning("retrying %s", "/b?X-Amz-Signature=1")

    # Then neither the chain nor a library's own line carries it
    assert "planning failed" in caplog.text
    assert "connection refused" in caplog.text.lower()
    assert leaks(caplog.text) == []


def test_a_part_upload_to_a_store_gone_says_so_in_words(
    source_switch: Switch, other_keys: EmbeddedS3, s3_source: EmbeddedS3
) -> None:
    # Given a multipart upload open at a store (parts go up to presigned URLs)
    bucket = _bucket_with(s3_source, {})
    endpoint = s3.Endpoint(
        url=source_switch.endpoint, access_key=SOURCE_ACCESS_KEY, secret_key=SOURCE_SECRET_KEY
    )
    upload = multipart.Upload.create(
        client(endpoint), multipart.http_pool(2, endpoint.url), endpoint.url, bucket, "large", {}
    )
    part = [memoryview(b"p" * 1024)]

    # When the store refuses the keys, then goes down, as a part goes up
    for fault, words in (("refused", "InvalidAccessKeyId"), ("down", "connection refused")):
        if fault == "refused":
            source_switch.forward_to(other_keys.port)
        else:
            source_switch.down()
        with pytest.raises(s3.S3Error) as raised:
            upload.put_part(1, part)

        # Then the error says so in words, not with the presigned URL it was sent to
        assert words in str(raised.value), str(raised.value)
        assert "uploading part 1 of 'large'" in str(raised.value)
        assert leaks(str(raised.value)) == []


# The last resort, without a server --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Max retries exceeded with url: /b?list-type=2&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={SOURCE_ACCESS_KEY}%2F20261203%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Signature=46572021698d (Caused by NewConnectionError)",
        f"PUT http://127.0.0.1:9000/b/k?partNumber=1&uploadId=x&AWSAccessKeyId={SOURCE_ACCESS_KEY}"
        "&Signature=abc%3D&Expires=1",
        f"headers: {{'Authorization': b'AWS4-HMAC-SHA256 Credential={SOURCE_ACCESS_KEY}/2026"
        "1203/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab12'}",
        f"Authorization: AWS4-HMAC-SHA256 Credential={SOURCE_ACCESS_KEY}/x, Signature=ab12",
        f"Could not connect to http://{SOURCE_ACCESS_KEY}:{SOURCE_SECRET_KEY}@store.invalid/b",
    ],
)
def test_redaction_leaves_no_signed_request_in_words(text: str) -> None:
    assert leaks(redact(text)) == []


def test_redaction_keeps_the_words_that_help() -> None:
    # What failed, where, and the store's own code stay readable
    text = "listing bucket 'b' at http://127.0.0.1:9000 failed (HTTP 403 AccessDenied: no)"
    assert redact(text) == text
    assert store_name(f"https://{SOURCE_ACCESS_KEY}:x@s3.example.com:9000/p?q=1") == (
        "https://s3.example.com:9000"
    )
