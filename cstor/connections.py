"""Connections (endpoint + keys) are configuration, kept in an ordinary table."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import asyncpg
import msgspec

from cstor.credentials import SecretCipher
from cstor.s3 import Endpoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id uuid PRIMARY KEY,
    owner text NOT NULL,
    name text NOT NULL,
    endpoint text NOT NULL,
    region text NOT NULL,
    access_key text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS connections_owner ON connections (owner, created_at);
"""


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """A saved connection as users see it: everything but the secret."""

    id: UUID
    name: str
    endpoint: str
    region: str
    access_key: str
    created_at: datetime


_COLUMNS = "id, name, endpoint, region, access_key, created_at"


class ConnectionStore:
    """Reads and writes connections; a secret is stored encrypted, read back only as an Endpoint."""

    def __init__(self, pool: asyncpg.Pool, cipher: SecretCipher) -> None:
        self.pool = pool
        self.cipher = cipher

    async def create(
        self, *, owner: str, name: str, endpoint: str, region: str, access_key: str, secret_key: str
    ) -> Connection:
        row = await self.pool.fetchrow(
            f"INSERT INTO connections (id, owner, name, endpoint, region, access_key,"  # noqa: S608
            f" secret_ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
            uuid4(),
            owner,
            name,
            endpoint,
            region,
            access_key,
            self.cipher.encrypt(secret_key),
        )
        return _to_connection(row)

    async def list(self, owner: str) -> list[Connection]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM connections WHERE owner = $1 ORDER BY created_at",  # noqa: S608
            owner,
        )
        return [_to_connection(row) for row in rows]

    async def get(self, owner: str, connection_id: UUID) -> Connection | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM connections WHERE owner = $1 AND id = $2",  # noqa: S608
            owner,
            connection_id,
        )
        return None if row is None else _to_connection(row)

    async def delete(self, owner: str, connection_id: UUID) -> bool:
        status = await self.pool.execute(
            "DELETE FROM connections WHERE owner = $1 AND id = $2", owner, connection_id
        )
        return bool(status == "DELETE 1")

    async def rotate_secret(
        self, owner: str, connection_id: UUID, *, access_key: str, secret_key: str
    ) -> Connection | None:
        """Replace the keys (the secret encrypted); None if the connection is not theirs."""
        row = await self.pool.fetchrow(
            f"UPDATE connections SET access_key = $3, secret_ciphertext = $4"  # noqa: S608
            f" WHERE owner = $1 AND id = $2 RETURNING {_COLUMNS}",
            owner,
            connection_id,
            access_key,
            self.cipher.encrypt(secret_key),
        )
        return None if row is None else _to_connection(row)

    async def reencrypt_all(self) -> int:
        """Encrypt every stored secret with the current (first) key; how many there were."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch("SELECT id, secret_ciphertext FROM connections FOR UPDATE")
            await conn.executemany(
                "UPDATE connections SET secret_ciphertext = $2 WHERE id = $1",
                [(row["id"], self.cipher.rotate(row["secret_ciphertext"])) for row in rows],
            )
        return len(rows)

    async def endpoint(self, connection_id: UUID) -> Endpoint:
        """The connection with its decrypted secret, for the services that talk to S3."""
        row = await self.pool.fetchrow(
            "SELECT endpoint, region, access_key, secret_ciphertext FROM connections WHERE id = $1",
            connection_id,
        )
        if row is None:
            raise LookupError(f"connection {connection_id} does not exist")
        return Endpoint(
            url=row["endpoint"],
            region=row["region"],
            access_key=row["access_key"],
            secret_key=self.cipher.decrypt(row["secret_ciphertext"]),
        )


def _to_connection(row: asyncpg.Record) -> Connection:
    return Connection(
        id=row["id"],
        name=row["name"],
        endpoint=row["endpoint"],
        region=row["region"],
        access_key=row["access_key"],
        created_at=row["created_at"],
    )
