"""Where connection secrets are kept: encrypted in Postgres (the default) or elsewhere.

The connections table keeps a `StoredSecret` for each connection: the secret itself,
encrypted with the application key, or only the name of the place that keeps it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

import msgspec

from cstor.secrets.cipher import CredentialError, SecretCipher

if TYPE_CHECKING:
    from cstor.settings import Settings

log = logging.getLogger(__name__)


class SecretStoreError(Exception):
    """A secret could not be kept, read or deleted; the message says why, never the secret."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # worth trying again later (unreachable, throttled)


class StoredSecret(msgspec.Struct, frozen=True, kw_only=True):
    """What Postgres holds of one connection's secret: exactly one of the two."""

    ciphertext: bytes | None = None  # the secret, encrypted with the application key
    arn: str | None = None  # the AWS Secrets Manager secret that holds it


class SecretStore(Protocol):
    """Keeps connection secrets; what it returns is all that Postgres stores of them."""

    async def create(self, connection_id: UUID, secret: str) -> StoredSecret:
        """Keep a new connection's secret."""
        ...

    async def replace(self, connection_id: UUID, stored: StoredSecret, secret: str) -> StoredSecret:
        """Keep a new secret for the connection in place of the old one."""
        ...

    async def read(self, connection_id: UUID, stored: StoredSecret) -> str:
        """The secret, for the services that talk to S3."""
        ...

    async def delete(self, stored: StoredSecret) -> None:
        """Forget a deleted connection's secret."""
        ...


class EncryptedColumn:
    """The default: each secret encrypted with the application key (Fernet), in Postgres."""

    def __init__(self, cipher: SecretCipher) -> None:
        self.cipher = cipher

    async def create(self, connection_id: UUID, secret: str) -> StoredSecret:
        return StoredSecret(ciphertext=self.cipher.encrypt(secret))

    async def replace(self, connection_id: UUID, stored: StoredSecret, secret: str) -> StoredSecret:
        if stored.arn is not None:
            log.warning(
                "connection %s: its new secret is kept in Postgres; the old one stays in"
                " AWS Secrets Manager as %s until deleted there",
                connection_id,
                stored.arn,
            )
        return await self.create(connection_id, secret)

    async def read(self, connection_id: UUID, stored: StoredSecret) -> str:
        if stored.ciphertext is None:
            raise SecretStoreError(
                f"The secret of connection {connection_id} is kept in AWS Secrets Manager"
                f" ({stored.arn}), but cstor is set to keep secrets in Postgres: set"
                " CSTOR_SECRETS_BACKEND=aws-secrets-manager to read it, or rotate the"
                " connection's secret to keep a new one in Postgres."
            )
        try:
            return self.cipher.decrypt(stored.ciphertext)
        except CredentialError as error:
            raise SecretStoreError(
                f"The secret of connection {connection_id} cannot be read: {error}"
                " (CSTOR_SECRET_KEY)."
            ) from None

    async def delete(self, stored: StoredSecret) -> None:
        if stored.arn is not None:
            log.warning(
                "a deleted connection's secret stays in AWS Secrets Manager as %s: cstor is"
                " set to keep secrets in Postgres, so it cannot delete it there",
                stored.arn,
            )


def secret_store_for(settings: Settings) -> SecretStore:
    """The secret store the settings choose (CSTOR_SECRETS_BACKEND)."""
    encrypted = EncryptedColumn(SecretCipher(settings.secret_key))
    if settings.secrets_backend == "postgres":
        return encrypted
    # Imported only when chosen: it builds a boto3 client.
    from cstor.secrets.aws import AwsSecretsManager

    return AwsSecretsManager.from_settings(settings, earlier=encrypted)
