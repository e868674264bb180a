"""One-way derivations: the clientUser hash, session IDs and anonymous identifiers."""

from __future__ import annotations

import hashlib
import hmac


def hash_client_user(identifier: str, salt: str = "") -> str:
    """TelemetryDeck's clientUser: lowercase hex SHA-256 of identifier + salt (no separator)."""
    return hashlib.sha256((identifier + salt).encode("utf-8", "surrogatepass")).hexdigest()


def derive_session_id(source: str, salt: str) -> str:
    """A session ID from a cookie value (or any secret-ish source), keyed with the salt.

    HMAC rather than a plain hash so that nobody without the salt can link a session ID back
    to the cookie that produced it, and so that it never equals the cookie value.
    """
    digest = hmac.new(
        ("td_web.session:" + salt).encode("utf-8", "surrogatepass"),
        source.encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    ).hexdigest()
    return digest[:32]


def anonymous_client_user(session_id: str | None, salt: str) -> str:
    """A stable stand-in user for signals without one: per session when there is a session."""
    return hash_client_user("td_web.anonymous:" + (session_id or ""), salt)
