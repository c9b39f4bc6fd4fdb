"""Errors as answers: one status for each kind of error, problem details (RFC 9457) for REST.

Use cases raise the domain's errors (cstor.domain.exceptions); this is the one place that
says what each is answered with. The dashboard's error page (services.api.dashboard) asks
the same ``status_of``, so a page and a REST call refuse alike.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException

from cstor.domain.exceptions import (
    Conflict,
    DomainError,
    InvalidRequest,
    NotFound,
    Unavailable,
)
from cstor.secrets.store import SecretStoreError

log = logging.getLogger(__name__)

STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (SecretStoreError, 503),  # e.g. AWS Secrets Manager unreachable or denying
)
UNEXPECTED = "Something went wrong on our side; it has been logged."


class Unprocessable(ClientException):
    """A 422 raised by the HTTP layer itself (services.api.edge), before any use case runs."""

    status_code = 422


def status_of(error: Exception) -> int | None:
    """The status an error is answered with, or None for one nobody expected (a 500)."""
    if isinstance(error, HTTPException):
        return error.status_code
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    return None


def field_error(key: str, message: str, source: str) -> dict[str, str]:
    """One entry of a problem's ``errors``, as Litestar names the fields of a 400: the field's
    path (key), and whether it came in the body, the query or the path (source)."""
    return {"message": message, "key": key, "source": source}


def unprocessable_field(key: str, message: str, source: str = "body") -> Unprocessable:
    """A 422 naming the field: ``key: message`` as the detail, and the field in ``errors``."""
    return Unprocessable(f"{key}: {message}", extra=[field_error(key, message, source)])


def answer_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """The app's exception handler: every error as problem details; one nobody expected is
    logged and answered 500, never shown as a trace."""
    status = status_of(error)
    if status is None:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, UNEXPECTED)
    if isinstance(error, HTTPException):
        return problem(status, error.detail, headers=error.headers, extra=error.extra)
    if isinstance(error, InvalidRequest) and error.field is not None:
        source = _source(request, error.field)
        return problem(status, str(error), extra=[field_error(error.field, error.reason, source)])
    if not isinstance(error, DomainError):
        log.warning("%s %s: %s", request.method, request.url.path, error)
    return problem(status, str(error))


def _source(request: Request[Any, Any, Any], field: str) -> str:
    """Where the field at fault came from: a path parameter, the query, or else the body."""
    if field in request.path_params:
        return "path"
    if field in request.query_params:
        return "query"
    return "body"


def problem(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: Any = None,
) -> Response[dict[str, Any]]:
    """An ``application/problem+json`` answer: type, title, status and a readable detail."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if extra:
        body["errors"] = extra
    return Response(
        body,
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )
