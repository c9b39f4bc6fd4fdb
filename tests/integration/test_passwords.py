"""Which passwords an account may have: long enough, not only spaces, not one of the most
common; refused in the same words over REST (422 problem+json) and on the sign-up form.
In-process api on a real Postgres and NATS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient, TestClient

from cstor.settings import Settings
from launcher.local_admin import ADMIN_EMAIL, sign_in_local_admin
from services.api.accounts.passwords import BLANK_RULE, COMMON_RULE, LENGTH_RULE, password_problem
from services.api.app import create_app
from tests.sessions import PASSWORD, csrf_field, new_email

Client = AsyncTestClient[Any]

REFUSED = [
    ("short", LENGTH_RULE),
    ("        ", BLANK_RULE),  # eight spaces: long enough, but no password
    ("\t \n \t \n ", BLANK_RULE),
    ("password", COMMON_RULE),
    ("12345678", COMMON_RULE),
    ("Sunshine", COMMON_RULE),  # the list is lower case; the guessers try both
    ("letmein1", COMMON_RULE),
]
IDS = ["short", "spaces", "whitespace", "password", "digits", "capitalised", "letmein1"]


def settings_for(database_url: str, nats_url: str) -> Settings:
    return Settings(
        database_url=database_url, nats_url=nats_url, secret_key=Fernet.generate_key().decode()
    )


@pytest.fixture
def client(visitor: Client) -> Client:
    """The api in-process, with nobody signed in (tests/integration/conftest.py)."""
    return visitor


@pytest.mark.parametrize(("password", "rule"), REFUSED, ids=IDS)
async def test_rest_refuses_a_weak_password_with_a_422_that_says_why(
    client: Client, password: str, rule: str
) -> None:
    # When someone signs up over REST with a password that breaks a rule
    response = await client.post("/api/v1/users", json={"email": new_email(), "password": password})

    # Then it is a 422 problem whose detail is the rule, and no account exists
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == rule
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("password", "rule"), REFUSED, ids=IDS)
async def test_the_sign_up_form_refuses_a_weak_password_in_the_same_words(
    client: Client, password: str, rule: str
) -> None:
    # Given the sign-up form
    form = await client.get("/sign-up")

    # When a password that breaks a rule is sent with it
    response = await client.post(
        "/sign-up",
        data={"email": new_email(), "password": password, "_csrf_token": csrf_field(form.text)},
        follow_redirects=False,
    )

    # Then the form comes back with the rule's words, and no one is signed in
    assert response.status_code == 422
    assert rule in response.text
    assert "cstor_session" not in response.headers.get("set-cookie", "")


async def test_a_strong_password_still_signs_up(client: Client) -> None:
    # The tests' own password, with spaces, is not on the list and is long enough
    assert password_problem(PASSWORD) is None
    response = await client.post("/api/v1/users", json={"email": new_email(), "password": PASSWORD})
    assert response.status_code == 201, response.text


def test_the_local_admin_signs_up_with_its_generated_password(
    database_url: str, nats_url: str, tmp_path: Path
) -> None:
    # Given an api with no local admin yet (as `cstor up` and `cstor demo` find it first)
    with TestClient(app=create_app(settings_for(database_url, nats_url))) as client:
        # When the local admin is created with a password of its own making
        password = sign_in_local_admin(client, tmp_path)

        # Then the api took that password and the admin acts through its token
        assert password_problem(password) is None
        assert client.get("/api/v1/me").json()["email"] == ADMIN_EMAIL
