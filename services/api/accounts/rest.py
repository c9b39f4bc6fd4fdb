"""REST API v1: health, sign-up, whose token this is, and API tokens."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import ClientException, NotAuthorizedException

from cstor.domain.exceptions import Conflict, InvalidRequest, NotFound
from services.api.accounts.schemas import SignUp, TokenCreate, TokenCreated, TokenOut, UserOut
from services.api.accounts.store import AccountError, ApiToken, EmailTaken, SignInThrottled, User
from services.api.auth import api_user, basic_credentials, client_address
from services.api.deps import Services


class TooManyRequests(ClientException):
    """Too many failed sign-ins: HTTP's own answer, with the Retry-After header it needs."""

    status_code = 429


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at)


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(**msgspec.structs.asdict(token))


def _throttled(error: SignInThrottled) -> TooManyRequests:
    return TooManyRequests(str(error), headers={"Retry-After": "60"})


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
            raise InvalidRequest(str(error)) from None

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
            raise NotFound(f"API token {token_id} does not exist.")
        services.credentials.forget("token", digest)


REST_CONTROLLERS = [HealthController, UserController, TokenController]
