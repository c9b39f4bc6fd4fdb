"""What request handlers are given: the owner of the request and the app's adapters."""

from __future__ import annotations

from dataclasses import dataclass

from cstor.app.migrations import Migrations
from cstor.store.connections import ConnectionStore
from services.api.accounts.store import Accounts, User
from services.api.credential_cache import CredentialCache
from services.api.queries import ReadModels


@dataclass(frozen=True)
class Services:
    """The api's adapters, created once by the lifespan and kept on ``app.state``."""

    migrations: Migrations
    connections: ConnectionStore
    read_models: ReadModels
    accounts: Accounts
    credentials: CredentialCache


async def provide_owner(user: User) -> str:
    """What everything a user creates is recorded under, and filtered by: their id.

    ``user`` is the app-wide dependency of services.api.auth: a page without a
    session redirects to sign-in, a REST call without a token answers 401.
    """
    return str(user.id)
