"""What adds a connection in a test: the REST body, and the dashboard's form filled in
in-process (for the tests of pages that need a connection: connections, migrations, buckets)."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import AsyncTestClient

from launcher.embedded import EmbeddedS3


def connection_body(server: EmbeddedS3, name: str = "conn", **changes: str) -> dict[str, str]:
    """The REST body of POST /api/v1/connections for a server's keys, with any field changed."""
    return {
        "name": name,
        "endpoint": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        **changes,
    }


def connection_form(server: EmbeddedS3, name: str, **changes: str) -> dict[str, str]:
    """The new-connection form for a server's keys, with any field changed."""
    form = {
        "name": name,
        "endpoint": server.endpoint,
        "region": "us-east-1",
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    return form | changes


async def add_connection(client: AsyncTestClient[Any], server: EmbeddedS3, name: str) -> str:
    """Add a connection through the dashboard's form; its id, from the page it lands on."""
    response = await client.post(
        "/connections", data=connection_form(server, name), follow_redirects=False
    )
    assert response.status_code == 303, response.text
    found = re.search(r"/connections/([0-9a-f-]{36})", response.headers["location"])
    assert found is not None, response.headers["location"]
    return found[1]
