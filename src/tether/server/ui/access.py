"""Who is asking: the UI uses the API's tokens and roles (``server/auth.py``).

Pages are read with the token given once on the login page, kept by the browser in a
``SameSite=Strict``, ``HttpOnly`` cookie scoped to ``/ui`` (and by the tab in
``sessionStorage`` for actions). An action must carry the token in the ``Authorization``
header and the ``X-Tether-UI`` header: a cookie alone never authorises one, so another site
cannot forge it (CSRF). Without configured tokens every caller may read and act, as the API
(``tether serve`` then listens on loopback only), provided the request names a loopback host:
a page that rebinds its own domain to 127.0.0.1 (DNS rebinding) gets nothing."""
from __future__ import annotations

from fastapi import Request

from ..auth import role_of
from ..hosts import allowed_host, local_names

COOKIE = "tether_ui_token"
ACTION_HEADER = "x-tether-ui"


def tokens_of(request: Request) -> dict[str, str]:
    """The app's ``{token: role}`` (empty: no tokens configured)."""
    return getattr(request.app.state, "tokens", None) or {}


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def loopback_host(request: Request) -> bool:
    """True when the request's ``Host`` names this machine (the API's one rule,
    ``server/hosts.py``: a loopback name or the one given to ``--host``)."""
    names = getattr(request.app.state, "hosts", None) or local_names()
    return allowed_host(request.headers.get("host"), names)


def page_role(request: Request) -> str | None:
    """The role that may read pages: from the bearer header or the cookie; ``write`` without
    configured tokens when the host is a loopback name; None otherwise."""
    tokens = tokens_of(request)
    if not tokens:
        return "write" if loopback_host(request) else None
    given = bearer(request) or request.cookies.get(COOKIE)
    return role_of(tokens, given) if given else None


def action_role(request: Request) -> tuple[int, str] | None:
    """None when the request may act; else ``(status, message)``: 403 without the
    ``X-Tether-UI`` header or, without configured tokens, for a host name that is not a
    loopback one; 401 without a valid bearer token (a cookie does not count), 403 for a
    read token."""
    if request.headers.get(ACTION_HEADER) != "1":
        return 403, "actions are sent by the UI's script (X-Tether-UI header missing)"
    tokens = tokens_of(request)
    if not tokens:
        return None if loopback_host(request) else (403, "without API tokens only a loopback host name "
                                                         "(127.0.0.1, localhost) may act")
    given = bearer(request)
    found = role_of(tokens, given) if given else None
    if found is None:
        return 401, "a valid bearer token is required"
    if found != "write":
        return 403, "this action needs a write token"
    return None
