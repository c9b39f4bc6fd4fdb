"""Accounts: sign-up, sign-in and sign-out pages, the Account page, and their REST twins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.response import Redirect, Template

from cstor.accounts import (
    AccountError,
    ApiToken,
    EmailTaken,
    SignInThrottled,
    User,
)
from cstor.passwords import COMMON_PASSWORDS_REFUSED, MIN_PASSWORD_LENGTH
from services.api.auth import (
    SESSION_COOKIE,
    api_user,
    basic_credentials,
    client_address,
    expired_session_cookie,
    optional_page_user,
    session_cookie,
)
from services.api.deps import Services
from services.api.pages import Form, error_page, page

TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class SignUp(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    # No length bounds here: the rules are the accounts' own (cstor.passwords), so a refused
    # password is a 422 in the same words as on the sign-up form, not a schema error.
    password: Annotated[
        str,
        msgspec.Meta(
            description=f"At least {MIN_PASSWORD_LENGTH} characters, not only spaces, and not"
            f" one of the {COMMON_PASSWORDS_REFUSED:,} most common passwords."
        ),
    ]


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    created_at: datetime


class TokenCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: TokenName


class TokenOut(msgspec.Struct, frozen=True, kw_only=True):
    """An API token as listed: its name and how it starts, never the token itself."""

    id: UUID
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A new API token. ``token`` is shown this once: keep it, it cannot be read again."""

    id: UUID
    name: str
    hint: str
    created_at: datetime
    token: str


class Conflict(ClientException):
    status_code = 409


class Unprocessable(ClientException):
    status_code = 422


class TooManyRequests(ClientException):
    status_code = 429


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at)


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(**msgspec.structs.asdict(token))


def _throttled(error: SignInThrottled) -> TooManyRequests:
    return TooManyRequests(str(error), headers={"Retry-After": "60"})


def _local_path(target: str) -> str:
    """Where to go after signing in: only a path on this site, never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# REST ---------------------------------------------------------------------------------


class HealthController(Controller):
    path = "/api/v1/health"
    tags = ["health"]

    @get("/", summary="Is the api up? (no token needed)")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}


class UserController(Controller):
    """Sign up for an account, and see whose token this is."""

    path = "/api/v1"
    tags = ["accounts"]

    @post("/users", summary="Sign up (no token needed)")
    async def sign_up(self, services: Services, data: SignUp) -> UserOut:
        try:
            return _user_out(await services.accounts.sign_up(data.email, data.password))
        except EmailTaken as error:
            raise Conflict(str(error)) from None
        except AccountError as error:
            raise Unprocessable(str(error)) from None

    @get("/me", summary="The signed-in user")
    async def me(self, user: User) -> UserOut:
        return _user_out(user)


class TokenController(Controller):
    """API tokens for scripts and CI: created, listed, revoked. A token is shown once."""

    path = "/api/v1/tokens"
    tags = ["accounts"]

    @post(
        "/",
        summary="Create an API token",
        description="Authenticate with an API token, or with your email and password as"
        " HTTP Basic (how a script gets its first token). Keep the token from the answer:"
        " it is never shown again.",
    )
    async def create(
        self, request: Request[Any, Any, Any], services: Services, data: TokenCreate
    ) -> TokenCreated:
        credentials = basic_credentials(request)
        if credentials is None:
            user = await api_user(request, services)
        else:
            try:
                user = await services.accounts.authenticate(*credentials, client_address(request))
            except SignInThrottled as error:
                raise _throttled(error) from None
            except AccountError as error:
                raise NotAuthorizedException(str(error)) from None
        token, secret = await services.accounts.create_token(user.id, data.name)
        return TokenCreated(
            id=token.id, name=token.name, hint=token.hint, created_at=token.created_at, token=secret
        )

    @get("/", summary="List your API tokens")
    async def list_tokens(self, services: Services, user: User) -> list[TokenOut]:
        return [_token_out(t) for t in await services.accounts.tokens(user.id)]

    @delete("/{token_id:uuid}", summary="Revoke an API token")
    async def revoke(self, services: Services, user: User, token_id: UUID) -> None:
        digest = await services.accounts.revoke_token(user.id, token_id)
        if digest is None:
            raise NotFoundException(f"API token {token_id} does not exist.")
        services.credentials.forget("token", digest)


# Pages --------------------------------------------------------------------------------


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
            raise NotFoundException(f"API token {token_id} does not exist.")
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


ACCOUNT_CONTROLLERS = [
    HealthController,
    UserController,
    TokenController,
    SignInPages,
    AccountPages,
]
