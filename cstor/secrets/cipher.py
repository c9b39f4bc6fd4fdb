"""Secret keys encrypted at rest: the credential store's cipher."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialError(Exception):
    """A secret could not be decrypted: the application key is wrong or missing."""


class SecretCipher:
    """Encrypts and decrypts connection secrets with the application key (Fernet).

    To rotate the key, give ``CSTOR_SECRET_KEY`` as ``new,old``: secrets are encrypted
    with the first key and read with any; ``cstor rotate-key`` then re-encrypts every
    stored secret with the first, after which the old key can be dropped.
    """

    def __init__(self, key: str) -> None:
        keys = [part.strip() for part in key.split(",") if part.strip()]
        if not keys:
            raise CredentialError("no application key: set CSTOR_SECRET_KEY")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as error:
            raise CredentialError(
                "CSTOR_SECRET_KEY is not a valid key (32 url-safe base64-encoded bytes,"
                " or several separated by commas, the newest first)"
            ) from error

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as error:
            raise CredentialError("a stored secret does not match the application key") from error

    def rotate(self, token: bytes) -> bytes:
        """The same secret, encrypted with the first key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as error:
            raise CredentialError("a stored secret does not match any application key") from error

    def __repr__(self) -> str:
        return "SecretCipher(<hidden>)"


def load_or_create_key(data_dir: Path) -> str:
    """The embedded default's application key, generated once into the data dir (mode 0600)."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key
