"""The embedded stack's own account: `cstor demo` and the benchmarks drive the REST API
as a local admin, created through the API on first start and kept in the data folder."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path

import httpx

from launcher.stack import LOCAL_ADMIN, ServiceProcesses

ADMIN_EMAIL = LOCAL_ADMIN


def sign_in_local_admin(client: httpx.Client, data_dir: Path) -> str:
    """Make ``client`` act as the local admin (an API token); return the admin's password.

    The first start signs up the admin with a random password and creates a token;
    both are saved to ``data_dir/admin.json`` (mode 0600) for the next start and for
    the person who wants to sign in to the dashboard.
    """
    path = data_dir / "admin.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    password = saved.get("password") or secrets.token_urlsafe(12)
    token = saved.get("token", "")
    if token and client.get("/api/v1/me", headers=_bearer(token)).status_code == 200:
        client.headers.update(_bearer(token))
        return str(password)
    signed_up = client.post("/api/v1/users", json={"email": ADMIN_EMAIL, "password": password})
    if signed_up.status_code not in (201, 409):  # 409: the admin exists already
        raise SystemExit(f"could not create the local admin: {signed_up.text}")
    created = client.post(
        "/api/v1/tokens", json={"name": "cstor local admin"}, auth=(ADMIN_EMAIL, password)
    )
    if created.status_code != 201:
        raise SystemExit(
            f"could not sign in as {ADMIN_EMAIL} (remove {path} if the database was reset"
            f" by hand): {created.text}"
        )
    token = created.json()["token"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"email": ADMIN_EMAIL, "password": password, "token": token}, file)
    client.headers.update(_bearer(token))
    return str(password)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for_api(client: httpx.Client, services: ServiceProcesses, timeout: float = 60) -> None:
    """Wait until the api answers, restarting any service that died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/api/v1/health").status_code == 200:
                return
        services.restart_exited()
        time.sleep(0.3)
    raise SystemExit(f"the api did not start; see {services.settings.data_dir}/logs/api.log")
