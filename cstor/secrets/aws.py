"""Connection secrets kept in AWS Secrets Manager; Postgres keeps only each one's ARN."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import boto3
from botocore import exceptions as aws
from botocore.config import Config

from cstor.secrets.store import EncryptedColumn, SecretStoreError, StoredSecret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from cstor.settings import Settings

# Quick to give up on an endpoint that is not there: an api request waits for it.
_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"}
)
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
}
_BUSY = {"ThrottlingException", "InternalServiceError", "ServiceUnavailable"}


class AwsSecretsManager:
    """Each connection's secret as the secret `<prefix><connection id>` in Secrets Manager.

    Secrets saved in Postgres before the switch (`earlier`) are still read from there;
    rotating one moves it into Secrets Manager.
    """

    def __init__(
        self, client: SecretsManagerClient, *, prefix: str, where: str, earlier: EncryptedColumn
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.where = where  # for messages: the endpoint or the region
        self.earlier = earlier

    @classmethod
    def from_settings(cls, settings: Settings, *, earlier: EncryptedColumn) -> AwsSecretsManager:
        """A client for the CSTOR_SECRETS_MANAGER_* endpoint, region and keys."""
        endpoint = settings.secrets_manager_endpoint or None
        client = boto3.session.Session().client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=settings.secrets_manager_region,
            aws_access_key_id=settings.secrets_manager_access_key or None,
            aws_secret_access_key=settings.secrets_manager_secret_key or None,
            config=_CLIENT_CONFIG,
        )
        where = endpoint or f"region {settings.secrets_manager_region}"
        return cls(client, prefix=settings.secrets_manager_prefix, where=where, earlier=earlier)

    async def create(self, connection_id: UUID, secret: str) -> StoredSecret:
        name = f"{self.prefix}{connection_id}"
        created = await self._call(
            "CreateSecret",
            name,
            self.client.create_secret,
            Name=name,
            SecretString=secret,
            Description="The secret key of a cstor connection",
            Tags=[{"Key": "cstor:connection-id", "Value": str(connection_id)}],
        )
        return StoredSecret(arn=str(created["ARN"]))

    async def replace(self, connection_id: UUID, stored: StoredSecret, secret: str) -> StoredSecret:
        if stored.arn is None:
            return await self.create(connection_id, secret)
        try:
            await self._call(
                "PutSecretValue",
                stored.arn,
                self.client.put_secret_value,
                SecretId=stored.arn,
                SecretString=secret,
            )
        except _Missing:
            return await self.create(connection_id, secret)  # deleted outside cstor: keep anew
        return stored

    async def read(self, connection_id: UUID, stored: StoredSecret) -> str:
        if stored.arn is None:
            return await self.earlier.read(connection_id, stored)
        try:
            value = await self._call(
                "GetSecretValue", stored.arn, self.client.get_secret_value, SecretId=stored.arn
            )
        except _Missing:
            raise SecretStoreError(
                f"The secret of connection {connection_id} ({stored.arn}) is no longer in AWS"
                " Secrets Manager; rotate the connection's secret to keep it there again."
            ) from None
        return str(value["SecretString"])

    async def delete(self, stored: StoredSecret) -> None:
        if stored.arn is None:
            return
        with contextlib.suppress(_Missing):  # already gone
            await self._call(
                "DeleteSecret",
                stored.arn,
                self.client.delete_secret,
                SecretId=stored.arn,
                ForceDeleteWithoutRecovery=True,  # the connection that used it is gone
            )

    async def _call(
        self, action: str, name: str, call: Callable[..., Any], **params: Any
    ) -> Mapping[str, Any]:
        """One Secrets Manager request about the secret `name` (its name or ARN), off the event
        loop; its errors as plain messages that name the secret, never hold its value."""
        try:
            response: Mapping[str, Any] = await anyio.to_thread.run_sync(lambda: call(**params))
        except aws.ClientError as error:
            raise self._explain_refusal(action, name, error) from None
        except aws.NoCredentialsError:
            raise SecretStoreError(
                f"cstor has no credentials for AWS Secrets Manager ({self.where}): set"
                " CSTOR_SECRETS_MANAGER_ACCESS_KEY and CSTOR_SECRETS_MANAGER_SECRET_KEY, or"
                " give the process an IAM role."
            ) from None
        except (aws.ConnectionError, aws.HTTPClientError) as error:
            raise SecretStoreError(
                f"AWS Secrets Manager ({self.where}) could not be reached"
                f" ({type(error).__name__}), so {action} on {name} did not happen;"
                " try again once it can be.",
                transient=True,
            ) from None
        except aws.BotoCoreError as error:
            raise SecretStoreError(
                f"{action} on {name} in AWS Secrets Manager ({self.where}) failed:"
                f" {type(error).__name__}.",
                transient=True,
            ) from None
        return response

    def _explain_refusal(self, action: str, name: str, error: aws.ClientError) -> SecretStoreError:
        # Built from the error code alone: AWS's own message is not needed, nor shown.
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ResourceNotFoundException":
            return _Missing(f"{name} is not in AWS Secrets Manager")
        if code in _DENIED or status in (401, 403):
            return SecretStoreError(
                f"AWS Secrets Manager ({self.where}) refused {action} on {name}: the"
                " credentials cstor uses for it are not valid, or their IAM policy does not"
                f" allow secretsmanager:{action} there ({code or status})."
            )
        if code in _BUSY or status >= 500:
            return SecretStoreError(
                f"AWS Secrets Manager ({self.where}) could not do {action} on {name} right"
                f" now ({code or status}); try again.",
                transient=True,
            )
        if code == "ResourceExistsException":
            return SecretStoreError(
                f"AWS Secrets Manager already holds a secret named {name}; cstor will not"
                " overwrite a secret it did not create."
            )
        return SecretStoreError(
            f"AWS Secrets Manager ({self.where}) would not do {action} on {name}"
            f" ({code or status})."
        )


class _Missing(SecretStoreError):
    """The secret is not there (deleted outside cstor, or never kept)."""
