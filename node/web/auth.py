"""Bearer-token authentication for ``/api`` and role checks.

The seam for an agency's own login (OIDC/SAML) is ``authenticate``: it maps a request to a
``User`` and nothing else in the API knows how.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..services.users import authenticate
from ..store.tables import User
from .keys import NODE_KEY
from .problems import problem

USER_KEY = web.RequestKey("user", User)

HandlerType = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def bearer_auth(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return problem(401, "Unauthorized", "send 'Authorization: Bearer <token>'")
    user = await authenticate(request.app[NODE_KEY].engine, token.strip())
    if user is None:
        return problem(401, "Unauthorized", "unknown or revoked token")
    request[USER_KEY] = user
    return await handler(request)


def require(*roles: str) -> Callable[[HandlerType], HandlerType]:
    """Allow a handler only for the given roles (403 with a problem document otherwise)."""

    def wrap(handler: HandlerType) -> HandlerType:
        async def checked(request: web.Request) -> web.StreamResponse:
            user = request[USER_KEY]
            if user.role not in roles:
                return problem(403, "Forbidden", f"this needs the role {' or '.join(roles)}")
            return await handler(request)

        checked.__name__ = handler.__name__
        checked.__doc__ = handler.__doc__
        return checked

    return wrap
