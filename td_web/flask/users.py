"""Who the request's user is, asked while Flask's request context is still alive.

Order: the ``client_user`` option (called with the Flask request), then the function given to
``@td.user_loader``, then Flask-Login. Flask-Login is read without ever calling its own user
loader: a user the view already loaded (``current_user``) is used as it is; otherwise the id
Flask-Login keeps in the session at login. Analytics never costs the app a database query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, session

#: ``@td.user_loader``: returns the signed-in user's identifier, or None for anonymous.
UserLoader = Callable[[], object]
#: The ``client_user`` option: the same, given the Flask request.
ClientUser = Callable[[Any], object]

# Where Flask-Login (0.5 and 0.6) keeps a loaded user and the logged-in user's id.
_FLASK_LOGIN_USER = "_login_user"
_FLASK_LOGIN_SESSION_ID = "_user_id"


def flask_login_user_id(uses_flask_login: bool) -> object:
    """The authenticated Flask-Login user's ``get_id()``, or None.

    ``uses_flask_login`` says whether the app has a ``LoginManager``; without one, a
    ``_user_id`` session key belongs to something else and is not read.
    """
    if not uses_flask_login:
        return None
    user = g.get(_FLASK_LOGIN_USER)
    if user is not None:
        if not getattr(user, "is_authenticated", False):
            return None
        get_id = getattr(user, "get_id", None)
        return get_id() if get_id is not None else None
    # Not loaded by the view: the id login_user() stored (user.get_id() at login time).
    return session.get(_FLASK_LOGIN_SESSION_ID)


def resolve_user(
    client_user: ClientUser | None,
    loader: UserLoader | None,
    uses_flask_login: bool,
    native_request: Any,
) -> object:
    if client_user is not None:
        return client_user(native_request)
    if loader is not None:
        return loader()
    return flask_login_user_id(uses_flask_login)
