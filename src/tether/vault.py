"""Encryption of secret variables (Fernet, from ``cryptography``).

The key comes from ``TETHER_SECRET_KEY`` (a Fernet key), else from a key file
beside the SQLite database (created with mode 0600 on first use), else — for
stores that keep nothing on disk — from a key made for this process.
"""
from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

import orjson

from .errors import CorruptRecord, UsageError

MIN_MASK_LENGTH = 4


def new_key() -> bytes:
    """A new Fernet key (as ``Fernet.generate_key()``: 32 random bytes, url-safe base64)."""
    return base64.urlsafe_b64encode(os.urandom(32))


_process_key = new_key()


class Vault:
    """Encrypts JSON values to opaque text tokens and back. The key is checked here;
    ``cryptography`` is imported on the first encryption or decryption (a run without
    secrets never needs it)."""

    def __init__(self, key: bytes) -> None:
        try:  # what Fernet(key) checks: 32 bytes, url-safe base64
            valid = len(base64.urlsafe_b64decode(key)) == 32
        except (binascii.Error, ValueError, TypeError):
            valid = False
        if not valid:
            raise UsageError("TETHER_SECRET_KEY is not a valid Fernet key "
                             "(32 url-safe base64-encoded bytes)")
        self._key = key
        self._cipher: Any = None

    def _fernet(self) -> Any:
        if self._cipher is None:
            from cryptography.fernet import Fernet
            self._cipher = Fernet(self._key)
        return self._cipher

    def encrypt(self, value: Any, field: str = "value") -> str:
        """The token of ``value``; UnstorableValue naming ``field`` if a store could not
        hold the value itself (see ``codec.checked``)."""
        from .store import codec
        return str(self._fernet().encrypt(codec.checked(value, field)).decode("ascii"))

    def decrypt(self, token: Any, what: str = "secret variable") -> Any:
        if not isinstance(token, str):
            raise CorruptRecord(f"{what}: stored secret is not an encrypted token")
        from cryptography.fernet import InvalidToken
        try:
            return orjson.loads(self._fernet().decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError):
            raise CorruptRecord(f"{what}: cannot decrypt (wrong TETHER_SECRET_KEY or key file?)") from None


def _key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
        finally:
            os.close(fd)
        return key
    except FileExistsError:  # another process created it between our two calls
        return path.read_bytes().strip()


def vault_for(database_path: str | None, secret_key: str | None = None) -> Vault:
    """The vault for a store whose database lives at ``database_path`` (None: not on disk):
    keyed by ``secret_key`` (``Settings.secret_key``, TETHER_SECRET_KEY) when given, else by
    the key file next to the database, else by a key of this process."""
    if secret_key:
        return Vault(secret_key.encode())
    if database_path and database_path != ":memory:":
        try:
            return Vault(_key_file(Path(database_path + ".key")))
        except FileExistsError:
            return Vault(_key_file(Path(database_path + ".key")))
    return Vault(_process_key)


def mask_text(value: Any) -> str | None:
    """The text to mask in output for a secret value, or None when it is too short to mask
    without hiding unrelated text."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) >= MIN_MASK_LENGTH else None
