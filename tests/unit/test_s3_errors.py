"""S3 failures in words: what a store answered (or why it gave no answer) becomes an
S3Error with a reason, whether trying again may help, and a message that names the store,
what failed and the S3 code, with no URL query, signature or key. No server: the errors
are the libraries' own exception objects, and the answers urllib3's own responses, made
as they make them."""

from __future__ import annotations

import errno
import io
import socket
from typing import Any

import pytest
import urllib3.exceptions
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)

from cstor.s3.control import Endpoint
from cstor.s3.copy_context import CopyContext
from cstor.s3.errors import (
    S3Error,
    Site,
    classify,
    from_answer,
    from_boto,
    from_status,
    from_transport,
    gave_up,
    is_transient_text,
)
from cstor.s3.redaction import HIDDEN
from cstor.s3.source_stream import opened

MIB = 1024 * 1024
SIGNED = (
    "http://AKIAEXAMPLE:topsecret@127.0.0.1:9000/b?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"
)
STORE = "http://127.0.0.1:9000"


def client_error(status: int, code: str, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "ListObjectsV2",
    )


def assert_clean(error: S3Error) -> None:
    text = str(error)
    for secret in ("AKIA", "topsecret", "X-Amz-Signature", "abc123", "?"):
        assert secret not in text, text


# Answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "reason", "transient"),
    [
        (400, "ExpiredToken", "invalid-credentials", False),
        (403, "InvalidAccessKeyId", "invalid-credentials", False),
        (400, "InvalidToken", "invalid-credentials", False),
        (403, "", "access-denied", False),
        (403, "AllAccessDisabled", "access-denied", False),
        (404, "NoSuchUpload", "not-found", False),
        (404, "", "not-found", False),
        (412, "", "source-changed", False),
        (400, "Throttling", "server-error", True),
        (400, "ThrottlingException", "server-error", True),
        (409, "OperationAborted", "server-error", True),
        (408, "", "server-error", True),
        (504, "", "server-error", True),
        (409, "BucketNotEmpty", "s3-error", False),
        (0, "", "s3-error", False),
    ],
)
def test_an_answer_is_classified_by_its_code_before_its_status(
    status: int, code: str, reason: str, transient: bool
) -> None:
    assert classify(status, code) == (reason, transient)


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (403, "SignatureDoesNotMatch", f"The access key or secret key was rejected by {STORE}"),
        (404, "NoSuchBucket", f"listing bucket 'b' at {STORE} failed: the bucket does not exist"),
        (403, "AccessDenied", f"listing bucket 'b' at {STORE} was denied to these keys"),
        (503, "SlowDown", f"{STORE} asked to slow down while listing bucket 'b'"),
        (500, "InternalError", f"listing bucket 'b' at {STORE} failed"),
    ],
)
def test_an_answer_is_worded_by_its_reason_naming_the_store_and_the_code(
    status: int, code: str, words: str
) -> None:
    error = from_status(status, code, Site(SIGNED), "listing bucket 'b'")
    assert str(error).startswith(words)
    assert f"(HTTP {status} {code})" in str(error)
    assert_clean(error)


def test_the_stores_own_message_is_kept_on_one_line_and_bounded() -> None:
    error = from_status(
        403, "AccessDenied", Site(STORE), "reading 'k'", "Access\n  Denied\tby policy"
    )
    assert str(error).endswith("(HTTP 403 AccessDenied: Access Denied by policy)")
    long = from_status(500, "", Site(STORE), "reading 'k'", "x" * 5000)
    assert len(str(long)) < 400


@pytest.mark.parametrize(
    ("status", "code", "said", "message"),
    [
        (500, "", "", f"reading 'k' at {STORE} failed (HTTP 500)"),
        (0, "SlowDown", "", f"{STORE} asked to slow down while reading 'k' (SlowDown)"),
        (0, "", "busy", f"reading 'k' at {STORE} failed (busy)"),
        (0, "", "", f"reading 'k' at {STORE} failed"),
    ],
)
def test_only_what_is_known_of_an_answer_is_told(
    status: int, code: str, said: str, message: str
) -> None:
    assert str(from_status(status, code, Site(STORE), "reading 'k'", said)) == message


# botocore ---------------------------------------------------------------------------


def test_a_botocore_client_error_keeps_its_code_and_message() -> None:
    error = from_boto(
        client_error(404, "NoSuchBucket", "The bucket is gone"), Site(SIGNED), "listing"
    )
    assert (error.reason, error.transient) == ("no-such-bucket", False)
    assert str(error).endswith("(HTTP 404 NoSuchBucket: The bucket is gone)")
    assert_clean(error)


@pytest.mark.parametrize(("status", "said"), [(403, "Forbidden"), (500, "Internal Server Error")])
def test_an_answer_to_a_head_tells_its_status_once(status: int, said: str) -> None:
    # Given the error botocore makes of an answer to a HEAD (no body: the status is its code)
    answer = ClientError(
        {
            "Error": {"Code": str(status), "Message": said},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "HeadObject",
    )
    # Then the message tells the status and the store's words, not the status twice
    error = from_boto(answer, Site(STORE), "reading the metadata of 'k'")
    assert str(error).endswith(f"(HTTP {status}: {said})")


def test_a_parameter_botocore_refuses_is_an_invalid_request_naming_it_without_the_regex() -> None:
    refused = ParamValidationError(
        report='Invalid bucket name "a..b": Bucket name must match the regex '
        '"^[a-zA-Z0-9.\\-_]{1,255}$" or be an ARN matching the regex "^arn:"'
    )
    error = from_boto(refused, Site(STORE), "listing bucket 'a..b'")
    assert (error.reason, error.transient) == ("invalid-request", False)
    assert str(error) == f"""listing bucket 'a..b' at {STORE} failed: Invalid bucket name "a..b\""""


def test_a_connection_botocore_could_not_make_is_worded_from_its_cause() -> None:
    # Given botocore's error for a port nothing listens on, caused by the refusal
    failed = EndpointConnectionError(endpoint_url=SIGNED)
    failed.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    # Then it is an unreachable store, worth trying again, and the URL is not quoted
    error = from_boto(failed, Site(SIGNED), "listing bucket 'b'")
    assert (error.reason, error.transient) == ("unreachable", True)
    assert str(error) == (
        f"listing bucket 'b' at {STORE} failed: it cannot be reached: nothing accepts"
        " connections (connection refused)"
    )


def test_another_botocore_error_is_told_by_its_kind_only() -> None:
    error = from_boto(NoCredentialsError(), Site(STORE), "listing")
    assert str(error) == f"listing at {STORE} failed (NoCredentialsError)"
    assert error.transient


# No answer at all -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "reason", "words"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "unreachable",
            "does not resolve",
        ),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
            "unreachable",
            "connection refused",
        ),
        (TimeoutError("timed out"), "timeout", "stopped answering"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "timeout", "closed the connection"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable", "over the network"),
        (
            urllib3.exceptions.ReadTimeoutError(None, SIGNED, "Read timed out."),
            "timeout",
            "stopped answering",
        ),
    ],
)
def test_a_request_that_got_no_answer_says_why_in_words(
    cause: BaseException, reason: str, words: str
) -> None:
    error = from_transport(cause, Site(SIGNED), "reading 'k'")
    assert (error.reason, error.transient) == (reason, True)
    assert words in str(error)
    assert_clean(error)


def test_the_cause_is_found_deep_in_urllib3s_chain() -> None:
    # urllib3 wraps the refusal in a NewConnectionError inside a MaxRetryError quoting the URL
    connection = urllib3.exceptions.NewConnectionError(None, "Failed to establish a connection")
    connection.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    retries = urllib3.exceptions.MaxRetryError(None, SIGNED, reason=connection)
    error = from_transport(retries, Site(STORE), "writing 'k'")
    assert str(error).endswith("(connection refused)")
    assert_clean(error)


# A multipart copy's source stream --------------------------------------------------------

SOURCE = Endpoint(url=STORE, access_key="AKIAEXAMPLE", secret_key="topsecret")
PLANNED_ETAG = "0123456789abcdef0123456789abcdef"


def answer(status: int, body: bytes = b"", **headers: str) -> urllib3.HTTPResponse:
    """A store's answer as urllib3 reads it off a connection, its body not yet read."""
    return urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=status, preload_content=False
    )


def error_answer(status: int, code: str, message: str = "") -> urllib3.HTTPResponse:
    said = f"<Message>{message}</Message>" if message else ""
    return answer(status, f"<Error><Code>{code}</Code>{said}</Error>".encode())


class Answering(urllib3.PoolManager):
    """Connections to a store that answer every request with `answer` (or raise it)."""

    def __init__(self, reply: urllib3.BaseHTTPResponse | Exception) -> None:
        super().__init__()
        self.reply = reply

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def refused_connection() -> Exception:
    # urllib3 quotes the presigned URL in its text; the refusal is the cause
    error = urllib3.exceptions.NewConnectionError(None, f"Failed to connect to {SIGNED}")
    error.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    return error


async def read_to_end(context: CopyContext) -> None:
    """Stream the planned 8-byte object 'k' of bucket 'b' as a multipart copy does."""
    async with opened(context, "b", "k", 8, PLANNED_ETAG) as stream:
        async for _ in stream.chunks(MIB):
            pass


@pytest.mark.parametrize(
    ("reply", "reason", "transient", "words"),
    [
        (
            error_answer(404, "NoSuchKey"),
            "source-missing",
            False,
            "'k' no longer exists: copying 'k' in bucket 'b' at the source",
        ),
        (
            error_answer(404, "NoSuchBucket"),
            "no-such-bucket",
            False,
            "in bucket 'b' at the source http://127.0.0.1:9000 failed: the bucket does not exist",
        ),
        (
            error_answer(412, "PreconditionFailed"),
            "source-changed",
            False,
            "'k' in bucket 'b' at the source http://127.0.0.1:9000 changed since it was planned",
        ),
        (answer(403), "access-denied", False, "was denied to these keys (HTTP 403)"),
        (
            error_answer(403, "InvalidAccessKeyId"),
            "invalid-credentials",
            False,
            "The access key or secret key was rejected",
        ),
        (
            error_answer(503, "SlowDown", "Reduce your rate"),
            "slow-down",
            True,
            "(HTTP 503 SlowDown: Reduce your rate)",
        ),
        # A store that ignores If-Match answers with what it holds now
        (
            answer(200, b"x" * 8, **{"Content-Length": "8", "ETag": '"ffff"'}),
            "source-changed",
            False,
            "found 8, 'ffff'",
        ),
        (
            answer(200, b"x" * 9, **{"Content-Length": "9", "ETag": f'"{PLANNED_ETAG}"'}),
            "source-changed",
            False,
            "found 9,",
        ),
        (
            answer(200, b"x" * 4, **{"Content-Length": "8", "ETag": f'"{PLANNED_ETAG}"'}),
            "timeout",
            True,
            "closed the connection before the end of its answer",
        ),
        (refused_connection(), "unreachable", True, "nothing accepts connections"),
        (
            urllib3.exceptions.HTTPError(f"something odd at {SIGNED}"),
            "unreachable",
            True,
            "failed: it cannot be reached",
        ),
    ],
)
async def test_a_source_streams_failure_is_worded_by_what_the_store_answered(
    reply: urllib3.BaseHTTPResponse | Exception, reason: str, transient: bool, words: str
) -> None:
    # Given a copy whose source answers its GET stream so (or not at all)
    context = CopyContext(SOURCE, SOURCE, memory_budget=MIB, threads=2, attempts=1, journal=None)
    context.source_http = Answering(reply)

    # When the source of an 8-byte object is read to its end
    with pytest.raises(S3Error) as raised:
        await read_to_end(context)

    # Then it says what happened, whether trying again may help, and nothing signed
    error = raised.value
    assert (error.reason, error.transient) == (reason, transient)
    assert words in str(error)
    assert_clean(error)


# Text without a status -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ("Read timed out", True),
        ("operation timeout", True),
        ("Connection reset by peer", True),
        ("connection refused", True),
        ("Broken pipe", True),
        ("unexpected EOF while reading", True),
        ("Access Denied", False),
        ("The specified key does not exist", False),
    ],
)
def test_an_error_without_a_status_is_transient_when_it_tells_of_the_network(
    text: str, transient: bool
) -> None:
    assert is_transient_text(text) is transient


def test_every_s3_error_message_is_redacted_whoever_made_it() -> None:
    # Given messages quoting a library's text, signed URL and all
    quoted_url = S3Error("s3-error", f"a library said: PUT {SIGNED}&Signature=zz")
    quoted_path = S3Error("s3-error", "GET /b/k?partNumber=1&X-Amz-Signature=abc HTTP/1.1")
    # Then what is shown keeps where and what, and nothing signed
    assert str(quoted_url) == "a library said: PUT http://127.0.0.1:9000/b"
    assert str(quoted_path) == f"GET /b/k{HIDDEN} HTTP/1.1"


# Every message names the side, the store, the bucket, the key, the code and its words ------

AT = Site(SIGNED, "destination", "b", "dir/k")
NAMED = "'dir/k' in bucket 'b' at the destination http://127.0.0.1:9000"


def test_each_constructor_names_the_side_the_store_the_bucket_and_the_key() -> None:
    said = "Object name contains unsupported characters."
    refused = client_error(400, "InvalidArgument", said)
    errors = [
        from_status(400, "InvalidArgument", AT, "writing", said),
        from_answer(400, f"<Error><Code>InvalidArgument</Code><Message>{said}</Message>".encode(),
                    AT, "writing"),
        from_boto(refused, AT, "writing"),
        gave_up(from_boto(refused, AT, "writing"), 3),
    ]  # fmt: skip
    for error in errors:
        # Then each names all six facts, on one line, with nothing signed
        assert f"writing {NAMED} failed (HTTP 400 InvalidArgument: {said})" in str(error)
        assert "\n" not in str(error)
        assert_clean(error)
    unanswered = from_transport(
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"), AT, "writing"
    )
    assert str(unanswered).startswith(f"writing {NAMED} failed: ")
    assert_clean(unanswered)
