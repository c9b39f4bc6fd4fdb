"""The GET stream a large object's parts are cut from (`part_stream`): urllib3 to a
URL the source's boto3 client presigns, the body read a chunk at a time in threads.

urllib3 because it costs half obstore's CPU per MiB and ran at three times its rate
(docs/http_stacks.md, `python bench/stacks.py`). The GET names the planned ETag
(If-Match), and the answer's Content-Length and ETag are checked too: some stores
(rclone serve s3) ignore If-Match. An error answer is worded by `verify.read_refused`;
a request that got no answer, or a body cut off mid-way, by `errors.from_transport`
(transient: the transfer service tries the object again).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import urllib3

from cstor.s3.errors import BOTO_ERRORS, Site, from_boto, from_transport
from cstor.s3.verify import check_planned, read_refused

if TYPE_CHECKING:
    from cstor.s3.copy_context import CopyContext

_PRESIGNED_FOR = 900
"""Seconds a stream's URL is good for: it is used at once, and checked only then."""
_ERROR_BODY = 64 * 1024
"""The most of an error answer read, for its <Code> and <Message>."""


class SourceStream:
    """An open GET of a source object: its body, a chunk at a time (see `opened`)."""

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        where: Site,
        what: str,
        threads: anyio.CapacityLimiter,
    ) -> None:
        self._response = response
        self._where = where
        self._what = what
        self._threads = threads

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in chunks of `size` bytes (the last one shorter), each read in a
        thread; S3Error if the connection fails before the body's end."""
        while chunk := await anyio.to_thread.run_sync(self._read, size, limiter=self._threads):
            yield chunk

    def _read(self, size: int) -> bytes:
        try:
            # The bytes as stored: a Content-Encoding is the object's, not the transfer's.
            return self._response.read(size, decode_content=False)
        except urllib3.exceptions.HTTPError as error:
            raise from_transport(error, self._where, self._what) from error


@contextlib.asynccontextmanager
async def opened(
    context: CopyContext, bucket: str, key: str, size: int, etag: str
) -> AsyncIterator[SourceStream]:
    """A GET of the source's `bucket`/`key` as planned (`size` bytes, ETag `etag`, ""
    for any), through the source's connections; S3Error if the store refuses it or
    holds another object. Its connection is given back or closed on leaving, however."""
    where, what = context.at_source(bucket, key), "copying"
    answers: list[urllib3.BaseHTTPResponse] = []
    try:
        body = await anyio.to_thread.run_sync(
            _get, context, bucket, key, etag, answers, limiter=context.threads
        )
        (response,) = answers
        if response.status != 200:
            raise read_refused(response.status, body, where, size, etag)
        check_planned(where, response.headers, size, etag)
        yield SourceStream(response, where, what, context.threads)
    finally:
        for response in answers:
            # Read to its end, the connection went back to the pool already; otherwise
            # what is left unread makes it useless: it is closed, and its place freed.
            response.close()
            response.release_conn()


def _get(
    context: CopyContext,
    bucket: str,
    key: str,
    etag: str,
    answers: list[urllib3.BaseHTTPResponse],
) -> bytes:
    """Send the GET; its answer goes into `answers` as soon as it comes (so that a copy
    cancelled meanwhile still closes it). The body of an error answer, b"" for a 200."""
    where, what = context.at_source(bucket, key), "copying"
    params = {"Bucket": bucket, "Key": key}
    try:
        url = context.boto(context.source).generate_presigned_url(
            "get_object", Params=params, ExpiresIn=_PRESIGNED_FOR
        )
    except BOTO_ERRORS as error:
        raise from_boto(error, where, what) from error
    headers = {"If-Match": f'"{etag}"'} if etag else {}
    try:
        response = context.source_http.request("GET", url, headers=headers, preload_content=False)
        answers.append(response)
        return b"" if response.status == 200 else response.read(_ERROR_BODY)
    except urllib3.exceptions.HTTPError as error:
        # Not the error's text: it may quote the presigned URL.
        raise from_transport(error, where, what) from error
