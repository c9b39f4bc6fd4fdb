"""Connections (endpoint + keys) are configuration, kept in an ordinary table.

The secret key is the secret store's (cstor.secrets.store): the table holds it encrypted,
or only the ARN of the AWS Secrets Manager secret that holds it.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg
import msgspec

from cstor.s3 import Endpoint
from cstor.secrets.cipher import SecretCipher
from cstor.secrets.store import SecretStore, SecretStoreError, StoredSecret


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """A saved connection as users see it: everything but the secret."""

    id: UUID
    name: str
    endpoint: str
    region: str
    access_key: str
    created_at: datetime


class KeyRotation(msgspec.Struct, frozen=True, kw_only=True):
    """What `cstor rotate-key` did: secrets re-encrypted, and secrets kept elsewhere."""

    reencrypted: int
    kept_in_secrets_manager: int


_COLUMNS = ", ".join(Connection.__struct_fields__)


class ConnectionStore:
    """Reads and writes connections; a secret goes to the secret store, and comes back only
    as an Endpoint."""

    def __init__(self, pool: asyncpg.Pool, secrets: SecretStore) -> None:
        self.pool = pool
        self.secrets = secrets

    async def create(
        self, *, owner: str, name: str, endpoint: str, region: str, access_key: str, secret_key: str
    ) -> Connection:
        connection_id = uuid4()
        stored = await self.secrets.create(connection_id, secret_key)
        try:
            row = await self.pool.fetchrow(
                f"INSERT INTO connections (id, owner, name, endpoint, region, access_key,"  # noqa: S608
                f" secret_ciphertext, secret_arn) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                f" RETURNING {_COLUMNS}",
                connection_id,
                owner,
                name,
                endpoint,
                region,
                access_key,
                stored.ciphertext,
                stored.arn,
            )
        except BaseException:
            with contextlib.suppress(SecretStoreError):
                await self.secrets.delete(stored)  # not left behind for a connection never saved
            raise
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
        """Delete the connection and its secret; if the secret store fails, neither is."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "DELETE FROM connections WHERE owner = $1 AND id = $2"
                " RETURNING secret_ciphertext, secret_arn",
                owner,
                connection_id,
            )
            if row is None:
                return False
            await self.secrets.delete(_stored(row))
        return True

    async def rotate_secret(
        self, owner: str, connection_id: UUID, *, access_key: str, secret_key: str
    ) -> Connection | None:
        """Replace the keys (the secret in the secret store); None if the connection is not
        theirs. If the secret store fails, the old keys stay."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT secret_ciphertext, secret_arn FROM connections"
                " WHERE owner = $1 AND id = $2 FOR UPDATE",
                owner,
                connection_id,
            )
            if row is None:
                return None
            stored = await self.secrets.replace(connection_id, _stored(row), secret_key)
            row = await conn.fetchrow(
                f"UPDATE connections SET access_key = $3, secret_ciphertext = $4,"  # noqa: S608
                f" secret_arn = $5 WHERE owner = $1 AND id = $2 RETURNING {_COLUMNS}",
                owner,
                connection_id,
                access_key,
                stored.ciphertext,
                stored.arn,
            )
        return _to_connection(row)

    async def endpoint(self, connection_id: UUID) -> Endpoint:
        """The connection with its secret, for the services that talk to S3."""
        row = await self.pool.fetchrow(
            "SELECT endpoint, region, access_key, secret_ciphertext, secret_arn"
            " FROM connections WHERE id = $1",
            connection_id,
        )
        if row is None:
            raise LookupError(f"connection {connection_id} does not exist")
        return Endpoint(
            url=row["endpoint"],
            region=row["region"],
            access_key=row["access_key"],
            secret_key=await self.secrets.read(connection_id, _stored(row)),
        )


async def reencrypt_secrets(pool: asyncpg.Pool, cipher: SecretCipher) -> KeyRotation:
    """Encrypt every secret kept in Postgres with the current (first) application key.

    Secrets kept in AWS Secrets Manager are not touched: it encrypts them with its own key.
    """
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, secret_ciphertext FROM connections"
            " WHERE secret_ciphertext IS NOT NULL FOR UPDATE"
        )
        await conn.executemany(
            "UPDATE connections SET secret_ciphertext = $2 WHERE id = $1",
            [(row["id"], cipher.rotate(row["secret_ciphertext"])) for row in rows],
        )
        elsewhere = await conn.fetchval(
            "SELECT count(*) FROM connections WHERE secret_arn IS NOT NULL"
        )
    return KeyRotation(reencrypted=len(rows), kept_in_secrets_manager=elsewhere)


def _stored(row: asyncpg.Record) -> StoredSecret:
    ciphertext = row["secret_ciphertext"]
    return StoredSecret(
        ciphertext=None if ciphertext is None else bytes(ciphertext), arn=row["secret_arn"]
    )


def _to_connection(row: asyncpg.Record) -> Connection:
    return Connection(**{name: row[name] for name in Connection.__struct_fields__})
