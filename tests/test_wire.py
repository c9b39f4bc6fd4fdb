"""The small-object HTTP client (cstor.s3.wire): signing, framing, kept-alive connections."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from cstor import s3
from cstor.embedded import EmbeddedS3, free_port
from cstor.s3 import wire
from tests.test_s3 import endpoint_of, planned

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
