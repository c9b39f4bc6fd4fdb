"""CopyObject, the call a same-store migration makes once per object, over `wire`.

A boto3 call spends milliseconds of CPU (holding the GIL) building, signing and
parsing; for CopyObject, one per object of a same-store migration, that bounded
the rate. The lean client signs and sends it from the event loop instead.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from cstor.domain.checksums import normalize_etag
from cstor.s3.errors import S3Error
from cstor.s3.wire import WireClient, object_path

_ETAG = re.compile(rb"<ETag>([^<]+)</ETag>")


async def copy_object(
    client: WireClient,
    source_bucket: str,
    key: str,
    bucket: str,
    target: str,
    if_match: str,
    replace: Mapping[str, str] | None = None,
    storage_class: str | None = None,
) -> str:
    """CopyObject within `client`'s store; the new object's ETag.

    Metadata and tags are copied, unless `replace` gives the headers and metadata
    the copy gets instead (the REPLACE directive; tags are still copied). The copy
    gets `storage_class` if given, else the store's default.
    """
    headers = {"x-amz-copy-source": object_path(source_bucket, key)}
    if storage_class:
        headers["x-amz-storage-class"] = storage_class
    if if_match:
        headers["x-amz-copy-source-if-match"] = f'"{if_match}"'
    if replace is not None:
        headers.update(replace)
        headers["x-amz-metadata-directive"] = "REPLACE"
    what = f"copying {key!r} in bucket {source_bucket!r} to"
    response = await client.request("PUT", bucket, target, headers)
    # CopyObject may fail after answering 200: the error is then in the body.
    if response.status != 200 or b"<Error>" in response.body[:512]:
        raise client.error(response, what, bucket, target)
    found = _ETAG.search(response.body)
    if found is None:
        site = client.site(bucket, target)
        raise S3Error("s3-error", f"{site.doing(what)} at {site.store()}: no ETag came back")
    # Quotes come escaped, as &quot; or (rclone) &#34;.
    return normalize_etag(html.unescape(found.group(1).decode()))
