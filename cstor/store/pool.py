"""The connection pool the services query Postgres through (the read models and the rest)."""

from __future__ import annotations

from typing import Any

import asyncpg


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection given back as it is: no session state to reset.

    Code on pooled connections takes only transaction-scoped advisory locks and sets no
    session variables, LISTENs on none (the relay and the slots have connections of their
    own), and asyncpg still ends any open transaction on release. The reset query it
    would send instead (``RESET ALL``, ``UNLISTEN *``, ...) was one more round trip to
    Postgres for every query the api answers.
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(database_url: str, **options: Any) -> asyncpg.Pool:
    """A connection pool for the services' own queries (see `_PooledConnection`)."""
    return await asyncpg.create_pool(database_url, connection_class=_PooledConnection, **options)
