"""The S3 control plane through boto3: endpoints, clients, connection checks, listings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import anyio
import boto3
import msgspec
from botocore.config import Config

from cstor.s3.errors import BOTO_ERRORS, S3Error, Site, from_boto
from cstor.s3.network import CHECK, LISTING, Proxy, Reach, proxy_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where an S3-compatible store answers, and the keys to sign with."""

    url: str
    region: str = "us-east-1"
    access_key: str
    secret_key: str = field(repr=False)

    def same_store_and_keys(self, other: Endpoint) -> bool:
        """Whether `other` is this store with these keys: a copy can stay on the server."""
        return (
            self.url.rstrip("/") == other.url.rstrip("/")
            and self.access_key == other.access_key
            and self.region == other.region
        )


class ListedObject(msgspec.Struct, frozen=True, kw_only=True):
    """One object of a listing; the ETag is without quotes."""

    key: str
    size: int
    etag: str
    last_modified: datetime


_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()
"""One session: its clients share the parsed S3 model (seconds of CPU per new session)."""


def load_model() -> None:
    """Parse the S3 model into the shared session now (a tenth of a second of CPU), so
    that a service's first copy does not; the clients made afterwards take milliseconds."""
    with _SESSION_LOCK:
        # Placeholder keys, so that none are looked for (no instance metadata call).
        _SESSION.client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id="-",
            aws_secret_access_key="-",  # noqa: S106
        )


def client(endpoint: Endpoint, *, quick: bool = False, reach: Reach | None = None) -> S3Client:
    """A boto3 client for `endpoint`; `quick` ones give up within seconds (`network.CHECK`),
    `reach` picks another kind (`network.COPY`: one attempt). Thread-safe."""
    return _client(endpoint, reach or (CHECK if quick else LISTING), proxy_for(endpoint.url))


@lru_cache(maxsize=64)
def _client(endpoint: Endpoint, reach: Reach, proxy: Proxy | None) -> S3Client:
    scheme = endpoint.url.partition(":")[0]
    config = Config(
        # The proxy network.proxy_for chose ({} for none: botocore then reads no variable).
        proxies={scheme: proxy.url_with_user} if proxy else {},
        connect_timeout=reach.connect_timeout,
        read_timeout=reach.read_timeout,
        # total_max_attempts counts the first try; botocore's max_attempts would not.
        retries={"total_max_attempts": reach.attempts, "mode": "standard"},
        max_pool_connections=64,
        # SigV4 also for presigned part uploads: some stores refuse the SigV2 default.
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        with _SESSION_LOCK:  # creating clients of one session is not thread-safe
            return _SESSION.client(
                "s3",
                endpoint_url=endpoint.url,
                region_name=endpoint.region,
                aws_access_key_id=endpoint.access_key,
                aws_secret_access_key=endpoint.secret_key,
                config=config,
            )
    except ValueError as error:
        raise S3Error("invalid-endpoint", f"{endpoint.url!r} is not a valid URL") from error


async def check_access(endpoint: Endpoint, bucket: str | None = None, *, side: str = "") -> None:
    """Raise S3Error unless the keys work at `endpoint` (and can list `bucket`, if given);
    its message names `side` ("source", or `errors.connection_side`) if given.

    Without a bucket, keys that are accepted but may not list buckets pass:
    many stores hand out keys scoped to one bucket.
    """
    await anyio.to_thread.run_sync(_check_access, Site(endpoint.url, side, bucket or ""), endpoint)


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket the keys can see."""

    name: str
    created_at: datetime | None


async def list_buckets(endpoint: Endpoint, *, side: str = "") -> list[Bucket]:
    """The buckets the keys may list at `endpoint`, by name; raises S3Error naming `side`."""
    return await anyio.to_thread.run_sync(_list_buckets, Site(endpoint.url, side), endpoint)


def _list_buckets(site: Site, endpoint: Endpoint) -> list[Bucket]:
    try:
        answer = client(endpoint, quick=True).list_buckets()
    except BOTO_ERRORS as error:
        raise from_boto(error, site, "listing buckets") from error
    found = [Bucket(name=b["Name"], created_at=b.get("CreationDate")) for b in answer["Buckets"]]
    return sorted(found, key=lambda bucket: bucket.name)


def _check_access(site: Site, endpoint: Endpoint) -> None:
    quick = client(endpoint, quick=True)
    try:
        if not site.bucket:
            quick.list_buckets()
        else:
            # Not head_bucket: HEAD has no error body, so a bad secret looks like a denial.
            quick.list_objects_v2(Bucket=site.bucket, MaxKeys=1)
    except BOTO_ERRORS as error:
        failure = from_boto(error, site, "listing" if site.bucket else "listing buckets")
        if not site.bucket and failure.reason == "access-denied":
            return
        raise failure from error


def head_metadata(endpoint: Endpoint, bucket: str, key: str, *, side: str = "") -> dict[str, str]:
    """An object's user metadata, keys in lower case (some stores capitalise them).

    Raises S3Error (after the client's retries) naming the bucket and key, and ``side``
    (e.g. "destination") when given.
    """
    try:
        response = client(endpoint).head_object(Bucket=bucket, Key=key)
    except BOTO_ERRORS as error:
        site = Site(endpoint.url, side, bucket, key)
        raise from_boto(error, site, "reading the metadata of") from error
    return {name.lower(): value for name, value in response.get("Metadata", {}).items()}
