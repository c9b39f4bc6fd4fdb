"""A connection's request and answer bodies in the REST API; the dashboard's forms use them too."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from cstor.store.connections import Connection

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
EndpointUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+(/.*)?$", max_length=2048)]
AccessKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
SecretKey = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class ConnectionCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new connection; it is tested against the endpoint before it is saved.

    ``provider`` "aws" or "lyve" derives the endpoint from the region
    (https://s3.<region>.amazonaws.com, https://s3.<region>.lyvecloud.seagate.com);
    "custom" (the default) takes ``endpoint`` as given.
    """

    name: Name
    access_key: AccessKey
    secret_key: SecretKey  # write-only
    endpoint: EndpointUrl | None = None
    region: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "us-east-1"
    provider: Literal["custom", "aws", "lyve"] = "custom"


class SecretRotate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """New keys for a connection, tested before they replace the old ones."""

    secret_key: SecretKey
    access_key: AccessKey | None = None  # None: keep the access key


class ConnectionOut(Connection, frozen=True, kw_only=True):
    """A saved connection. The secret key is never returned.

    Its fields are the store's ``Connection`` (one list of them); this subclass only gives
    the API's schema its name.
    """


def connection_out(connection: Connection) -> ConnectionOut:
    """The store's connection as the API answers it."""
    return msgspec.convert(connection, ConnectionOut, from_attributes=True)
