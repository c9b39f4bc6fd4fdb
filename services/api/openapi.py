"""The OpenAPI document and its Swagger page: errors and sign-in documented once, for every
REST operation, and the page's JavaScript served from a pip package rather than a CDN."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import ReceiveRoutePlugin
from litestar.router import Router
from litestar.routes import BaseRoute, HTTPRoute
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

SWAGGER_ASSETS = "/schema-assets"
# Operations anyone may call; every other one under /api/ needs a token.
PUBLIC = frozenset({("GET", "/api/v1/health"), ("POST", "/api/v1/users")})
# Who may create a token: its owner's token, or their email and password (HTTP Basic).
BASIC_SIGN_IN = frozenset({("POST", "/api/v1/tokens")})
# Handler arguments that are not the request's query parameters.
NOT_QUERY = frozenset({"self", "request", "data", "services", "owner", "user", "admin"})


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One field of a request that does not fit the schema."""

    message: str
    key: str | None = None
    source: str | None = None


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Problem details (RFC 9457), the body of every error answer of the REST API."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


WHY = {
    400: "The request does not fit the schema; `errors` names the fields.",
    401: "No valid API token (`Authorization: Bearer <token>`).",
    403: "Signed in, but not allowed: only admins may.",
    404: "No such resource among yours.",
    409: "It conflicts with the resource's state; `detail` says how.",
    413: "The request body is too large.",
    422: "A value fits the schema but not the rules, or the endpoint refused it.",
    429: "Too many failed sign-ins; try again after Retry-After seconds.",
    503: "A store it needs (the secret store) cannot be reached; nothing was changed.",
}


def problem_statuses(method: str, path: str, handler: HTTPRouteHandler) -> list[int]:
    """The error statuses an operation can answer, from what it takes and who may call it."""
    takes_body = "data" in handler.parsed_fn_signature.parameters
    takes_path = "{" in path
    takes_query = any(
        name not in NOT_QUERY and "{" + name not in path
        for name in handler.parsed_fn_signature.parameters
    )
    statuses = set()
    if takes_body or takes_path or takes_query:
        statuses |= {400, 422}
    if takes_body:
        statuses.add(413)
    if takes_path:
        statuses.add(404)
    if method != "GET":
        statuses.add(409)
    if (method, path) not in PUBLIC:
        statuses |= {401, 503}
    if (method, path) in BASIC_SIGN_IN:
        statuses.add(429)
    if "admin" in handler.parsed_fn_signature.parameters:
        statuses.add(403)
    return sorted(statuses)


class DocumentedProblems(ReceiveRoutePlugin):
    """Declares, on each REST operation as it is registered, its problem+json error answers
    and its sign-in. Litestar takes `responses` and `security` per handler only (no
    app- or controller-level `responses`), so this is the one place they are declared."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            return
        for handler in route.route_handlers:
            for method in handler.http_methods:
                self._document(method, route.path, handler)

    @staticmethod
    def _document(method: str, path: str, handler: HTTPRouteHandler) -> None:
        problems: dict[int, ResponseSpec] = {
            status: ResponseSpec(
                data_container=Problem,
                description=f"{HTTPStatus(status).phrase}: {WHY[status]}",
                media_type="application/problem+json",
                generate_examples=False,
            )
            for status in problem_statuses(method, path, handler)
        }
        declared: Mapping[int, ResponseSpec] = handler.responses or {}
        handler.responses = {**problems, **declared}
        if (method, path) in PUBLIC or handler.security:
            return
        handler.security = [{"token": []}]
        if (method, path) in BASIC_SIGN_IN:
            handler.security = [{"token": []}, {"password": []}]


def openapi_config() -> OpenAPIConfig:
    """OpenAPI at /schema/openapi.json; Swagger UI at /schema and /schema/swagger."""
    swagger = SwaggerRenderPlugin(
        js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
        path=["/", "/swagger"],
    )
    schemes: dict[str, Any] = {
        "token": SecurityScheme(
            type="http", scheme="bearer", description="An API token: POST /api/v1/tokens"
        ),
        "password": SecurityScheme(
            type="http", scheme="basic", description="Your email and password"
        ),
    }
    return OpenAPIConfig(
        title="cstor",
        version="1",
        path="/schema",
        render_plugins=[swagger],
        components=Components(security_schemes=schemes),
    )


def swagger_assets() -> Router:
    """Swagger UI's JavaScript and CSS from the swagger-ui-bundle-v2 package: the page works
    where no CDN can be reached, and shows the Swagger UI version the lock pins."""
    return create_static_files_router(
        path=SWAGGER_ASSETS, directories=[Path(str(swagger_ui_path))], include_in_schema=False
    )
