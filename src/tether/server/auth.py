"""Bearer tokens with ``read`` and ``write`` roles, from ``TETHER_API_TOKENS``
(``ROLE:TOKEN,ROLE:TOKEN``) or the same pairs, one per line, in ``TETHER_API_TOKENS_FILE``.
Tokens are compared in constant time, every configured token each time."""
from __future__ import annotations

import hmac
from pathlib import Path

from ..errors import UsageError
from ..settings import Settings

ROLES = ("read", "write")


def load_tokens(settings: Settings) -> dict[str, str]:
    """``{token: role}`` of ``settings.api_tokens`` and ``settings.api_tokens_file``;
    UsageError for a malformed pair or an unreadable file."""
    pairs: list[str] = [p for p in settings.api_tokens.split(",") if p.strip()]
    path = settings.api_tokens_file
    if path:
        try:
            pairs += [line for line in Path(path).read_text().splitlines()
                      if line.strip() and not line.startswith("#")]
        except OSError as exc:
            raise UsageError(f"TETHER_API_TOKENS_FILE {path}: cannot read it: {exc}") from None
    tokens: dict[str, str] = {}
    for pair in pairs:
        role, sep, token = pair.strip().partition(":")
        if not sep or role not in ROLES or len(token) < 8:
            raise UsageError("API tokens are ROLE:TOKEN pairs, ROLE read or write, "
                             "TOKEN at least 8 characters")
        tokens[token] = role
    return tokens


def role_of(tokens: dict[str, str], presented: str | None) -> str | None:
    """The role of the presented token, or None; compares with every token, in constant time."""
    found = None
    given = (presented or "").encode()
    for token, role in tokens.items():
        if hmac.compare_digest(token.encode(), given):
            found = role
    return found
