"""Listings, page by page: ListObjectsV2 signed by botocore, parsed by ElementTree.

botocore's generic response parser costs about 0.2 ms of CPU per listed object, which
for a million objects on each side of a migration is minutes; signing the request with
botocore and parsing the XML with the C ElementTree costs a tenth of that.
"""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from urllib.parse import unquote_plus

import urllib3

from cstor.domain.checksums import normalize_etag
from cstor.s3.control import Endpoint, ListedObject, client
from cstor.s3.errors import BOTO_ERRORS, S3Error, Site, from_boto, from_status, from_transport
from cstor.s3.multipart import pool_manager
from cstor.s3.network import LISTING, Proxy, proxy_for, tls_context

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
PAGE_SIZE = 1000
RETRIED_STATUSES = frozenset({500, 502, 503, 504})
TIMEOUT = urllib3.Timeout(connect=LISTING.connect_timeout, read=LISTING.read_timeout)
"""A page of 1,000 keys takes a store well under a second; one silent for a minute is
asked again once (`_pool`), then the listing fails instead of waiting for ever."""


def _http(url: str) -> urllib3.PoolManager:
    return _pool(tls_context(), proxy_for(url))


@lru_cache(maxsize=8)
def _pool(context: ssl.SSLContext, proxy: Proxy | None) -> urllib3.PoolManager:
    return pool_manager(
        proxy,
        maxsize=8,
        retries=urllib3.Retry(
            total=LISTING.attempts - 1,
            read=1,
            backoff_factor=0.5,
            # An error answer a later try may not get (500, 503 SlowDown) is asked again
            # too, as boto3 does; the last one is parsed and worded (`_parse`).
            status_forcelist=RETRIED_STATUSES,
            raise_on_status=False,
        ),
        timeout=TIMEOUT,
        ssl_context=context,
    )


def list_pages(
    endpoint: Endpoint,
    bucket: str,
    prefix: str = "",
    start_after: str | None = None,
    *,
    side: str = "",
) -> Iterator[list[ListedObject]]:
    """The objects under `prefix`, in key order, one page (at most 1,000) at a time;
    failures name `side` ("source", "destination") if given."""
    site, what = Site(endpoint.url, side, bucket), "listing"
    params: dict[str, str | int] = {
        "Bucket": bucket,
        "Prefix": prefix,
        "MaxKeys": PAGE_SIZE,
        "EncodingType": "url",
    }
    if start_after:
        params["StartAfter"] = start_after
    while True:
        try:
            url = client(endpoint).generate_presigned_url(
                "list_objects_v2", Params=params, ExpiresIn=900
            )
            response = _http(endpoint.url).request("GET", url, preload_content=True)
        except BOTO_ERRORS as error:
            raise from_boto(error, site, what) from error
        except urllib3.exceptions.HTTPError as error:
            # urllib3 has retried already. Its text quotes the presigned URL: not shown.
            raise from_transport(error, site, what) from error
        root = _parse(response, site, what)
        page = [_listed(item) for item in root.iter(f"{_NS}Contents")]
        if page:
            yield page
        token = root.findtext(f"{_NS}NextContinuationToken")
        if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
            return
        params.pop("StartAfter", None)
        params["ContinuationToken"] = token


def _parse(response: urllib3.BaseHTTPResponse, site: Site, what: str) -> ET.Element:
    try:
        root = ET.fromstring(response.data)  # noqa: S314 - the answer of a store the user chose
    except ET.ParseError as error:
        if response.status >= 300:
            raise from_status(response.status, "", site, what) from error
        raise S3Error(
            "s3-error",
            f"{site.store()} sent an unreadable listing while {site.doing(what)}",
            transient=True,
        ) from error
    if response.status >= 300:
        code, said = root.findtext("Code") or "", root.findtext("Message") or ""
        raise from_status(response.status, code, site, what, said)
    return root


def _listed(item: ET.Element) -> ListedObject:
    modified = item.findtext(f"{_NS}LastModified") or ""
    return ListedObject(
        key=unquote_plus(item.findtext(f"{_NS}Key") or ""),
        size=int(item.findtext(f"{_NS}Size") or 0),
        etag=normalize_etag(item.findtext(f"{_NS}ETag")),
        last_modified=datetime.fromisoformat(modified.replace("Z", "+00:00")),
    )
