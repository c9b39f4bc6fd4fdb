"""How many requests a small object's tags cost: none for an object without tags.

A whole-object copy learns from its GET's answer whether there are tags
(`x-amz-tagging-count`, sent only when there are), and asks for them only then;
a store that keeps no tags (rclone serve s3) is never asked for them at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from cstor import s3
from launcher.embedded import EmbeddedS3
from tests.s3_objects import endpoint_of, planned
from tests.stack import s3_client_for
from tests.store_proxy import Seen, StoreProxy

MakeBucket = Callable[[EmbeddedS3], str]


def a_tags_request(seen: Seen) -> bool:
    return "tagging" in seen.query.split("&")


def an_object_read(seen: Seen) -> bool:
    return seen.method in ("GET", "HEAD") and not seen.query


@pytest.fixture
def moto_proxy(moto_s3: EmbeddedS3) -> Iterator[StoreProxy]:
    with StoreProxy(moto_s3.endpoint).running() as proxy:
        yield proxy


@pytest.fixture
def rclone_proxy(s3_source: EmbeddedS3) -> Iterator[StoreProxy]:
    with StoreProxy(s3_source.endpoint).running() as proxy:
        yield proxy


def through(proxy: StoreProxy, server: EmbeddedS3) -> s3.Endpoint:
    """`server`'s keys, at the proxy's address."""
    return s3.Endpoint(url=proxy.url, access_key=server.access_key, secret_key=server.secret_key)


async def copy_keys(
    copier: s3.ObjectCopier, server: EmbeddedS3, source: str, destination: str, keys: list[str]
) -> list[s3.CopyOutcome]:
    listed = [planned(server, source, key) for key in keys]
    return await asyncio.gather(
        *(copier.copy(source, o.key, destination, o.key, o.size, o.etag) for o in listed)
    )


async def test_only_tagged_objects_cost_a_tags_request_and_their_copies_keep_them(
    moto_s3: EmbeddedS3, moto_proxy: StoreProxy, make_bucket: MakeBucket
) -> None:
    # Given six small objects on moto (which keeps tags), two of them tagged
    source, destination = make_bucket(moto_s3), make_bucket(moto_s3)
    client = s3_client_for(moto_s3)
    keys = [f"k{n}" for n in range(6)]
    for key in keys:
        tagging = {"Tagging": f"n={key}"} if key in ("k1", "k4") else {}
        client.put_object(Bucket=source, Key=key, Body=key.encode() * 100, **tagging)
    copier = s3.ObjectCopier(through(moto_proxy, moto_s3), endpoint_of(moto_s3))

    # When they are copied together, the source read through the counting proxy
    outcomes = await copy_keys(copier, moto_s3, source, destination, keys)

    # Then each object cost one GET, and the tags were asked for the tagged two only
    assert len(outcomes) == 6
    assert moto_proxy.count(an_object_read) == 6
    assert sorted(seen.path for seen in moto_proxy.seen if a_tags_request(seen)) == [
        f"/{source}/k1",
        f"/{source}/k4",
    ]
    # And the copies have the tags of their sources, and the others none
    for key in keys:
        tag_set = client.get_object_tagging(Bucket=destination, Key=key)["TagSet"]
        expected = [{"Key": "n", "Value": key}] if key in ("k1", "k4") else []
        assert tag_set == expected


async def test_a_store_that_keeps_no_tags_is_never_asked_for_them(
    s3_source: EmbeddedS3,
    s3_destination: EmbeddedS3,
    rclone_proxy: StoreProxy,
    make_bucket: MakeBucket,
) -> None:
    # Given small objects on rclone serve s3, which answers a tags request with the
    # object's body and then an error
    source, destination = make_bucket(s3_source), make_bucket(s3_destination)
    keys = [f"k{n}" for n in range(4)]
    for key in keys:
        s3_client_for(s3_source).put_object(Bucket=source, Key=key, Body=key.encode() * 100)
    copier = s3.ObjectCopier(through(rclone_proxy, s3_source), endpoint_of(s3_destination))

    # When they are copied together
    outcomes = await copy_keys(copier, s3_source, source, destination, keys)

    # Then every copy succeeded, each object read once, and no request asked for tags
    assert [o.size for o in outcomes] == [200] * 4
    assert rclone_proxy.count(an_object_read) == 4
    assert rclone_proxy.count(a_tags_request) == 0
