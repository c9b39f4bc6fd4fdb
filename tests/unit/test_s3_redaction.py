"""The last line of defence: whatever a library's text holds, what cstor shows or logs
carries no signed query, credential, Authorization header or password in a URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cstor.s3 import redaction
from cstor.s3.redaction import HIDDEN, redact, store_name

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRESIGNED = (
    "http://127.0.0.1:9000/b/k?uploadId=7&partNumber=2&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={KEY_ID}%2F20261203%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20261203T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
)


def leaks(text: str) -> list[str]:
    return [s for s in (KEY_ID, SECRET, "X-Amz-Signature", "fe5f80f7", "Signature=") if s in text]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"failed: {PRESIGNED} (refused)", "failed: http://127.0.0.1:9000/b/k (refused)"),
        (
            f"see https://{KEY_ID}:{SECRET}@s3.example.com:9000/b/k?uploadId=1#frag now",
            "see https://s3.example.com:9000/b/k now",
        ),
        ("http://[::1]:9000/b?Signature=x", "http://[::1]:9000/b"),
        # An AWS secret key often holds a "/", which a URL typed by hand leaves unescaped
        (f"http://{KEY_ID}:wJal/rXUt+nFEMI@h:9000/b", "http://h:9000/b"),
        # An "@" in a key below a host and port is a key's, and is kept
        ("http://h:9000/b/ada@example.com/cv.pdf", "http://h:9000/b/ada@example.com/cv.pdf"),
        ("http://h/b/ada@example.com", "http://h/b/ada@example.com"),
        # A query that signs nothing is still cut from a URL: it may hold an upload id
        ("GET http://h/b?list-type=2&prefix=a", "GET http://h/b"),
        # A path quoted without its host keeps the path and loses the signed query
        (
            "PUT /b/k?partNumber=1&X-Amz-Signature=abc HTTP/1.1",
            f"PUT /b/k{HIDDEN} HTTP/1.1",
        ),
        (f"x-amz-security-token: FQoGZXIvYXdzE{SECRET}", HIDDEN),
        (
            "{'x-amz-content-sha256': b'UNSIGNED-PAYLOAD', 'Host': 'h'}",
            f"{{{HIDDEN}, 'Host': 'h'}}",
        ),
        (f"Credential = {KEY_ID}/2026", HIDDEN),
    ],
)
def test_signed_details_are_replaced_and_the_rest_is_kept(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "listing bucket 'b' at http://127.0.0.1:9000 failed (HTTP 403 AccessDenied: Access Denied)",
        "the key is 'photos/2024?/a.jpg' in bucket 'b'",
        "copying 'k' failed: it cannot be reached: its host name does not resolve",
        "",
    ],
)
def test_words_with_nothing_signed_are_left_as_they_are(text: str) -> None:
    assert redact(text) == text


def test_redacting_twice_changes_nothing_more() -> None:
    once = redact(f"{PRESIGNED} and Authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/x")
    assert redact(once) == once
    assert leaks(once) == []


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://s3.amazonaws.com", "https://s3.amazonaws.com"),
        (f"http://{KEY_ID}:pass@h:9000/path?q=1", "http://h:9000"),
        # A secret key with an unescaped "/" is no port: the URL is redacted, keys and all
        (f"http://{KEY_ID}:{SECRET}@h:9000/path?q=1", "http://h:9000/path"),
        ("http://[::1]:9000/x", "http://[::1]:9000"),
        ("HTTPS://S3.Example.COM/b", "https://s3.example.com"),
        ("s3.example.com", "s3.example.com"),  # no scheme: redacted text, as given
        ("http://h:99999/b?X-Amz-Signature=1", "http://h:99999/b"),  # a port urlsplit refuses
    ],
)
def test_a_store_is_named_by_scheme_host_and_port(url: str, name: str) -> None:
    assert store_name(url) == name


@pytest.fixture
def redacting() -> Iterator[None]:
    """Log records redacted, as in every service, and the factory put back afterwards."""
    before = logging.getLogRecordFactory()
    redaction.redact_logs()
    yield
    logging.setLogRecordFactory(before)


@pytest.mark.usefixtures("redacting")
def test_a_log_line_and_its_arguments_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.redaction")
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        log.warning("upload to %s failed after %d tries", PRESIGNED, 3)
        log.info("plain %s line", "harmless")
    assert [r.getMessage() for r in caplog.records] == [
        "upload to http://127.0.0.1:9000/b/k failed after 3 tries",
        "plain harmless line",
    ]
    # A record with nothing to remove keeps its arguments for formatters that want them
    assert caplog.records[1].args == ("harmless",)


@pytest.mark.usefixtures("redacting")
def test_a_logged_exception_chain_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.redaction")
    with caplog.at_level(logging.ERROR, logger="test.redaction"):
        try:
            try:
                raise ConnectionError(f"Max retries exceeded with url: {PRESIGNED}")
            except ConnectionError as cause:
                raise RuntimeError("the copy failed") from cause
        except RuntimeError:
            log.exception("copying k")
    (record,) = caplog.records
    assert record.exc_text is not None
    assert "the copy failed" in record.exc_text
    assert leaks(record.exc_text) == []
    assert leaks(caplog.text) == []


@pytest.mark.usefixtures("redacting")
def test_redacting_logs_twice_wraps_the_factory_once() -> None:
    factory = logging.getLogRecordFactory()
    redaction.redact_logs()
    assert logging.getLogRecordFactory() is factory
