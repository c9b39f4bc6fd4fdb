"""The edge: every request's input checked before any handler parses or stores it.

What this refuses would otherwise fail deep inside: Postgres text cannot hold NUL or a
lone surrogate (asyncpg raises, or an event is stored that the projector then cannot
apply), a number beyond a Postgres bigint overflows a column, and a body nested
thousands deep makes the JSON decoder recurse until Python gives up. Each is answered
here, as a 4xx that names the field, for every body, form field, query and path
parameter of every route, REST and dashboard alike.

It runs as the app's ``before_request`` hook; a controller or route that set its own
would replace it, so none does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException

from services.api.problems import unprocessable_field

BIGINT = 2**63 - 1
"""The largest number a Postgres bigint holds: no number field may be larger."""

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body read (413 beyond): a migration request is a few KiB."""

MAX_JSON_DEPTH = 32
"""The deepest a JSON body may nest; the API's bodies nest three levels at most."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# What a JSON body needs to hold for its decoded values to be worth walking.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|[0-9]{19}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FORMS = frozenset({RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART})


class TooDeep(ClientException):
    """A JSON body nested deeper than any of the API's, refused before it is decoded."""


class _TooLong(str):
    """An integer's digits, kept as text: too long to be worth converting (or to fit)."""

    __slots__ = ()


async def refuse_hostile_input(request: Request[Any, Any, Any]) -> None:
    """Raise a 4xx for input no handler could store; return None to let the request on."""
    for key, value in request.path_params.items():
        if isinstance(value, str):
            _check_text(key, value, "path")
    for key, value in request.query_params.multi_items():
        _check_text(key, key, "query")
        _check_text(key, value, "query")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.content_type[0] in _FORMS:
        for key, value in (await request.form()).multi_items():
            _check_text(key, key, "body")
            if isinstance(value, str):
                _check_text(key, value, "body")
        return
    _check_json(await request.body())


def unstorable(text: str) -> str | None:
    """Why Postgres text cannot hold ``text`` (NUL, a lone surrogate), or None if it can."""
    if "\x00" in text:
        return "contains the NUL character (U+0000), which cannot be stored"
    if not text.isascii() and (found := _SURROGATE.search(text)):
        return f"contains a lone surrogate (U+{ord(found[0]):04X}), which is not a character"
    return None


def json_depth(body: bytes) -> int:
    """How deep the JSON in ``body`` nests, counted without decoding it (strings skipped)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _check_text(key: str, text: str, source: str) -> None:
    reason = unstorable(text)
    if reason is not None:
        raise unprocessable_field(key, reason, source)


def _check_json(body: bytes) -> None:
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise TooDeep(
            f"The JSON body is nested {depth:,} levels deep; at most {MAX_JSON_DEPTH} are read."
        )
    if not _SUSPECT.search(body):
        return  # the common case: nothing in it this module refuses
    try:
        decoded = json.loads(body, parse_int=_parse_int)
    except ValueError:
        return  # not JSON: the handler answers 400, as for any body it cannot read
    for key, value in _leaves(decoded, ""):
        if isinstance(value, str):
            _check_text(key, value, "body")
        if isinstance(value, _TooLong | int) and not isinstance(value, bool):
            _check_number(key, value)


def _check_number(key: str, value: int | _TooLong) -> None:
    if isinstance(value, _TooLong) or not -BIGINT - 1 <= value <= BIGINT:
        raise unprocessable_field(key, f"the number is too large; at most {BIGINT:,} fits", "body")


def _parse_int(digits: str) -> int | _TooLong:
    return _TooLong(digits) if len(digits) > 20 else int(digits)


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every key and value of decoded JSON with its path (``filters.include[1]``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            yield inner, key
            yield from _leaves(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value
