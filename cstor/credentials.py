"""Secret keys encrypted at rest: the credential store's cipher."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class CredentialError(Exception):
    """A secret could not be decrypted: the application key is wrong or missing."""


class SecretCipher:
    """Encrypts and decrypts connection secrets with the application key (Fernet)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise CredentialError("no application key: set CSTOR_SECRET_KEY")
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as error:
            raise CredentialError(
                "CSTOR_SECRET_KEY is not a valid key (32 url-safe base64-encoded bytes)"
            ) from error

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as error:
            raise CredentialError("a stored secret does not match the application key") from error

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
