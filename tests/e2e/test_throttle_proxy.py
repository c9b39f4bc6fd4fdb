"""Sign-in throttling per address trusts X-Forwarded-For only from a proxy the operator
named (CSTOR_TRUSTED_PROXIES): the api under its real uvicorn, as a client on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cstor.settings import Settings, SettingsError
from services.api.accounts.store import FAILURES_PER_ADDRESS
from tests.sessions import new_email
from tests.stack import RunningCstor, start_cstor

# Documentation addresses (RFC 5737): only ever written in a header, never connected to.
CLIENT, OTHER_CLIENT = "203.0.113.7", "203.0.113.8"


@pytest.fixture
def no_proxy(database_url: str, nats_url: str, tmp_path: Path) -> Iterator[RunningCstor]:
    yield from start_cstor(database_url, nats_url, tmp_path)


@pytest.fixture
def behind_proxy(database_url: str, nats_url: str, tmp_path: Path) -> Iterator[RunningCstor]:
    # The test's own client, on 127.0.0.1, plays the proxy
    yield from start_cstor(database_url, nats_url, tmp_path, trusted_proxies="127.0.0.1")


def failed_sign_in(cstor: RunningCstor, forwarded_for: str | None) -> httpx.Response:
    """A sign-in (for a first token) with a wrong password, for an account never tried
    before: only the address can be throttled."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return httpx.post(
        f"{cstor.api.base_url}/api/v1/tokens",
        json={"name": "guess"},
        auth=(new_email("guess"), "wrong password 1"),
        headers=headers,
        timeout=30,
    )


def test_without_a_trusted_proxy_a_forged_forwarded_for_does_not_escape_the_limit(
    no_proxy: RunningCstor,
) -> None:
    # Given as many failed sign-ins from one address as allowed, each claiming to be
    # forwarded for another client
    for n in range(FAILURES_PER_ADDRESS):
        response = failed_sign_in(no_proxy, f"198.51.100.{n + 1}")
        assert response.status_code == 401, response.text

    # When the next one claims yet another client
    response = failed_sign_in(no_proxy, OTHER_CLIENT)

    # Then it is throttled all the same: the header was not believed
    assert response.status_code == 429, response.text
    assert "from your address" in response.json()["detail"]


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    behind_proxy: RunningCstor,
) -> None:
    # Given as many failed sign-ins as allowed from one client, through the trusted proxy
    for _ in range(FAILURES_PER_ADDRESS):
        assert failed_sign_in(behind_proxy, CLIENT).status_code == 401

    # Then that client is throttled, even when it writes another address before its own
    # (the proxy appends the one it saw; the right-most untrusted address counts)
    for forwarded_for in (CLIENT, f"{OTHER_CLIENT}, {CLIENT}"):
        response = failed_sign_in(behind_proxy, forwarded_for)
        assert response.status_code == 429, response.text
        assert "from your address" in response.json()["detail"]

    # But another client through the same proxy, and the proxy itself, are not
    assert failed_sign_in(behind_proxy, OTHER_CLIENT).status_code == 401
    assert failed_sign_in(behind_proxy, None).status_code == 401


def test_a_trusted_proxy_that_is_not_an_address_stops_the_start_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"CSTOR_TRUSTED_PROXIES: 'proxy\.internal'"):
        Settings.from_env({"CSTOR_TRUSTED_PROXIES": "10.0.0.5, proxy.internal"})
    networks = Settings.from_env({"CSTOR_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16, ::1"})
    assert [str(n) for n in networks.trusted_proxy_networks()] == [
        "10.0.0.5/32",
        "10.1.0.0/16",
        "::1/128",
    ]
