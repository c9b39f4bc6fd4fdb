"""Rotating the application key: secrets are read with any listed key, written with the
first, and `cstor rotate-key` re-encrypts every stored secret so the old key can go."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from cryptography.fernet import Fernet

from cstor.secrets.cipher import CredentialError, SecretCipher
from cstor.secrets.store import EncryptedColumn
from cstor.store.connections import ConnectionStore
from cstor.store.migrations import migrate
from tests.launcher_cli import run_cstor


def test_a_key_list_reads_with_any_key_and_writes_with_the_first() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = SecretCipher(old).encrypt("s3cret")

    both = SecretCipher(f"{new},{old}")
    assert both.decrypt(stored) == "s3cret"
    assert SecretCipher(new).decrypt(both.encrypt("s3cret")) == "s3cret"
    assert SecretCipher(new).decrypt(both.rotate(stored)) == "s3cret"
    with pytest.raises(CredentialError, match="does not match"):
        SecretCipher(new).decrypt(stored)
    with pytest.raises(CredentialError, match="newest first"):
        SecretCipher("not-a-key")


async def test_rotate_key_re_encrypts_every_stored_secret(database_url: str) -> None:
    # Given two connections saved under the old key
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await migrate(pool)
        saved = []
        for n in range(2):
            connection = await ConnectionStore(pool, EncryptedColumn(SecretCipher(old))).create(
                owner="o",
                name=f"c{n}",
                endpoint="http://127.0.0.1:1",
                region="us-east-1",
                access_key="AKIA",
                secret_key=f"secret-{n}",
            )
            saved.append(connection.id)

        # When `cstor rotate-key` runs with the new key first and the old one after
        env = {**os.environ, "CSTOR_SECRET_KEY": f"{new},{old}"}
        result = await asyncio.to_thread(
            run_cstor, "rotate-key", "--database-url", database_url, env=env
        )

        # Then it says so, and the new key alone reads every secret
        assert result.returncode == 0, result.stderr
        assert "2 connection secrets" in result.stdout
        store = ConnectionStore(pool, EncryptedColumn(SecretCipher(new)))
        secrets = [(await store.endpoint(connection_id)).secret_key for connection_id in saved]
        assert secrets == ["secret-0", "secret-1"]
        assert old not in result.stdout + result.stderr
    finally:
        await pool.close()
