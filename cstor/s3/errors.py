"""S3 failures, and which of them are worth trying again.

Every S3 call of the adapter (boto3, urllib3 or the lean client) ends in an
`S3Error` with a short machine `reason`, a message for people, and whether it
is `transient`: timeouts, resets, 5xx and 503 SlowDown may pass if tried again
later; 400, 403 and 404 will not.

Messages are worded here, never copied from a library: they name the side of the
migration (source or destination), the store (scheme, host and port), the bucket and
key (a `Site`), what failed, and the S3 error code and the store's own message where
there is one, on one line; `cstor.s3.transport` words a request that got no
answer. No URL query string, signature, credential or key goes into one, and every
message is redacted (`cstor.s3.redaction`) all the same.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from cstor.s3.redaction import redact, store_name
from cstor.s3.transport import failure_of


class Site(NamedTuple):
    """Where a failed request went: the store's endpoint URL, which side of the migration
    it is ("source", "destination"; a connection's check or scan names the connection
    instead, `connection_side`), and the bucket and key it was for."""

    endpoint: str
    side: str = ""
    bucket: str = ""
    key: str = ""

    def store(self) -> str:
        """`the destination http://host:port`: the side and the store (no path, no keys)."""
        name = store_name(self.endpoint)
        return f"the {self.side} {name}" if self.side else name

    def doing(self, what: str) -> str:
        """`what` ("writing", "listing") and the object: `writing 'k' in bucket 'b'`."""
        if self.key:
            return f"{what} {self.key!r} in bucket {self.bucket!r}"
        return f"{what} bucket {self.bucket!r}" if self.bucket else what


def connection_side(name: str) -> str:
    """The `side` of a request for a connection outside a migration (its check, its
    buckets, a scan): `the connection 'name' http://host:port`, since several connections
    may share a store and only the name tells the user which keys were used."""
    return f"connection {name!r}"


class S3Error(Exception):
    """An S3 call failed; `reason` is a short machine string, the message is for people."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        # Redacted here too: every message shown or recorded is made by this line.
        super().__init__(redact(message))
        self.reason = reason
        self.transient = transient


def gave_up(error: S3Error, attempts: int) -> S3Error:
    """`error` once the layer that retries its request has tried it `attempts` times:
    no longer transient, so that no layer above tries the request again.

    Retries do not nest (`cstor.s3.network`): the copier tries a control call or a part
    `attempts` times; had what it gave up on stayed transient, the transfer service
    would copy the whole object again, each time sending that request `attempts` times.
    """
    return S3Error(error.reason, f"{error} (tried {attempts} times)")


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
    r"timed? ?out|timeout|connection (reset|refused|closed|aborted)|broken pipe|unexpected eof",
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


def from_status(status: int, code: str, where: Site, what: str, said: str = "") -> S3Error:
    """An S3Error for an error answer to `what` (a verb: "writing") at `where`; `said` is
    the store's own message (the <Message> of its answer), if it gave one."""
    reason, transient = classify(status, code)
    store, doing = where.store(), where.doing(what)
    told = _told(status, code, said)
    messages = {
        "invalid-credentials": f"The access key or secret key was rejected by {store} "
        f"while {doing}{told}",
        "no-such-bucket": f"{doing} at {store} failed: the bucket does not exist{told}",
        "access-denied": f"{doing} at {store} was denied to these keys{told}",
        "slow-down": f"{store} asked to slow down while {doing}{told}",
    }
    message = messages.get(reason, f"{doing} at {store} failed{told}")
    return S3Error(reason, message, transient=transient)


def from_answer(status: int, body: bytes, where: Site, what: str) -> S3Error:
    """An S3Error for an error answer to `what` at `where`, by the <Code> and <Message>
    of its XML body (either may be missing)."""
    code, said = _CODE.search(body), _MESSAGE.search(body)
    return from_status(
        status,
        code.group(1).decode(errors="replace") if code else "",
        where,
        what,
        said.group(1).decode(errors="replace") if said else "",
    )


_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]+)</Message>")


def _told(status: int, code: str, said: str) -> str:
    """` (HTTP 403 SignatureDoesNotMatch: the store's message)`, as much as is known.

    An answer to a HEAD has no body: botocore makes its status the code ("404"), which is
    told once.
    """
    words = " ".join(said.split())[:300]
    code = "" if code == str(status) else code
    told = " ".join(part for part in (f"HTTP {status}" if status else "", code) if part)
    told = f"{told}: {words}" if told and words else (told or words)
    return f" ({told})" if told else ""


def from_transport(error: BaseException, where: Site, what: str) -> S3Error:
    """An S3Error for a request to `where` that got no answer (no name, no listener, TLS,
    a timeout), in words: none of the libraries' texts, which quote the URL they tried."""
    failure = failure_of(error)
    message = f"{where.doing(what)} at {where.store()} failed: {failure.words}"
    return S3Error(failure.reason, message, transient=failure.transient)


def from_boto(error: Exception, where: Site, what: str) -> S3Error:
    """Translate a botocore failure of `what` (e.g. "listing") at `where`."""
    if isinstance(error, HTTPClientError | BotoConnectionError):  # botocore's: no answer came
        return from_transport(error, where, what)
    if isinstance(error, ParamValidationError):  # says which parameter, and nothing signed
        # Its last line names the parameter; the regex it must match helps nobody.
        said = _REGEX.sub("", str(error).splitlines()[-1])[:200]
        return S3Error("invalid-request", f"{where.doing(what)} at {where.store()} failed: {said}")
    if not isinstance(error, ClientError):
        # Other botocore errors quote the request they could not make: only the kind is told.
        name = type(error).__name__
        message = f"{where.doing(what)} at {where.store()} failed ({name})"
        return S3Error("s3-error", message, transient=True)
    found = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return from_status(status, found.get("Code", ""), where, what, found.get("Message", ""))


_REGEX = re.compile(r":[^:]*must match the regex.*$")
BOTO_ERRORS = (BotoCoreError, ClientError)
