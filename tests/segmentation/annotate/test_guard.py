"""The request guard on its own, with requests a test client cannot send (no ``Host`` header at all)."""

from __future__ import annotations

import asyncio
import json

from segmentation.annotate.guard import RequestGuard

HOSTS = ["127.0.0.1", "localhost"]


def run(guard: RequestGuard, headers: list[tuple[bytes, bytes]]) -> list[dict]:
    """The messages ``guard`` sends back for an HTTP/1.0 request with ``headers`` and no body."""
    scope = {"type": "http", "http_version": "1.0", "method": "GET", "path": "/api/session",
             "query_string": b"", "headers": headers}  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


def answer(sent: list[dict]) -> tuple[int, dict]:
    return sent[0]["status"], json.loads(b"".join(message.get("body", b"") for message in sent[1:]))


def test_a_request_without_a_host_header_is_refused_saying_so():
    reached = []

    async def app(scope, receive, send) -> None:
        reached.append(scope["path"])

    guard = RequestGuard(app, allowed_hosts=HOSTS)
    # it said 'Host header "none" refused', as if "none" had been sent
    assert answer(run(guard, [])) == (
        400,
        {"detail": "no Host header refused: send one of 127.0.0.1, localhost"},
    )
    sent = run(guard, [(b"host", b"none")])
    assert answer(sent) == (400, {"detail": 'Host header "none" refused: send one of 127.0.0.1, localhost'})
    assert reached == []
    assert run(RequestGuard(app), []) == [] and reached == ["/api/session"]  # no hosts named: any, or none
