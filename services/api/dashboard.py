"""The dashboard's shell: pages and htmx fragments rendered from web/templates, the
formatting every template is handed, and the error page every area's pages share."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.params import Body
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect, Template

from services.api.auth import NotSignedIn
from services.api.problems import UNEXPECTED, answer_error, status_of

log = logging.getLogger(__name__)

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(count: int) -> str:
    """A byte count in binary units: ``12582912`` → ``"12.0 MiB"``."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{count} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def percent(done: int, total: int) -> str:
    """How much of ``total`` is done, rounded down so 100% means all of it."""
    return f"{done * 100 // total}%" if total > 0 else "0%"


def when(moment: datetime | None) -> str:
    """A timestamp in UTC to the second, or a dash for one that has not happened."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def elapsed(start: datetime | None, end: datetime | None) -> str:
    """How long from ``start`` to ``end`` (or now): ``"3m 07s"``."""
    if start is None:
        return "—"
    seconds = int(((end or datetime.now(UTC)) - start).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def query(**params: str) -> str:
    """A query string of the non-blank parameters, ``?`` included: ``"?status=failed"``."""
    present = {name: value for name, value in params.items() if value}
    return "?" + urlencode(present) if present else ""


TEMPLATE_FUNCTIONS = {
    "human_bytes": human_bytes,
    "percent": percent,
    "when": when,
    "elapsed": elapsed,
    "query": query,
    "iso": datetime.fromisoformat,
}


def page(
    name: str, *, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Template:
    """A whole page rendered from ``web/templates``."""
    return Template(
        template_name=name,
        context=TEMPLATE_FUNCTIONS | context,
        status_code=status_code,
        headers=headers,
    )


def fragment(name: str, *, trigger_event: str | None = None, **context: Any) -> HTMXTemplate:
    """Part of a page, swapped in by htmx (which fires ``trigger_event`` once it has settled)."""
    return HTMXTemplate(
        template_name=name,
        context=TEMPLATE_FUNCTIONS | context,
        trigger_event=trigger_event,
        after="settle" if trigger_event else None,
    )


def error_page(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Errors as a page in the layout, with the status REST would answer (services.api.
    problems) and its words; one nobody expected is logged, never shown as a trace."""
    if isinstance(error, NotSignedIn):
        target = "/sign-in" + query(next=_current_page(request))
        if request.headers.get("hx-request"):
            # A poll or a fragment: send the whole page to sign-in, not just the fragment.
            return Response(b"", status_code=401, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
    status = status_of(error)
    if status is None:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
        return page("error.html", status_code=500, detail=UNEXPECTED)
    detail = error.detail if isinstance(error, HTTPException) else str(error)
    return page("error.html", status_code=status, detail=detail)


def answer_any_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """The app's handler, for what no area's pages handled (no such path, or not with this
    method): a page for a browser outside /api/, problem details (answer_error) for REST
    and for any client that does not ask for HTML."""
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return answer_error(request, error)
    path = request.url.path
    if isinstance(error, MethodNotAllowedException):
        detail = f"{path} is where a form sends what you enter, not a page to open."
        return page("error.html", status_code=405, detail=detail, headers=error.headers)
    if isinstance(error, NotFoundException):
        return page("error.html", status_code=404, detail=f"There is no page at {path}.")
    return error_page(request, error)


def _current_page(request: Request[Any, Any, Any]) -> str:
    """The page to come back to after signing in (for a fragment, the page it is part of)."""
    if request.headers.get("hx-current-url"):
        url = urlsplit(request.headers["hx-current-url"])
        return url.path + (f"?{url.query}" if url.query else "")
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")
