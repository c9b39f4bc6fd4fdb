"""S3 failures, and which of them are worth trying again.

Every S3 call of the adapter (boto3, obstore or a plain HTTP PUT) ends in an
`S3Error` with a short machine `reason`, a message for people, and whether it
is `transient`: timeouts, resets, 5xx and 503 SlowDown may pass if tried again
later; 400, 403 and 404 will not.
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)


class S3Error(Exception):
    """An S3 call failed; `reason` is a short machine string, the message is for people."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_TRANSIENT_TEXT = re.compile(
    r"timed? ?out|timeout|connection (reset|refused|closed|aborted)|broken pipe"
    r"|error sending request|incomplete ?message|unexpected eof",
    re.IGNORECASE,
)


def classify(status: int, code: str = "") -> tuple[str, bool]:
    """The reason and transience of an S3 error answer (HTTP status, S3 error code).

    Pure: 5xx, 503 SlowDown, throttling and request timeouts are transient;
    anything else a store answers (400, 403, 404, 409 ...) is permanent.
    """
    if code in CREDENTIAL_CODES:
        return "invalid-credentials", False
    if code == "NoSuchBucket":
        return "no-such-bucket", False
    if code in {"NoSuchKey", "NoSuchUpload"} or status == 404:
        return "not-found", False
    if code in {"PreconditionFailed"} or status == 412:
        return "source-changed", False
    if code in {"AccessDenied", "AllAccessDisabled"} or status == 403:
        return "access-denied", False
    if code == "SlowDown" or status == 503:
        return "slow-down", True
    if code in TRANSIENT_CODES or status >= 500 or status in (408, 429):
        return "server-error", True
    return "s3-error", False


def is_transient_text(text: str) -> bool:
    """Whether an error without a status (a dropped connection, a timeout) may pass."""
    return bool(_TRANSIENT_TEXT.search(text))


def from_status(status: int, code: str, where: str, what: str) -> S3Error:
    """An S3Error for an error answer to `what` at `where`."""
    reason, transient = classify(status, code)
    messages = {
        "invalid-credentials": f"The access key or secret key was rejected by {where}",
        "no-such-bucket": f"{what} at {where} failed: the bucket does not exist",
        "access-denied": f"{what} at {where} was denied to these keys",
        "slow-down": f"{where} asked to slow down while {what}",
    }
    message = messages.get(reason, f"{what} at {where} failed: {code or status}")
    return S3Error(reason, message, transient=transient)


def from_boto(error: Exception, where: str, what: str) -> S3Error:
    """Translate a botocore failure of `what` (e.g. "listing bucket 'b'") at `where`."""
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return S3Error("unreachable", f"{where} cannot be reached", transient=True)
    if isinstance(error, ReadTimeoutError | ConnectionClosedError):
        return S3Error("timeout", f"{where} stopped answering while {what}", transient=True)
    if not isinstance(error, ClientError):
        text = str(error)
        return S3Error("s3-error", f"{what} at {where} failed: {text}", transient=True)
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return from_status(status, code, where, what)


BOTO_ERRORS = (BotoCoreError, ClientError)
# obstore raises the builtin FileNotFoundError, not its NotFoundError, for a missing object.
OBSTORE_ERRORS = (BaseError, FileNotFoundError)
_STATUS = re.compile(r"status(?: code)?:? (\d{3})", re.IGNORECASE)
_CODE = re.compile(r"<Code>([^<]+)</Code>")


def from_obstore(error: Exception, where: str, bucket: str, key: str) -> S3Error:
    """Translate an obstore failure on `bucket`/`key` at `where`."""
    text = str(error)
    if isinstance(error, NotFoundError | FileNotFoundError) and "NoSuchBucket" not in text:
        return S3Error("source-missing", f"{key!r} no longer exists in {bucket!r} at {where}")
    if isinstance(error, PreconditionError):
        return S3Error("source-changed", f"{key!r} in {bucket!r} changed since it was planned")
    if isinstance(error, PermissionDeniedError | UnauthenticatedError) and not _CODE.search(text):
        return S3Error("access-denied", f"Access to {key!r} in {bucket!r} at {where} was denied")
    code_match, status_match = _CODE.search(text), _STATUS.search(text)
    code = code_match.group(1) if code_match else _known_code(text)
    status = int(status_match.group(1)) if status_match else 0
    if code == "NoSuchBucket":
        return S3Error("no-such-bucket", f"The bucket {bucket!r} does not exist at {where}")
    if code or status:
        return from_status(status, code, where, f"copying {key!r} in {bucket!r}")
    if "error sending request" in text or "Connect" in text:
        return S3Error("unreachable", f"{where} cannot be reached", transient=True)
    # Unknown failures may pass; the copy's attempts bound how often they are tried.
    summary = text.splitlines()[0][:300] if text else type(error).__name__
    return S3Error("s3-error", f"{key!r} in {bucket!r} at {where}: {summary}", transient=True)


def _known_code(text: str) -> str:
    for code in (*CREDENTIAL_CODES, "NoSuchBucket", *TRANSIENT_CODES):
        if code in text:
            return code
    return ""
