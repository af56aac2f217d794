"""The two ends of a sign-in at an OpenID provider that the staff's and the family's pages share:
sending the browser there, and reading back what was kept for its return.

State, nonce and PKCE verifier stay in the browser's encrypted session (``aiohttp-session``)
under a key of each flow's own, so a staff sign-in and a family sign-in started in one browser
never answer each other's callback."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from ...oidc.client import PendingSignIn
from .provider_link import ProviderLink


async def provider_login_url(
    request: web.Request, link: ProviderLink, next_path: str, session_key: str
) -> str:
    """The provider's authorization URL; what its callback needs is kept under
    ``session_key``. Raises ``OidcError`` when the provider cannot be asked."""
    url, pending = await link.client().begin(link.redirect_uri, next_path)
    session = await get_session(request)
    session[session_key] = [
        pending.state,
        pending.nonce,
        pending.code_verifier,
        pending.started_at,
        pending.next,
    ]
    return url


async def returned_sign_in(request: web.Request, session_key: str) -> PendingSignIn | None:
    """What ``provider_login_url`` kept for this browser, taken out (used once), if any."""
    session = await get_session(request)
    kept = session.pop(session_key, None)
    return PendingSignIn(*kept) if isinstance(kept, list) and len(kept) == 5 else None
