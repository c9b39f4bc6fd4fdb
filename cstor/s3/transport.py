"""What went wrong when a store gave no answer at all, in words a user can act on.

boto3, urllib3 and the lean client fail a request that never got an answer
with their own exceptions, nested several deep, whose texts quote the URL they tried
(for a listing or a part upload, a presigned one), connection pool objects and
C source lines. The cause that matters (the name does not resolve, nothing listens,
the certificate is not trusted, the store went silent) is in that chain somewhere;
`failure_of` finds it and words it, and quotes none of the libraries' texts.
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import ssl
from collections.abc import Iterator
from typing import NamedTuple

import urllib3.exceptions
from botocore import exceptions as boto


class Failure(NamedTuple):
    """Why a request got no answer: S3Error's reason, the words, whether to try again."""

    reason: str
    words: str
    transient: bool


NAME_UNKNOWN = Failure("unreachable", "it cannot be reached: its host name does not resolve", True)
REFUSED = Failure(
    "unreachable", "it cannot be reached: nothing accepts connections (connection refused)", True
)
NO_ROUTE = Failure("unreachable", "it cannot be reached over the network", True)
CONNECT_TIMEOUT = Failure(
    "unreachable", "it cannot be reached: no connection was made in time", True
)
SILENT = Failure("timeout", "it stopped answering (timed out)", True)
DROPPED = Failure("timeout", "it closed the connection before answering", True)
CUT = Failure("timeout", "it closed the connection before the end of its answer", True)
NOT_TLS = Failure(
    "tls-failed",
    "it does not answer in TLS; its address may need http:// instead of https://",
    False,
)
TRUST = "its TLS certificate is not trusted ({}); AWS_CA_BUNDLE names the CA certificates to trust"
UNKNOWN = Failure("unreachable", "it cannot be reached", True)

_OS_ERRNO_WORDS = {
    "ECONNREFUSED": REFUSED,
    "EHOSTUNREACH": NO_ROUTE,
    "ENETUNREACH": NO_ROUTE,
    "ETIMEDOUT": CONNECT_TIMEOUT,
    "ECONNRESET": DROPPED,
    "EPIPE": DROPPED,
}


def failure_of(error: BaseException) -> Failure:
    """The first cause in `error`'s chain that says what went wrong, worded."""
    for cause in _chain(error):
        found = _known(cause)
        if found is not None:
            return found
    return _failure_in_text(str(error)) or UNKNOWN


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it wraps: causes, contexts, urllib3's `reason`, botocore's
    `kwargs["error"]`, exceptions among the arguments; each once."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        kwargs = getattr(current, "kwargs", None)
        nested = [
            getattr(current, "reason", None),
            kwargs.get("error") if isinstance(kwargs, dict) else None,
            *current.args,
            current.__cause__,
            current.__context__,
        ]
        pending.extend(item for item in nested if isinstance(item, BaseException))


def _known(error: BaseException) -> Failure | None:
    """The failure one exception stands for, if it says."""
    if isinstance(error, http.client.IncompleteRead):  # urllib3's too: fewer bytes than said
        return CUT
    if isinstance(error, socket.gaierror | urllib3.exceptions.NameResolutionError):
        return NAME_UNKNOWN
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return None  # a ConnectTimeoutError to urllib3, whatever happened: its cause says
    if isinstance(error, ssl.SSLCertVerificationError):
        return Failure("untrusted-certificate", TRUST.format(error.verify_message), False)
    if isinstance(error, ssl.SSLError):
        return _tls_failure(f"{error.reason or ''} {error.strerror or ''}")
    if isinstance(error, boto.ConnectTimeoutError | urllib3.exceptions.ConnectTimeoutError):
        return CONNECT_TIMEOUT
    if isinstance(
        error, boto.ReadTimeoutError | urllib3.exceptions.ReadTimeoutError | TimeoutError
    ):
        return SILENT
    if isinstance(error, ConnectionRefusedError):
        return REFUSED
    if isinstance(error, ConnectionResetError | BrokenPipeError | boto.ConnectionClosedError):
        return DROPPED
    if isinstance(error, OSError) and error.errno is not None:
        return _OS_ERRNO_WORDS.get(errno.errorcode.get(error.errno, ""))
    return None


def _tls_failure(text: str) -> Failure:
    if re.search(r"WRONG_VERSION_NUMBER|record layer failure|unknown protocol", text, re.I):
        return NOT_TLS
    return Failure("tls-failed", "the TLS handshake with it failed", False)


_TEXT_CLUES: tuple[tuple[re.Pattern[str], Failure], ...] = (
    (re.compile(r"name or service not known", re.I), NAME_UNKNOWN),
    (re.compile(r"connection refused", re.I), REFUSED),
    (re.compile(r"certificate", re.I),
     Failure("untrusted-certificate", TRUST.format("as the TLS library says"), False)),
    (re.compile(r"wrong.version.number", re.I), NOT_TLS),
    (re.compile(r"timed? ?out|timeout", re.I), SILENT),
    (re.compile(r"connection (reset|closed|aborted)|broken pipe|unexpected eof", re.I), DROPPED),
)  # fmt: skip


def _failure_in_text(text: str) -> Failure | None:
    """The failure an error's text tells of, for one whose chain told none; None if
    the text tells of none either."""
    for clue, failure in _TEXT_CLUES:
        if clue.search(text):
            return failure
    return None
