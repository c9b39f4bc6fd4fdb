"""The api's edge, without a server: input no handler could store is refused as a 422
naming the field (or a 400 for a body nested past any of the API's), before any handler
parses it. Requests are Litestar's own Request objects over an ASGI scope and body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from litestar import Request
from litestar.exceptions import ClientException
from litestar.testing import RequestFactory
from litestar.types import Message

from services.api.edge import (
    BIGINT,
    MAX_JSON_DEPTH,
    TooDeep,
    json_depth,
    refuse_hostile_input,
    unstorable,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def request(
    body: bytes = b"",
    *,
    method: str = "POST",
    content_type: str = JSON,
    query: Mapping[str, str] | None = None,
    path_params: Mapping[str, Any] | None = None,
) -> Request[Any, Any, Any]:
    """A Request as Litestar hands it to the hook, its body arriving as the server sends it."""
    factory = RequestFactory()
    made = factory.get("/x", query_params=dict(query or {}))
    scope: dict[str, Any] = dict(made.scope)
    scope.update(
        method=method,
        headers=[(b"content-type", content_type.encode())],
        path_params=dict(path_params or {}),
        state={},  # nothing read yet
    )
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)  # type: ignore[arg-type]


async def refusal(req: Request[Any, Any, Any]) -> ClientException:
    with pytest.raises(ClientException) as raised:
        await refuse_hostile_input(req)
    return raised.value


def named(error: ClientException) -> tuple[int, str, str]:
    """The status, and the field and source the 422's errors entry names."""
    (entry,) = error.extra  # type: ignore[misc]
    return error.status_code, entry["key"], entry["source"]


# Text Postgres cannot hold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a\x00b", "NUL character (U+0000)"),
        ("\x00", "NUL character (U+0000)"),
        ("caf\udce9", "lone surrogate (U+DCE9)"),
        ("\ud800", "lone surrogate (U+D800)"),
    ],
)
def test_text_postgres_cannot_hold_is_told_why(text: str, why: str) -> None:
    reason = unstorable(text)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(
    "text", ["", "plain", "café", "日本語", "\U0001f600 emoji", "tab\tnew\nline"]
)
def test_any_other_text_is_storable(text: str) -> None:
    assert unstorable(text) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (rb'{"name": "a\u0000b"}', "name"),
        (rb'{"filters": {"include": ["ok", "\ud800"]}}', "filters.include[1]"),
        (rb'{"filters": {"include": ["ok"]}, "source_prefix": "x\u0000"}', "source_prefix"),
        (rb'{"bad\u0000key": 1}', "bad\x00key"),
        (rb'[{"name": "\u0000"}]', "[0].name"),
    ],
)
async def test_a_json_body_with_unstorable_text_is_422_naming_the_field(
    body: bytes, field: str
) -> None:
    assert named(await refusal(request(body))) == (422, field, "body")


async def test_a_form_field_with_nul_is_422_naming_it() -> None:
    error = await refusal(request(b"name=ok&source_bucket=a%00b", content_type=FORM))
    assert named(error) == (422, "source_bucket", "body")


async def test_a_query_parameter_with_nul_is_422_naming_it_even_on_a_get() -> None:
    error = await refusal(request(method="GET", query={"cursor": "x", "prefix": "a\x00"}))
    assert named(error) == (422, "prefix", "query")


async def test_a_path_parameter_with_nul_is_422_naming_it() -> None:
    error = await refusal(request(b"{}", path_params={"bucket": "a\x00b"}))
    assert named(error) == (422, "bucket", "path")


# Numbers and nesting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"filters": {"min_size": 9223372036854775808}}', "filters.min_size"),
        (b'{"limits": {"concurrent_objects": -9223372036854775809}}', "limits.concurrent_objects"),
        (b'{"n": 1' + b"0" * 400 + b"}", "n"),
    ],
)
async def test_a_number_beyond_a_bigint_is_422_naming_the_field(body: bytes, field: str) -> None:
    error = await refusal(request(body))
    assert named(error) == (422, field, "body")
    assert f"{BIGINT:,}" in str(error.detail)


@pytest.mark.parametrize(
    "body",
    [
        b'{"filters": {"min_size": 9223372036854775807}}',
        b'{"n": -9223372036854775808}',
        b'{"name": "1234567890123456789012345"}',  # digits in a string are text
        b'{"ok": true, "list": [1, 2, 3], "text": "brackets [[[ in {{ text"}',
        b"not json at all: the handler answers it",
    ],
)
async def test_a_body_with_nothing_unstorable_passes(body: bytes) -> None:
    assert await refuse_hostile_input(request(body)) is None


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["]]]]", "[[[[[[", "\\"[[["]', 1),  # brackets in strings, escaped quotes too
        (b"[" * 100 + b"]" * 100, 100),
        (b"[[]][[[]]]", 3),
    ],
)
def test_the_nesting_is_counted_without_decoding_and_without_strings(
    body: bytes, depth: int
) -> None:
    assert json_depth(body) == depth


async def test_a_body_nested_past_any_of_the_apis_is_refused_before_it_is_decoded() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(TooDeep) as raised:
        await refuse_hostile_input(request(body))
    assert raised.value.status_code == 400
    assert f"at most {MAX_JSON_DEPTH}" in str(raised.value.detail)


async def test_a_body_exactly_as_deep_as_allowed_passes() -> None:
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert await refuse_hostile_input(request(body)) is None
