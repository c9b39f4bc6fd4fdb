"""Who is asking: the session cookie for pages, an API token (or the session, to read) for REST."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException

from services.api.accounts.store import SESSION_LIFETIME, User
from services.api.deps import Services

SESSION_COOKIE = "cstor_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(NotAuthorizedException):
    """No valid session or token came with the request."""


def session_cookie(session_id: str, *, secure: bool = False) -> Cookie:
    """The session cookie: out of reach of scripts, and not sent by other sites' forms."""
    return Cookie(
        key=SESSION_COOKIE,
        value=session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def expired_session_cookie() -> Cookie:
    return Cookie(key=SESSION_COOKIE, value="", max_age=0, httponly=True, samesite="lax", path="/")


async def page_user(request: Request[Any, Any, Any], services: Services) -> User:
    """The signed-in user of a dashboard page; pages send everyone else to sign in."""
    user = await _session_user(services, request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise NotSignedIn("Sign in to see this page.")
    request.state.user = user
    return user


async def provide_user(request: Request[Any, Any, Any], services: Services) -> User:
    """The app-wide ``user`` dependency: REST under /api, the dashboard elsewhere."""
    if request.url.path.startswith("/api/"):
        return await api_user(request, services)
    return await page_user(request, services)


async def optional_page_user(request: Request[Any, Any, Any], services: Services) -> User | None:
    """The signed-in user, if any, for pages anyone may see (sign-in, sign-up)."""
    user = await _session_user(services, request.cookies.get(SESSION_COOKIE))
    if user is not None:
        request.state.user = user
    return user


async def api_user(request: Request[Any, Any, Any], services: Services) -> User:
    """The user of a REST call: ``Authorization: Bearer <token>``.

    A browser's session may read (a report link on a page works), never change:
    a change made with a cookie alone could be forged by another site.
    """
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        user = await services.credentials.user(
            "token", credentials.strip(), services.accounts.token_user
        )
        if user is None:
            raise NotSignedIn(
                "That API token is not valid: it may have been revoked.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return user
    if request.method in SAFE_METHODS:
        user = await _session_user(services, request.cookies.get(SESSION_COOKIE))
        if user is not None:
            return user
    raise NotSignedIn(
        "Send an API token as 'Authorization: Bearer <token>'; create one on the"
        " dashboard's Account page or with POST /api/v1/tokens.",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _session_user(services: Services, session_id: str | None) -> User | None:
    """The session's user (remembered for a moment: services.api.credential_cache)."""
    if not session_id:
        return None
    return await services.credentials.user("session", session_id, services.accounts.session_user)


def basic_credentials(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """Email and password from ``Authorization: Basic``, if that is what was sent."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        email, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return email, password


def client_address(request: Request[Any, Any, Any]) -> str:
    """The address sign-in throttling counts: whoever connected, or, behind a proxy named
    in CSTOR_TRUSTED_PROXIES, the client it forwarded for (uvicorn has put it in place:
    services/api/workers.py); never an X-Forwarded-For that anyone else sent."""
    return request.client.host if request.client else "unknown"
