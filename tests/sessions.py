"""Signing up in tests: in-process through the dashboard's forms, or over HTTP for REST."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

PASSWORD = "correct horse battery"


def new_email(name: str = "ops") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def csrf_field(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


async def sign_up(client: AsyncTestClient[Any], email: str | None = None) -> str:
    """Sign up through the form; the client then holds the session (and sends the CSRF
    token as a header, as a page's forms would in a field). Returns the email."""
    email = email or new_email()
    form = await client.get("/sign-up")
    token = csrf_field(form.text)
    response = await client.post(
        "/sign-up",
        data={"email": email, "password": PASSWORD, "_csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.headers["x-csrftoken"] = token
    return email


def api_token(api: httpx.Client, email: str | None = None) -> str:
    """Sign up over REST and create an API token with the password (HTTP Basic)."""
    email = email or new_email()
    created = api.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    token = api.post("/api/v1/tokens", json={"name": "tests"}, auth=(email, PASSWORD))
    assert token.status_code == 201, token.text
    return str(token.json()["token"])


def forget(client: AsyncTestClient[Any]) -> None:
    """Drop the client's cookies and CSRF header: a browser that has never been here."""
    client.cookies.clear()
    client.headers.pop("x-csrftoken", None)
