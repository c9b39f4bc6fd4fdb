"""Who a session or an API token belongs to, remembered by each worker (services.api.cache).

Every page and REST call starts by asking Postgres whose session or token came with it
(and, for a token, writing when it was last used); under load that was a third of the
api's queries. Answers are keyed by the secret's SHA-256 digest (what the tables keep)
and its kind, so a session id is never taken for a token. Ending one (sign-out,
revocation, a user deleted) stops it at once in every worker: a trigger on the sessions
and api_tokens tables names the digest of each row deleted, or moved to another user,
on the cache's channel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Literal

from services.api.accounts.store import User
from services.api.cache import NotifiedCache

CHANNEL = "cstor_credentials_ended"
Kind = Literal["session", "token"]


class CredentialCache:
    """Sessions' and tokens' users, forgotten in every worker when they end."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._users: NotifiedCache[tuple[Kind, bytes], User] = NotifiedCache(
            database_url, CHANNEL, _keys_of_digest
        )

    async def start(self) -> None:
        """Listen for credentials ended (the triggers are `cstor.store.migrations`'s)."""
        self._users.start()

    async def close(self) -> None:
        await self._users.close()

    async def user(
        self, kind: Kind, secret: str, lookup: Callable[[str], Awaitable[User | None]]
    ) -> User | None:
        """The credential's user: remembered, or found by ``lookup`` (then remembered)."""
        key = (kind, hashlib.sha256(secret.encode()).digest())
        return await self._users.get(key, lambda: lookup(secret))

    def forget(self, kind: Kind, digest: bytes) -> None:
        """Stop remembering an ended credential (by its digest) in this worker now, so
        the client that ended it is refused on its next request, whichever comes first."""
        self._users.forget((kind, digest))


def _keys_of_digest(payload: str) -> list[tuple[Kind, bytes]]:
    try:
        digest = bytes.fromhex(payload)
    except ValueError:
        return []
    return [("session", digest), ("token", digest)]
