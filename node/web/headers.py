"""Headers every response of the node carries: pages, API, problem documents, the federation
endpoint, the public endpoints and static files alike.

Set once, in the app's ``on_response_prepare`` signal, which runs for every response the app
prepares, whichever middleware or handler made it (the federation endpoint skips the other
middlewares; an unmatched route never reaches them). What each header is for:

* ``X-Content-Type-Options: nosniff``: a browser must take a body as the type it is served
  with; a JSON answer that echoes input is never run as HTML or script.
* ``Cache-Control: no-store`` (unless the handler chose a policy): API answers hold names and
  personnummer, federation replies plan content; no browser or proxy may keep a copy. Only
  ``/static/`` (stylesheets, the one script) may be cached.
* no ``Server`` header: which aiohttp version serves the node is nobody else's business.
"""

from __future__ import annotations

from aiohttp import hdrs, web

CACHEABLE_PREFIX = "/static/"


async def common_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers[hdrs.X_CONTENT_TYPE_OPTIONS] = "nosniff"
    if not request.path.startswith(CACHEABLE_PREFIX):
        headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    headers.popall(hdrs.SERVER, None)
