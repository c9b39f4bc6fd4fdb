"""The small-object HTTP client (cstor.s3.wire): signing, framing, kept-alive connections."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cstor import s3
from cstor.s3 import wire
from cstor.s3.tls import tls_context
from launcher.embedded import EmbeddedS3, free_port, start_rclone_s3
from tests.certificates import self_signed_certificate
from tests.s3_objects import endpoint_of, planned

MakeBucket = Callable[[EmbeddedS3], str]

# UTF-8 text as it travels in an HTTP header: its bytes, one latin-1 character each.
# "ü" is C3 BC and "à" is C3 A0: U+00A0 must not be taken for a blank when signing.
UTF8_VALUE = "grüße à la  carte".encode().decode("latin-1")


async def test_signed_requests_are_accepted_and_wrong_keys_are_not(
    s3_source: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given rclone serve s3, which checks every signature
    bucket = make_bucket(s3_source)
    client = wire.WireClient(endpoint_of(s3_source))
    body = b"0123456789" * 100
    md5 = hashlib.md5(body).digest()

    # When an object with an awkward key, metadata with blanks and UTF-8 is PUT and read back
    key = "dir/with space/ünïcode+plus&amp=eq?"
    headers = {"Content-MD5": base64.b64encode(md5).decode()}
    headers |= {"x-amz-meta-note": f"  two  blanks\t{UTF8_VALUE} ", "Content-Type": "text/x-y"}
    put = await client.put(bucket, key, headers, body)
    got = await client.get(bucket, key, {})

    # Then both were accepted, the bytes and the metadata came back as sent
    assert put.headers["etag"].strip('"') == md5.hex()
    assert got.status == 200
    assert got.body == body
    assert got.headers["x-amz-meta-note"] == f"two  blanks\t{UTF8_VALUE}"
    assert got.headers["content-type"] == "text/x-y"

    # And the same request signed with the wrong secret is refused, in words
    wrong = wire.WireClient(
        s3.Endpoint(url=s3_source.endpoint, access_key=s3_source.access_key, secret_key="nope")
    )
    refused = await wrong.get(bucket, key, {})
    error = wrong.error(refused, "reading")
    assert error.reason == "invalid-credentials"
    assert not error.transient
    await client.close()
    await wrong.close()


async def test_utf8_metadata_with_blanks_survives_a_copy_byte_for_byte(
    s3_source: EmbeddedS3, s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> None:
    # Given an object whose metadata value is UTF-8 text
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    seeding = wire.WireClient(endpoint_of(s3_source))
    await seeding.put(source, "k", {"x-amz-meta-title": UTF8_VALUE}, b"abc")
    listed = planned(s3_source, source, "k")

    # When the copier copies it (GET -> PUT between two stores)
    copier = s3.ObjectCopier(endpoint_of(s3_source), endpoint_of(s3_destination))
    await copier.copy(source, "k", destination, "k", listed.size, listed.etag)

    # Then the copy's metadata has the very same bytes
    reading = wire.WireClient(endpoint_of(s3_destination))
    copy = await reading.get(destination, "k", {})
    assert copy.headers["x-amz-meta-title"].encode("latin-1").decode() == "grüße à la  carte"
    await seeding.close()
    await reading.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[s3.Endpoint]:
    """A loopback HTTP server answering with `handler`: the framing real servers vary in."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await handler(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield s3.Endpoint(url=f"http://127.0.0.1:{port}", access_key="k", secret_key="s")
    finally:
        server.close()
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 10)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    # Given a server that answers one request per connection, then hangs up unannounced
    connections = 0

    async def one_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: "e"\r\n\r\nok')
        await writer.drain()
        writer.close()

    async with http_server(one_and_hang_up) as endpoint:
        client = wire.WireClient(endpoint)
        # When three requests go one after another
        answers = [await client.get("b", "k", {}) for _ in range(3)]
        await client.close()

    # Then each was answered, each on a new connection
    assert [(a.status, a.body) for a in answers] == [(200, b"ok")] * 3
    assert connections == 3


async def test_chunked_answers_with_trailers_are_read_whole_and_the_connection_kept() -> None:
    # Given a server that sends its body in chunks, then a trailer
    connections = 0

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"7;ext=1\r\n<Error>\r\n"
                b"19\r\n<Code>NoSuchKey</Code>...\r\n"
                b"0\r\nX-Trailer: t\r\n\r\n"
            )
            await writer.drain()
        writer.close()

    async with http_server(chunked) as endpoint:
        client = wire.WireClient(endpoint)
        # When it is asked twice
        first = await client.get("b", "k", {})
        second = await client.get("b", "k", {})
        await client.close()

    # Then the whole body came back both times, over one connection, and reads as S3's error
    assert first.body == second.body == b"<Error><Code>NoSuchKey</Code>..."
    assert connections == 1
    assert client.error(first, "reading").reason == "not-found"


async def test_a_server_that_is_not_there_is_unreachable_and_worth_retrying() -> None:
    client = wire.WireClient(s3.Endpoint(url=f"http://127.0.0.1:{free_port()}", access_key="k",
                                         secret_key="s"))  # fmt: skip
    with pytest.raises(s3.S3Error) as raised:
        await client.get("b", "k", {})
    assert raised.value.reason == "unreachable"
    assert raised.value.transient


async def test_a_server_that_stops_answering_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up and hangs up
        writer.close()

    async with http_server(silent) as endpoint:
        client = wire.WireClient(endpoint, timeout=0.5)
        with pytest.raises(s3.S3Error) as raised:
            await client.get("b", "k", {})
    assert raised.value.reason == "timeout"
    assert raised.value.transient


@pytest.fixture
def tls_source(tmp_path: Path) -> Iterator[tuple[EmbeddedS3, Path]]:
    """`rclone serve s3` over HTTPS with a self-signed certificate, and that certificate."""
    tls = self_signed_certificate(tmp_path)
    (tmp_path / "data" / "tls").mkdir(parents=True)
    (tmp_path / "data" / "tls" / "k").write_bytes(b"over tls" * 1000)
    with start_rclone_s3(tmp_path / "data", free_port(), "tlskey", "tlssecret", tls=tls) as server:
        yield server, tls[0]
    tls_context.cache_clear()


async def test_copies_go_over_tls_trusting_what_aws_ca_bundle_names(
    tls_source: tuple[EmbeddedS3, Path],
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an HTTPS source whose certificate AWS_CA_BUNDLE names (as for boto3)
    server, certificate = tls_source
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate))
    tls_context.cache_clear()
    listed = planned(server, "tls", "k")
    destination = make_bucket(s3_destination)

    # When the object is copied to a plain-HTTP store
    copier = s3.ObjectCopier(endpoint_of(server), endpoint_of(s3_destination))
    outcome = await copier.copy("tls", "k", destination, "k", listed.size, listed.etag)

    # Then it arrived whole, verified
    assert outcome.checksum == f"md5:{hashlib.md5(b'over tls' * 1000).hexdigest()}"


async def test_a_certificate_nobody_vouches_for_is_refused_in_words(
    tls_source: tuple[EmbeddedS3, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an HTTPS store with a self-signed certificate, and no AWS_CA_BUNDLE
    server, _ = tls_source
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    tls_context.cache_clear()
    client = wire.WireClient(endpoint_of(server))

    # When an object is read, then the copy fails for good, saying why
    with pytest.raises(s3.S3Error) as raised:
        await client.get("tls", "k", {})
    assert raised.value.reason == "untrusted-certificate"
    assert not raised.value.transient
    assert "AWS_CA_BUNDLE" in str(raised.value)


async def test_an_answer_that_is_not_http_is_an_error_worth_retrying() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    async with http_server(garbage) as endpoint:
        client = wire.WireClient(endpoint)
        with pytest.raises(s3.S3Error) as raised:
            await client.get("b", "k", {})
    assert raised.value.reason == "s3-error"
    assert raised.value.transient
    assert "other than HTTP/1.x" in str(raised.value)
