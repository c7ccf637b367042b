"""Requests refused before any route reads them, in the JSON ``{"detail": "one line"}`` of every other error.

:class:`RequestGuard`, the app's outermost middleware, answers:

- 400 to a ``Host`` header not among ``allowed_hosts`` (against DNS rebinding while bound to loopback).
  Starlette's :class:`~starlette.middleware.trustedhost.TrustedHostMiddleware` decides, exactly as
  strictly as when it answered itself, in plain text.
- 422 to a query parameter given more than once (``?image=a.png&image=b.png``): FastAPI took the last.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, QueryParams
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentation.annotate.bad_requests import quoted

#: Set on a copy of the scope by the app behind the host check: it let the request through.
_HOST_ALLOWED = "annotate.host_allowed"


class RequestGuard:
    """ASGI middleware refusing the requests of the module docstring; others reach ``app`` unchanged.

    Args:
        app: the FastAPI app.
        allowed_hosts: ``Host`` headers accepted; None accepts any.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self._hosts = None
        self._websockets = app
        if allowed_hosts is not None:
            # only asked: it calls _let_through where it would have let the request in
            self._hosts = TrustedHostMiddleware(_let_through, allowed_hosts=allowed_hosts, www_redirect=False)
            self._websockets = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan; a websocket (the app has none) is Starlette's to refuse
            await self._websockets(scope, receive, send)
            return
        if not await self._host_allowed(scope):
            host = quoted(Headers(scope=scope).get("host", "none"))
            hosts = ", ".join(self.allowed_hosts or ())
            await _refuse(scope, receive, send, 400, f'Host header "{host}" refused: send one of {hosts}')
            return
        twice = _repeated_parameter(scope)
        if twice is not None:
            await _refuse(scope, receive, send, 422, f"malformed request: query.{twice}: send it once")
            return
        await self.app(scope, receive, send)

    async def _host_allowed(self, scope: Scope) -> bool:
        """Whether Starlette's host check lets the request in (its plain-text refusal is dropped)."""
        if self._hosts is None:
            return True
        probe = dict(scope)
        await self._hosts(probe, _nothing_received, _dropped)
        return probe.get(_HOST_ALLOWED, False)


def _repeated_parameter(scope: Scope) -> str | None:
    """``name: given N times`` of the first query parameter the request gives more than once (read as
    FastAPI reads them); None: none is."""
    names = [name for name, _ in QueryParams(scope["query_string"]).multi_items()]
    counts = collections.Counter(names)
    repeated = next((name for name in names if counts[name] > 1), None)
    return None if repeated is None else f"{quoted(repeated)}: given {counts[repeated]} times"


async def _let_through(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_HOST_ALLOWED] = True


async def _nothing_received() -> Message:
    return {"type": "http.disconnect"}


async def _dropped(message: Message) -> None:
    pass


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
