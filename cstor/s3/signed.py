"""Bare S3 requests signed with SigV4, for the calls made once per object.

A boto3 call spends milliseconds of CPU (holding the GIL) building, signing and
parsing; for CopyObject, one per object of a same-store migration, that bounded
the rate. botocore still signs (its signer is cheap); urllib3 sends.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from urllib.parse import quote

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cstor.domain.checksums import normalize_etag
from cstor.s3.control import Endpoint
from cstor.s3.errors import S3Error, from_status

_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_ETAG = re.compile(rb"<ETag>([^<]+)</ETag>")


def object_path(bucket: str, key: str) -> str:
    """`/bucket/key`, percent-encoded as S3 signs and expects it (path style)."""
    return "/" + quote(f"{bucket}/{key}", safe="/~")


class SignedRequests:
    """Signs and sends requests to one endpoint; every method blocks (use a thread)."""

    def __init__(self, endpoint: Endpoint, http: urllib3.PoolManager) -> None:
        self.endpoint = endpoint
        self.http = http
        self._credentials = Credentials(endpoint.access_key, endpoint.secret_key)
        self._base = endpoint.url.rstrip("/")

    def copy_object(
        self,
        source_bucket: str,
        key: str,
        bucket: str,
        target: str,
        if_match: str,
        replace: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """CopyObject; the new object's ETag.

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
        what = f"copying {key!r} to {target!r}"
        body = self._send("PUT", object_path(bucket, target), headers, what)
        found = _ETAG.search(body)
        if found is None:
            raise S3Error("s3-error", f"{what} at {self.endpoint.url}: no ETag came back")
        # Quotes come escaped, as &quot; or (rclone) &#34;.
        return normalize_etag(html.unescape(found.group(1).decode()))

    def _send(self, method: str, path: str, headers: dict[str, str], what: str) -> bytes:
        url = self._base + path
        request = AWSRequest(
            method=method, url=url, headers={**headers, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
        )
        S3SigV4Auth(self._credentials, "s3", self.endpoint.region).add_auth(request)
        try:
            response = self.http.request(method, url, headers=dict(request.headers.items()))
        except urllib3.exceptions.HTTPError as error:
            raise S3Error(
                "timeout", f"{self.endpoint.url} stopped answering while {what}", transient=True
            ) from error
        # CopyObject may fail after answering 200: the error is then in the body.
        if response.status != 200 or b"<Error>" in response.data[:512]:
            found = _CODE.search(response.data)
            code = found.group(1).decode(errors="replace") if found else ""
            raise from_status(response.status, code, self.endpoint.url, what)
        return bytes(response.data)
