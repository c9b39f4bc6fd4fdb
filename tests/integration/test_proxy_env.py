"""Every HTTP stack of the S3 adapter goes through the proxy the environment names, or
none: boto3, urllib3 (listings, parts, source streams) and the whole-object client
agree (cstor.s3.network)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cstor import s3
from cstor.s3 import network
from cstor.s3.tls import tls_context
from launcher.embedded import EmbeddedS3, free_port, start_rclone_s3
from tests.certificates import certificate_from_a_private_ca
from tests.s3_objects import endpoint_of, planned
from tests.stack import s3_client_for
from tests.store_proxy import Seen, StoreProxy, a_source_stream

MakeBucket = Callable[[EmbeddedS3], str]
MIB = 1024 * 1024
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def forward_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreProxy]:
    """A forward proxy, and an environment that names no other."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with StoreProxy().running() as proxy:
        yield proxy


async def two_objects(
    s3_source: EmbeddedS3, s3_destination: EmbeddedS3, make_bucket: MakeBucket
) -> tuple[str, str]:
    """A source bucket with a small and a 12 MiB object, an empty destination bucket."""
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    client = s3_client_for(s3_source)
    client.put_object(Bucket=source, Key="small", Body=b"s" * 1024)
    client.put_object(Bucket=source, Key="big", Body=b"b" * (12 * MIB))
    return source, destination


async def copy_both(
    s3_source: EmbeddedS3, s3_destination: EmbeddedS3, source: str, destination: str
) -> None:
    """A connection check, a listing, a whole-object copy and a multipart one."""
    src, dst = endpoint_of(s3_source), endpoint_of(s3_destination)
    await s3.check_access(src, source)
    listed = {obj.key: obj for page in s3.list_pages(src, source) for obj in page}
    copier = s3.ObjectCopier(src, dst, multipart_threshold=5 * MIB, min_part_size=5 * MIB)
    for key in ("small", "big"):
        await copier.copy(source, key, destination, key, listed[key].size, listed[key].etag)


def kinds(proxy: StoreProxy) -> dict[str, int]:
    """How many requests of each stack's kind went through the proxy."""
    picks: dict[str, Callable[[Seen], bool]] = {
        "check, listing (boto3, urllib3)": lambda r: r.method == "GET" and "list-type" in r.query,
        "HEAD (boto3)": lambda r: r.method == "HEAD",
        "upload started (boto3)": lambda r: r.method == "POST" and "uploads" in r.query,
        "part (urllib3)": lambda r: r.method == "PUT" and "partNumber=" in r.query,
        "whole GET (wire)": lambda r: r.method == "GET" and not r.query,
        "source stream (urllib3)": a_source_stream,
        "whole PUT (wire)": lambda r: r.method == "PUT" and not r.query,
    }
    return {kind: proxy.count(pick) for kind, pick in picks.items()}


async def test_every_stack_goes_through_the_proxy_http_proxy_names(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    forward_proxy: StoreProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two buckets with a small and a large object, and HTTP_PROXY naming a proxy
    source, destination = await two_objects(s3_source, s3_destination, make_bucket)
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)

    # When a connection is checked, the source listed and both objects copied
    await copy_both(s3_source, s3_destination, source, destination)

    # Then every kind of request went through the proxy, and the copies arrived
    seen = kinds(forward_proxy)
    assert all(count > 0 for count in seen.values()), seen
    assert seen["check, listing (boto3, urllib3)"] >= 2
    assert all(r.absolute for r in forward_proxy.seen)
    monkeypatch.delenv("HTTP_PROXY")
    for key, size in (("small", 1024), ("big", 12 * MIB)):
        assert planned(s3_destination, destination, key).size == size


async def test_a_store_no_proxy_names_is_reached_directly(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    forward_proxy: StoreProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given HTTP_PROXY naming a proxy, and NO_PROXY the stores' host
    source, destination = await two_objects(s3_source, s3_destination, make_bucket)
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")

    # When the same is done
    await copy_both(s3_source, s3_destination, source, destination)

    # Then nothing went through the proxy
    assert forward_proxy.seen == []


@pytest.fixture
def tls_store(tmp_path: Path) -> Iterator[tuple[EmbeddedS3, Path]]:
    """`rclone serve s3` over HTTPS (a certificate from a private CA) with a small and a
    large object in bucket `tls`; and the CA's certificate."""
    ca, certificate, key = certificate_from_a_private_ca(tmp_path)
    (tmp_path / "data" / "tls").mkdir(parents=True)
    (tmp_path / "data" / "tls" / "small").write_bytes(b"over tls" * 1000)
    (tmp_path / "data" / "tls" / "big").write_bytes(b"B" * (12 * MIB))
    tls = (certificate, key)
    with start_rclone_s3(tmp_path / "data", free_port(), "tlskey", "tlssecret", tls=tls) as server:
        yield server, ca
    tls_context.cache_clear()


async def test_an_https_store_is_reached_through_connect_tunnels_trusting_aws_ca_bundle(
    tls_store: tuple[EmbeddedS3, Path],
    s3_destination: EmbeddedS3,
    make_bucket: MakeBucket,
    forward_proxy: StoreProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an HTTPS source whose certificate AWS_CA_BUNDLE names, and HTTPS_PROXY a proxy
    server, certificate = tls_store
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate))
    tls_context.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    destination = make_bucket(s3_destination)  # over http: not through the proxy

    # When it is checked, listed, and its objects copied whole and in parts
    source = endpoint_of(server)
    await s3.check_access(source, "tls")
    listed = {obj.key: obj for page in s3.list_pages(source, "tls") for obj in page}
    copier = s3.ObjectCopier(
        source, endpoint_of(s3_destination), multipart_threshold=5 * MIB, min_part_size=5 * MIB
    )
    for key in ("small", "big"):
        await copier.copy("tls", key, destination, key, listed[key].size, listed[key].etag)

    # Then each stack (boto3, urllib3, wire) tunnelled to the store, and only there
    store = server.endpoint.removeprefix("https://")
    assert forward_proxy.count(lambda seen: seen.method == "CONNECT") >= 4
    assert {(seen.method, seen.path) for seen in forward_proxy.seen} == {("CONNECT", store)}
    assert planned(s3_destination, destination, "big").size == 12 * MIB


def test_a_proxy_that_is_not_http_is_refused_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(s3.S3Error) as raised:
        network.proxy_for("https://store.example")
    assert raised.value.reason == "invalid-proxy"
    assert "HTTPS_PROXY" in str(raised.value)


def test_a_proxy_user_goes_in_a_header_not_in_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("http_proxy", "http://someone:pa%20ss@proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    proxy = network.proxy_for("http://store.example:9000")
    assert proxy is not None
    assert (proxy.url, proxy.port) == ("http://proxy.example:3128", 3128)
    assert proxy.authorization == "Basic c29tZW9uZTpwYSBzcw=="  # someone:pa ss
