"""Requests refused before any route reads them, in the JSON ``{"detail": "one line"}`` of every other error.

:class:`RequestGuard`, the app's outermost middleware, answers:

- 400 to a ``Host`` header not among ``allowed_hosts`` (against DNS rebinding while bound to loopback).
  Starlette's :class:`~starlette.middleware.trustedhost.TrustedHostMiddleware` decides, exactly as
  strictly as when it answered itself, in plain text.
- 422 to a query parameter given more than once (``?image=a.png&image=b.png``): FastAPI took the last.
- 413 to a body over :data:`MAX_BODY_BYTES`, refused as soon as its ``Content-Length`` or the bytes
  received say so: the server read any body whole into memory before its route refused it.
- 422 to a JSON body with a key given twice in one object (``{"image": "a.png", "image": "b.png"}``):
  Python's ``json`` keeps the last.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, QueryParams
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentation.annotate.bad_requests import is_json, quoted

#: The largest request body read. The page sends small JSON only (``static/app.js``, ``api()``): the
#: largest, a click (``POST /api/predict``), holds at most 64 points, a box and a photo's key of at most
#: 1024 characters (6 bytes each as JSON's ``\uXXXX``): under 16 KiB. Masks never travel to the server
#: (an accept names the click's prediction), so 1 MiB is far above any request of the page.
MAX_BODY_BYTES = 1 << 20
#: Set on a copy of the scope by the app behind the host check: it let the request through.
_HOST_ALLOWED = "annotate.host_allowed"


class RequestGuard:
    """ASGI middleware refusing the requests of the module docstring; others reach ``app`` unchanged
    (their body read whole first, then handed on as it came).

    Args:
        app: the FastAPI app.
        allowed_hosts: ``Host`` headers accepted; None accepts any.
        max_body: the largest body read, in bytes.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Sequence[str] | None = None, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body
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
        try:
            await self._check_host(scope)
            _check_query(scope)
            body = await self._read_body(scope, receive)
            if body is None:
                return  # the client went away: no one to answer
            _check_keys(scope, body)
        except _Refused as refused:
            await JSONResponse({"detail": refused.detail}, status_code=refused.status)(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)

    async def _check_host(self, scope: Scope) -> None:
        """Refuses a ``Host`` header Starlette's host check keeps out (its plain-text answer dropped)."""
        if self._hosts is None:
            return
        probe = dict(scope)
        await self._hosts(probe, _nothing_received, _dropped)
        if not probe.get(_HOST_ALLOWED, False):
            host = Headers(scope=scope).get("host")
            given = "no Host header" if host is None else f'Host header "{quoted(host)}"'
            raise _Refused(400, f"{given} refused: send one of {', '.join(self.allowed_hosts or ())}")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, refused once over :attr:`max_body`; None where the client disconnected."""
        too_large = _Refused(413, f"request body over {self.max_body} bytes, the most this server reads")
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                raise too_large
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _check_query(scope: Scope) -> None:
    """Refuses a query parameter given more than once (read as FastAPI reads them), naming the first."""
    names = [name for name, _ in QueryParams(scope["query_string"]).multi_items()]
    counts = collections.Counter(names)
    repeated = next((name for name in names if counts[name] > 1), None)
    if repeated is not None:
        where = f"query.{quoted(repeated)}"
        raise _Refused(422, f"malformed request: {where}: given {counts[repeated]} times: send it once")


def _check_keys(scope: Scope, body: bytes) -> None:
    """Refuses a JSON body holding a key twice in one object, naming the first such key.

    A body FastAPI does not read as JSON (its Content-Type), or that is no JSON Python reads, passes:
    the app's error handlers say what is wrong with it.
    """
    if not body or not is_json(Headers(scope=scope).get("content-type")):
        return
    try:
        json.loads(body, object_pairs_hook=_unique_keys)
    except _RepeatedKey as repeated:
        raise _Refused(422, f'malformed request: body: key "{quoted(repeated.key)}" given twice') from None
    except (ValueError, RecursionError):
        return


class _RepeatedKey(Exception):  # not a ValueError: those are the body's other faults
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object as ``json.loads`` makes it, refusing a key given twice (it kept the last)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)
    return dict(pairs)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app: the body read, as one message, then what the client sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _let_through(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_HOST_ALLOWED] = True


async def _nothing_received() -> Message:
    return {"type": "http.disconnect"}


async def _dropped(message: Message) -> None:
    pass
