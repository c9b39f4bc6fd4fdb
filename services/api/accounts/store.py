"""Users, their sessions and API tokens, and sign-in throttling: ordinary tables.

Passwords are argon2 hashes. Session ids and API tokens are random, shown to their
holder once, and stored only as SHA-256 digests: a copy of the table signs no one in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import anyio
import asyncpg
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from services.api.accounts.passwords import password_problem

SESSION_LIFETIME = timedelta(days=14)
FLASH_LIFETIME = timedelta(minutes=5)
TOKEN_PREFIX = "cstor_"  # noqa: S105 - a label, not a secret
# Failed sign-ins allowed per minute, for one account and from one address.
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_ADDRESS = 20
THROTTLE_WINDOW = timedelta(minutes=1)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_hasher = PasswordHasher()


class AccountError(Exception):
    """A sign-up or sign-in that cannot go ahead; the message is for the person."""


class EmailTaken(AccountError):
    pass


class SignInThrottled(AccountError):
    """Too many failed sign-ins lately, for the account or from the address."""


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    created_at: datetime


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never its secret, only a hint of how it starts."""

    id: UUID
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _flash_cipher(session_id: str) -> Fernet:
    """A key only the session's cookie gives (the table keeps another digest of it)."""
    key = hashlib.sha256(b"cstor-flash:" + session_id.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Accounts:
    """Sign-up, sign-in, sessions and API tokens over the accounts tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def sign_up(self, email: str, password: str) -> User:
        email = normalise_email(email)
        if not _EMAIL.match(email) or len(email) > 254:
            raise AccountError("Enter an email address, like ops@example.com.")
        if (problem := password_problem(password)) is not None:
            raise AccountError(problem)
        password_hash = await anyio.to_thread.run_sync(_hasher.hash, password)
        row = await self.pool.fetchrow(
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)"
            " ON CONFLICT (email) DO NOTHING RETURNING id, email, created_at",
            uuid4(),
            email,
            password_hash,
        )
        if row is None:
            raise EmailTaken(f"An account for {email} exists already; sign in instead.")
        return User(**dict(row))

    async def authenticate(self, email: str, password: str, address: str) -> User:
        """The user with these credentials, unless throttled; each failure counts."""
        email = normalise_email(email)
        subjects = (f"account:{email}", f"address:{address}")
        await self._check_throttle(*subjects)
        row = await self.pool.fetchrow(
            "SELECT id, email, created_at, password_hash FROM users WHERE email = $1", email
        )
        # An unknown email costs the same hash check, so timing tells nothing.
        known = row["password_hash"] if row is not None else _unknown_user_hash()
        if await anyio.to_thread.run_sync(_verify, known, password) and row is not None:
            await self.pool.execute("DELETE FROM sign_in_failures WHERE subject = $1", subjects[0])
            return User(id=row["id"], email=row["email"], created_at=row["created_at"])
        await self.pool.executemany(
            "INSERT INTO sign_in_failures (subject) VALUES ($1)", [(s,) for s in subjects]
        )
        raise AccountError("That email and password do not match an account.")

    async def _check_throttle(self, account: str, address: str) -> None:
        await self.pool.execute(
            "DELETE FROM sign_in_failures WHERE failed_at < now() - $1::interval",
            THROTTLE_WINDOW,
        )
        rows = await self.pool.fetch(
            "SELECT subject, count(*) AS failures FROM sign_in_failures"
            " WHERE subject = ANY($1::text[]) GROUP BY subject",
            [account, address],
        )
        failures = {row["subject"]: row["failures"] for row in rows}
        if failures.get(account, 0) >= FAILURES_PER_ACCOUNT:
            raise SignInThrottled(
                "Too many failed sign-ins for this account. Wait a minute, then try again."
            )
        if failures.get(address, 0) >= FAILURES_PER_ADDRESS:
            raise SignInThrottled(
                "Too many failed sign-ins from your address. Wait a minute, then try again."
            )

    # Sessions ---------------------------------------------------------------------------

    async def start_session(self, user_id: UUID) -> str:
        """A new session's id, for the cookie; only its digest is kept."""
        session_id = secrets.token_urlsafe(32)
        await self.pool.execute(
            "INSERT INTO sessions (digest, user_id, expires_at) VALUES ($1, $2, now() + $3)",
            _digest(session_id),
            user_id,
            SESSION_LIFETIME,
        )
        return session_id

    async def session_user(self, session_id: str) -> User | None:
        row = await self.pool.fetchrow(
            "SELECT u.id, u.email, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.digest = $1 AND s.expires_at > now()",
            _digest(session_id),
        )
        return None if row is None else User(**dict(row))

    async def end_session(self, session_id: str) -> bytes:
        """End the session; its digest (what a cache of sessions is keyed by)."""
        digest = _digest(session_id)
        await self.pool.execute("DELETE FROM sessions WHERE digest = $1", digest)
        return digest

    async def put_flash(self, session_id: str, message: dict[str, str]) -> None:
        """Keep a message for the session's next page, the target of a redirect.

        It is sealed with a key that only the session cookie gives, so the table alone
        reveals nothing (the message may be a new API token, shown once).
        """
        sealed = _flash_cipher(session_id).encrypt(msgspec.json.encode(message))
        await self.pool.execute("DELETE FROM session_flashes WHERE expires_at < now()")
        await self.pool.execute(
            "INSERT INTO session_flashes (session_digest, sealed, expires_at)"
            " VALUES ($1, $2, now() + $3) ON CONFLICT (session_digest)"
            " DO UPDATE SET sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at",
            _digest(session_id),
            sealed,
            FLASH_LIFETIME,
        )

    async def pop_flash(self, session_id: str) -> dict[str, str]:
        """The session's message, once: taking it deletes it. Empty if there is none."""
        row = await self.pool.fetchrow(
            "DELETE FROM session_flashes WHERE session_digest = $1"
            " RETURNING sealed, expires_at > now() AS fresh",
            _digest(session_id),
        )
        if row is None or not row["fresh"]:
            return {}
        try:
            opened = _flash_cipher(session_id).decrypt(row["sealed"])
        except InvalidToken:
            return {}
        return msgspec.json.decode(opened, type=dict[str, str])

    # API tokens -------------------------------------------------------------------------

    async def create_token(self, user_id: UUID, name: str) -> tuple[ApiToken, str]:
        """A new token and its secret, which is returned this once and never again."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = await self.pool.fetchrow(
            "INSERT INTO api_tokens (id, user_id, name, digest, hint) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING id, name, hint, created_at, last_used_at",
            uuid4(),
            user_id,
            name,
            _digest(secret),
            secret[: len(TOKEN_PREFIX) + 4] + "…",
        )
        return ApiToken(**dict(row)), secret

    async def tokens(self, user_id: UUID) -> list[ApiToken]:
        rows = await self.pool.fetch(
            "SELECT id, name, hint, created_at, last_used_at FROM api_tokens"
            " WHERE user_id = $1 ORDER BY created_at",
            user_id,
        )
        return [ApiToken(**dict(row)) for row in rows]

    async def revoke_token(self, user_id: UUID, token_id: UUID) -> bytes | None:
        """Revoke the user's token; its digest, or None if they have no such token."""
        digest: bytes | None = await self.pool.fetchval(
            "DELETE FROM api_tokens WHERE user_id = $1 AND id = $2 RETURNING digest",
            user_id,
            token_id,
        )
        return digest

    async def token_user(self, secret: str) -> User | None:
        row = await self.pool.fetchrow(
            "UPDATE api_tokens t SET last_used_at = now() FROM users u"
            " WHERE t.digest = $1 AND u.id = t.user_id RETURNING u.id, u.email, u.created_at",
            _digest(secret),
        )
        return None if row is None else User(**dict(row))


@functools.cache
def _unknown_user_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
