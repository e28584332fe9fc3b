"""Bearer tokens with ``read`` and ``write`` roles, from ``TETHER_API_TOKENS``
(``ROLE:TOKEN,ROLE:TOKEN``) or the same pairs, one per line, in ``TETHER_API_TOKENS_FILE``.
Tokens are compared in constant time, every configured token each time."""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from ..errors import UsageError

ROLES = ("read", "write")


def load_tokens(env: dict[str, str] | None = None) -> dict[str, str]:
    """``{token: role}``; UsageError for a malformed pair or an unreadable file."""
    env = dict(os.environ) if env is None else env
    pairs: list[str] = [p for p in env.get("TETHER_API_TOKENS", "").split(",") if p.strip()]
    path = env.get("TETHER_API_TOKENS_FILE")
    if path:
        try:
            pairs += [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
        except OSError as exc:
            raise UsageError(f"TETHER_API_TOKENS_FILE {path}: cannot read it: {exc}") from None
    tokens: dict[str, str] = {}
    for pair in pairs:
        role, sep, token = pair.strip().partition(":")
        if not sep or role not in ROLES or len(token) < 8:
            raise UsageError("API tokens are ROLE:TOKEN pairs, ROLE read or write, TOKEN at least 8 characters")
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
