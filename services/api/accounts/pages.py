"""The accounts pages: sign up, sign in and sign out, and the Account page (API tokens)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.response import Redirect, Template

from cstor.domain.exceptions import NotFound
from services.api.accounts.store import AccountError, EmailTaken, SignInThrottled, User
from services.api.auth import (
    SESSION_COOKIE,
    client_address,
    expired_session_cookie,
    optional_page_user,
    session_cookie,
)
from services.api.dashboard import Form, error_page, page
from services.api.deps import Services


def _local_path(target: str) -> str:
    """Where to go after signing in: only a path on this site, never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


class SignInPages(Controller):
    """Sign up, sign in and sign out: the pages anyone may open."""

    path = "/"
    include_in_schema = False
    exception_handlers = {Exception: error_page}

    @get("/sign-up", media_type=MediaType.HTML)
    async def sign_up_form(self, request: Request[Any, Any, Any], services: Services) -> Any:
        if await optional_page_user(request, services) is not None:
            return Redirect("/", status_code=303)
        return page("accounts/sign_up.html", nav="sign-up", values={}, error="")

    @post("/sign-up", media_type=MediaType.HTML)
    async def sign_up(
        self, request: Request[Any, Any, Any], services: Services, data: Form
    ) -> Response[Any]:
        email = data.get("email", "")
        try:
            user = await services.accounts.sign_up(email, data.get("password", ""))
        except AccountError as error:
            status = 409 if isinstance(error, EmailTaken) else 422
            return page(
                "accounts/sign_up.html",
                nav="sign-up",
                values={"email": email},
                error=str(error),
                status_code=status,
            )
        return await _signed_in(request, services, user, "/")

    @get("/sign-in", media_type=MediaType.HTML)
    async def sign_in_form(
        self, request: Request[Any, Any, Any], services: Services, next: str = "/"
    ) -> Any:
        if await optional_page_user(request, services) is not None:
            return Redirect(_local_path(next), status_code=303)
        return page("accounts/sign_in.html", nav="sign-in", values={"next": next}, error="")

    @post("/sign-in", media_type=MediaType.HTML)
    async def sign_in(
        self, request: Request[Any, Any, Any], services: Services, data: Form
    ) -> Response[Any]:
        email, target = data.get("email", ""), data.get("next", "/")
        try:
            user = await services.accounts.authenticate(
                email, data.get("password", ""), client_address(request)
            )
        except AccountError as error:
            status = 429 if isinstance(error, SignInThrottled) else 401
            return page(
                "accounts/sign_in.html",
                nav="sign-in",
                values={"email": email, "next": target},
                error=str(error),
                status_code=status,
            )
        return await _signed_in(request, services, user, _local_path(target))

    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, Any], services: Services) -> Response[Any]:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            services.credentials.forget("session", await services.accounts.end_session(session_id))
        return Redirect("/sign-in", status_code=303, cookies=[expired_session_cookie()])


class AccountPages(Controller):
    """The signed-in user's account: their API tokens."""

    path = "/account"
    include_in_schema = False
    exception_handlers = {Exception: error_page}

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], services: Services, user: User
    ) -> Template:
        # A token just created is shown on this page once, after the redirect from the form.
        flash = await services.accounts.pop_flash(request.cookies[SESSION_COOKIE])
        return await _account_page(
            services, user, created=flash.get("token_name", ""), secret=flash.get("token", "")
        )

    @post("/tokens")
    async def create_token(
        self, request: Request[Any, Any, Any], services: Services, user: User, data: Form
    ) -> Response[Any]:
        name = data.get("name", "").strip()
        if not name or len(name) > 100:
            return await _account_page(
                services,
                user,
                error="Give the token a name of 1 to 100 characters.",
                status_code=422,
            )
        token, secret = await services.accounts.create_token(user.id, name)
        # Post, redirect, get: reloading the page shows the token list, not a second token.
        await services.accounts.put_flash(
            request.cookies[SESSION_COOKIE], {"token_name": token.name, "token": secret}
        )
        return Redirect("/account", status_code=303)

    @post("/tokens/{token_id:uuid}/revoke")
    async def revoke_token(self, services: Services, user: User, token_id: UUID) -> Redirect:
        digest = await services.accounts.revoke_token(user.id, token_id)
        if digest is None:
            raise NotFound(f"API token {token_id} does not exist.")
        services.credentials.forget("token", digest)
        return Redirect("/account", status_code=303)


async def _signed_in(
    request: Request[Any, Any, Any], services: Services, user: User, target: str
) -> Response[Any]:
    session_id = await services.accounts.start_session(user.id)
    cookie = session_cookie(session_id, secure=request.url.scheme == "https")
    return Redirect(target, status_code=303, cookies=[cookie])


async def _account_page(
    services: Services,
    user: User,
    *,
    created: str = "",
    secret: str = "",
    error: str = "",
    status_code: int = 200,
) -> Template:
    return page(
        "accounts/account.html",
        nav="account",
        tokens=await services.accounts.tokens(user.id),
        created=created,
        secret=secret,
        error=error,
        status_code=status_code,
    )


PAGE_CONTROLLERS = [SignInPages, AccountPages]
