"""The last line of defence: what cstor shows or logs carries no signed request.

A presigned URL (X-Amz-Credential, X-Amz-Signature) works for minutes for anyone who
reads it, and libraries quote the URLs and headers they sent in their exceptions and
log lines. The adapter words its own errors without them; `redact` is applied to
every S3Error's message and to every service's log output as well, so that a library
text that slips through still carries no query string, signature, credential scope,
Authorization header, or user name and password in a URL.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

HIDDEN = "(signed details removed)"
"""What stands in for what was removed: a reader sees that something was there."""

_URL = re.compile(r"\b(https?)://([^\s'\"<>()]+)", re.IGNORECASE)
# A query string of a signed request, also where a library quotes a URL's path alone.
_SIGNED_QUERY = re.compile(
    r"\?[^\s'\"<>()]*(?:X-Amz-|Signature=|AWSAccessKeyId=|Credential=)[^\s'\"<>()]*",
    re.IGNORECASE,
)
_SIGNED_PARAMETER = re.compile(
    r"\b(?:X-Amz-(?:Credential|Signature|Security-Token|SignedHeaders|Algorithm|Date|Expires)"
    r"|Signature|Credential|AWSAccessKeyId|SignedHeaders)\s*=\s*[^\s&,'\"<>()]*",
    re.IGNORECASE,
)
# `Authorization: AWS4-HMAC-SHA256 ...` on a line, or 'Authorization': b'...' in a repr.
_AUTHORIZATION = re.compile(
    r"""['"]?\bAuthorization['"]?\s*[:=]\s*(?:b?'[^']*'|b?"[^"]*"|[^\r\n,}]*)""",
    re.IGNORECASE,
)
_AMZ_HEADER = re.compile(
    r"""['"]?\bx-amz-(?:security-token|content-sha256)['"]?\s*[:=]\s*(?:b?'[^']*'|b?"[^"]*"|[^\r\n,}]*)""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with URLs cut to scheme, host, port and path, and any signed request's
    query string, signing parameters and Authorization header replaced by `HIDDEN`."""
    text = _URL.sub(_bare_url, text)
    text = _SIGNED_QUERY.sub(HIDDEN, text)
    text = _SIGNED_PARAMETER.sub(HIDDEN, text)
    text = _AUTHORIZATION.sub(HIDDEN, text)
    return _AMZ_HEADER.sub(HIDDEN, text)


def _bare_url(match: re.Match[str]) -> str:
    rest = match.group(2)
    # No user name or password before the host, no query string or fragment after the path.
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return f"{match.group(1)}://{_without_user(rest)}"


_PORT_AND_PATH = re.compile(r"\d{0,5}(?:/.*)?", re.DOTALL)


def _without_user(rest: str) -> str:
    """A URL's host, port and path without the user name and password before the host.

    A password may hold a "/" its URL left unescaped (AWS secret keys often do), which
    would end the host early: so a ":" before the first "@" that is not followed by a port
    is taken as a user name's, and all up to that "@" is dropped.
    """
    head, at, tail = rest.partition("@")
    user = at and ":" in head and not head.startswith("[")
    if user and not _PORT_AND_PATH.fullmatch(head.partition(":")[2]):
        return tail
    authority, slash, path = rest.partition("/")
    return f"{authority.rpartition('@')[2]}{slash}{path}"


def store_name(url: str) -> str:
    """How an endpoint is named to people: scheme, host and port (no keys, no path)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return redact(url)
    if not parts.scheme or not host:
        return redact(url)
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


def redact_logs() -> None:
    """Redact every log record this process makes from now on, whoever then formats and
    handles it (the services' basicConfig, Litestar's queue handler, uvicorn's).

    A record factory rather than a formatter: Litestar replaces the root logger's
    handlers when the api starts. Records are rewritten only where something had to be
    removed (uvicorn's access formatter, say, needs its arguments as they came).
    """
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def redacted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _redact_record(record)
        return record

    redacted.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted)


_TRACEBACKS = logging.Formatter()


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format is the handler's to report, as ever
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        # Chains are where libraries' texts end up (urllib3 quotes the URL it tried).
        text = _TRACEBACKS.formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_text = clean
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
