"""An account's request and answer bodies in the REST API: sign-up, users, API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.api.accounts.passwords import COMMON_PASSWORDS_REFUSED, MIN_PASSWORD_LENGTH

TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class SignUp(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    # No length bounds here: the rules are the accounts' own (services.api.accounts.passwords),
    # so a refused password is a 422 in the same words as on the sign-up form, not a schema error.
    password: Annotated[
        str,
        msgspec.Meta(
            description=f"At least {MIN_PASSWORD_LENGTH} characters, not only spaces, and not"
            f" one of the {COMMON_PASSWORDS_REFUSED:,} most common passwords."
        ),
    ]


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    created_at: datetime


class TokenCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: TokenName


class TokenOut(msgspec.Struct, frozen=True, kw_only=True):
    """An API token as listed: its name and how it starts, never the token itself."""

    id: UUID
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A new API token. ``token`` is shown this once: keep it, it cannot be read again."""

    id: UUID
    name: str
    hint: str
    created_at: datetime
    token: str
