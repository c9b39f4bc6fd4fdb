"""Accounts: sign-up, sign-in, sign-out, sessions, CSRF, throttling and API tokens,
in-process on a real Postgres and NATS."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from services.api.accounts.store import FAILURES_PER_ACCOUNT
from tests.sessions import PASSWORD, csrf_field, forget, new_email, sign_up

Client = AsyncTestClient[Any]


@pytest.fixture
def client(visitor: Client) -> Client:
    """The api in-process, with nobody signed in (tests/integration/conftest.py)."""
    return visitor


async def sign_in(client: Client, email: str, password: str, **extra: str) -> Any:
    form = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={"email": email, "password": password, "_csrf_token": csrf_field(form.text), **extra},
        follow_redirects=False,
    )


def navigation(html: str) -> str:
    return html[html.index("<header") : html.index("</header>")]


async def test_a_visitor_is_sent_to_sign_in_and_comes_back_after(client: Client) -> None:
    # Given an account
    email = await sign_up(client)
    forget(client)

    # When a visitor who is not signed in opens a page
    response = await client.get("/connections", follow_redirects=False)

    # Then they are sent to sign in, and back to that page once they have
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fconnections"
    signed_in = await sign_in(client, email, PASSWORD, next="/connections")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/connections"
    # But never to another site
    forget(client)
    elsewhere = await sign_in(client, email, PASSWORD, next="//evil.example/")
    assert elsewhere.headers["location"] == "/"


async def test_the_navigation_shows_the_user_at_once_after_sign_up_and_sign_out(
    client: Client,
) -> None:
    # Given a visitor on the sign-up page: the navigation offers sign-in and sign-up
    form = await client.get("/sign-up")
    assert "Sign in" in navigation(form.text)
    assert "Sign out" not in navigation(form.text)

    # When they sign up
    email = new_email()
    response = await client.post(
        "/sign-up",
        data={"email": email, "password": PASSWORD, "_csrf_token": csrf_field(form.text)},
    )

    # Then the very next page names them and offers sign-out
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    nav = navigation(response.text)
    assert email in nav
    assert "Sign out" in nav
    assert 'href="/connections"' in nav

    # When they sign out
    home = await client.get("/")
    out = await client.post(
        "/sign-out", data={"_csrf_token": csrf_field(home.text)}, follow_redirects=False
    )

    # Then they land on sign-in, the navigation no longer names them, and the session is over
    assert out.status_code == 303
    assert out.headers["location"] == "/sign-in"
    page = await client.get("/sign-in")
    assert email not in navigation(page.text)
    assert "Sign out" not in navigation(page.text)
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_passwords_and_sessions_are_stored_only_as_hashes(
    client: Client, database_url: str
) -> None:
    # When someone signs up
    form = await client.get("/sign-up")
    response = await client.post(
        "/sign-up",
        data={
            "email": "Ops@Example.com",
            "password": PASSWORD,
            "_csrf_token": csrf_field(form.text),
        },
        follow_redirects=False,
    )

    # Then the session cookie is out of scripts' reach and not sent by other sites' posts
    cookie = next(c for c in response.headers.get_list("set-cookie") if "cstor_session" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    session_id = client.cookies["cstor_session"]
    # And the database holds an argon2 hash of the password, and no session id in the clear
    conn = await asyncpg.connect(database_url)
    try:
        user = await conn.fetchrow("SELECT email, password_hash FROM users")
        sessions = await conn.fetch("SELECT digest FROM sessions")
    finally:
        await conn.close()
    assert user["email"] == "ops@example.com"
    assert user["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in user["password_hash"]
    assert all(session_id.encode() not in bytes(row["digest"]) for row in sessions)


async def test_a_form_post_without_its_csrf_token_is_refused(client: Client) -> None:
    # Given a signed-in user
    await sign_up(client)
    client.headers.pop("x-csrftoken")

    # When a form arrives without the page's token (as a forged cross-site post would)
    response = await client.post("/account/tokens", data={"name": "forged"})

    # Then it is refused and nothing is created
    assert response.status_code == 403
    assert (await client.get("/api/v1/tokens")).json() == []


async def test_sign_up_problems_are_explained(client: Client) -> None:
    email = await sign_up(client)
    forget(client)
    form = await client.get("/sign-up")
    token = csrf_field(form.text)

    taken = await client.post(
        "/sign-up", data={"email": email, "password": PASSWORD, "_csrf_token": token}
    )
    assert taken.status_code == 409
    assert "exists already" in taken.text

    short = await client.post(
        "/sign-up", data={"email": new_email(), "password": "short", "_csrf_token": token}
    )
    assert short.status_code == 422
    assert "at least 8 characters" in short.text


async def test_repeated_failed_sign_ins_are_throttled_with_a_clear_message(
    client: Client,
) -> None:
    # Given an account
    email = await sign_up(client)
    forget(client)

    # When the wrong password is tried as often as allowed
    for _ in range(FAILURES_PER_ACCOUNT):
        wrong = await sign_in(client, email, "not the password")
        assert wrong.status_code == 401
        assert "do not match" in wrong.text

    # Then the next attempt is refused for a while, even with the right password
    throttled = await sign_in(client, email, PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text
    # And the REST route to a token is throttled the same way
    response = await client.post("/api/v1/tokens", json={"name": "x"}, auth=(email, PASSWORD))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert "Too many failed sign-ins" in response.json()["detail"]


async def test_rest_calls_need_a_token_and_a_revoked_token_stops_working(
    client: Client,
) -> None:
    # A call without a token is a 401 problem that says what to send
    anonymous = await client.get("/api/v1/migrations")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    problem = anonymous.json()
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert "Authorization: Bearer" in problem["detail"]

    # Given a user who signs up over REST and creates a token with their password
    email = new_email()
    assert (
        await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    ).status_code == 201
    created = await client.post("/api/v1/tokens", json={"name": "ci"}, auth=(email, PASSWORD))
    assert created.status_code == 201
    token = created.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    # Then the token works, and is listed by name and hint, never in full
    assert (await client.get("/api/v1/me", headers=bearer)).json()["email"] == email
    listed = await client.get("/api/v1/tokens", headers=bearer)
    assert [t["name"] for t in listed.json()] == ["ci"]
    assert token not in listed.text
    assert token.startswith(listed.json()[0]["hint"].rstrip("…"))

    # When it is revoked
    revoked = await client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=bearer)
    assert revoked.status_code == 204

    # Then it is refused
    refused = await client.get("/api/v1/me", headers=bearer)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


async def test_a_browser_session_may_read_the_api_but_not_change_anything(
    client: Client,
) -> None:
    # Given a user signed in to the dashboard
    email = await sign_up(client)

    # Then their session reads the API (so a report link on a page works)
    assert (await client.get("/api/v1/me")).json()["email"] == email
    # But a change through the API needs a token: a cookie alone could be forged by a site
    response = await client.post("/api/v1/tokens", json={"name": "x"})
    assert response.status_code == 401


async def test_a_token_made_on_the_account_page_is_shown_once(
    client: Client, database_url: str
) -> None:
    # Given a signed-in user on their account page
    await sign_up(client)

    # When they create a token
    posted = await client.post("/account/tokens", data={"name": "nightly"}, follow_redirects=False)

    # Then the browser is redirected (a reload must not make another token)
    assert posted.status_code == 303
    assert posted.headers["location"] == "/account"
    conn = await asyncpg.connect(database_url)
    try:
        kept = await conn.fetchval("SELECT sealed FROM session_flashes")
        # And the account page shows the token this once, and it works as a Bearer token
        created = await client.get("/account")
        assert created.status_code == 200
        secret = created.text.split('<code class="token">')[1].split("</code>")[0]
        # While it waited for that page, the token was kept only sealed, and is gone now
        assert secret.encode() not in bytes(kept)
        assert await conn.fetchval("SELECT count(*) FROM session_flashes") == 0
    finally:
        await conn.close()
    assert secret.startswith("cstor_")
    assert "not shown again" in created.text
    page = await client.get("/account")
    assert "nightly" in page.text
    assert secret not in page.text
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/tokens", headers=bearer)).status_code == 200

    # When it is revoked from the page
    token_id = (await client.get("/api/v1/tokens")).json()[0]["id"]
    revoked = await client.post(f"/account/tokens/{token_id}/revoke", follow_redirects=False)

    # Then it is gone, and refused
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/tokens")).json() == []
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
