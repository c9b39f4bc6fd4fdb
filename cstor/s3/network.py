"""How every HTTP stack of the adapter reaches a store: trust, timeouts and who retries.

One place for what boto3 (control plane), urllib3 (listings, part uploads, additional
checksums, multipart source streams) and `wire` (whole objects, server-side copies)
are told, so that they agree. What each stack buys, measured:
docs/http_stacks.md (`python bench/stacks.py`).

Retrying is one layer's job for each request, never two:
- inside a copy, the clients try once (`COPY`, `WIRE`). Control calls (HEAD, tags,
  create/complete an upload) and parts are tried again by the copier
  (`CopyContext.control`, `PartStream`), which then gives up for good
  (`errors.gave_up`: no longer transient), so that the transfer service does not
  copy the object again for them; whole-object GETs and PUTs, a broken source
  stream and a checksum mismatch are tried again by the transfer service, an
  object at a time, which knows about pause and records the attempts;
- outside a copy (connection checks, listings) nobody retries above the client, so
  there the client retries a little (`CHECK`, `LISTING`), error answers 5xx included.
Above them the bus redelivers a work item (a packet, a migration to plan) whose
handler failed transiently, after its own delay: a retry of the work across time and
processes, not of a request. tests/integration/test_transfer_retries.py counts the
requests a store that keeps refusing receives.

Proxies: every stack goes to a store through the proxy the environment names for it
(`proxy_for`: HTTPS_PROXY or HTTP_PROXY by the store's scheme, ALL_PROXY otherwise;
none for a host NO_PROXY lists), given to each explicitly, so that boto3 (which reads
the variables itself) and urllib3 and `wire` (which would not) agree.
Trust: `tls_context` (AWS_CA_BUNDLE, else certifi's CA certificates), which boto3 reads itself.
"""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from cstor.s3.errors import S3Error
from cstor.s3.tls import ca_bundle, tls_context

__all__ = [
    "CHECK", "COPY", "LISTING", "WIRE", "Proxy", "Reach", "ca_bundle", "proxy_for",
    "tls_context",
]  # fmt: skip


@dataclass(frozen=True)
class Reach:
    """Timeouts (seconds) and attempts of one kind of request to a store."""

    connect_timeout: float
    read_timeout: float
    attempts: int
    """Tries of one request by the client itself, the first included."""


CHECK = Reach(connect_timeout=3.0, read_timeout=10.0, attempts=2)
"""Connection checks and bucket lists a user waits for: an answer within seconds."""
LISTING = Reach(connect_timeout=10.0, read_timeout=60.0, attempts=4)
"""The planner's listings and metadata reads outside a copy: the client retries."""
COPY = Reach(connect_timeout=10.0, read_timeout=300.0, attempts=1)
"""Every request of a copy: the copier and the transfer service retry, not the client."""
WIRE = Reach(connect_timeout=5.0, read_timeout=600.0, attempts=1)
"""Whole objects on the event loop: a 5 GiB body may take minutes to read."""


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy to reach a store through."""

    url: str
    """`http://host:port`, without the user and password."""
    host: str
    port: int
    authorization: str = ""
    """`Basic ...` for the Proxy-Authorization header if the URL had a user; "" if not."""

    @property
    def url_with_user(self) -> str:
        """The URL as the environment gave it (for clients that log in to it themselves)."""
        if not self.authorization:
            return self.url
        user = base64.b64decode(self.authorization.removeprefix("Basic ")).decode()
        return self.url.replace("://", f"://{user}@", 1)


def proxy_for(url: str) -> Proxy | None:
    """The proxy the environment names for a store at `url`, None for none.

    Read as curl and botocore read it (urllib's `getproxies_environment`: lower-case
    names first). An http:// proxy only (S3Error otherwise): `wire` speaks plain HTTP
    to it, tunnelling TLS to an https:// store.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    host = parts.hostname or ""
    # NO_PROXY as botocore and urllib read it (in CPython, not in typeshed's stubs).
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not host or bypass(host, proxies):
        return None
    named = proxies.get(parts.scheme) or proxies.get("all")
    if not named:
        return None
    proxy = urlsplit(named if "://" in named else f"http://{named}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise S3Error(
            "invalid-proxy",
            f"the proxy the environment names for {parts.scheme}:// stores is not an "
            "http:// URL (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY)",
        )
    port = proxy.port or 80
    authorization = ""
    if proxy.username:
        user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        authorization = "Basic " + base64.b64encode(user.encode()).decode()
    return Proxy(f"http://{proxy.hostname}:{port}", proxy.hostname, port, authorization)
