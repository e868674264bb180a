from __future__ import annotations

import hashlib
import re

import pytest

from td_web import hash_client_user
from td_web._hashing import anonymous_client_user, derive_session_id

IDENTIFIER = "how do i get cowboy paint off a dog ."


@pytest.mark.parametrize(
    ("salt", "expected"),
    [
        ("", "5b8fab7cf45fcece0e99a05950611b7b355917e4fb6daa73fd3d7590764fa53b"),
        (
            "q8wMvgVW3LzGCRQiLSLk",
            "d46208db801b09cf055fedd7ae0390e9797fc00d1bcdcb3589ea075ca157e0d6",
        ),
        (
            "x21MTSq3MRSmLjVFsYIe",
            "acb027bb031c0f73de26c6b8d0441d9c98449d582a538014c44ca49b4c299aa8",
        ),
    ],
)
def test_client_user_matches_the_official_test_vectors(salt: str, expected: str) -> None:
    assert hash_client_user(IDENTIFIER, salt) == expected


def test_session_id_is_keyed_by_the_salt_and_never_the_cookie() -> None:
    cookie = "Zr3kq1WJm2s9dL0pQ8vX4a"
    derived = derive_session_id(cookie, "salt-a")
    assert derived == derive_session_id(cookie, "salt-a")
    assert derived != derive_session_id(cookie, "salt-b")
    assert cookie not in derived
    # Not a plain hash of the cookie either: without the salt it cannot be recomputed.
    assert derived not in hashlib.sha256(cookie.encode()).hexdigest()


def test_anonymous_user_is_a_hash_per_session() -> None:
    first = anonymous_client_user("session-1", "salt")
    assert first == anonymous_client_user("session-1", "salt")
    assert first != anonymous_client_user("session-2", "salt")
    assert re.fullmatch(r"[0-9a-f]{64}", first), first  # SHA-256 in lowercase hex
