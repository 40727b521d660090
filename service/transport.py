"""HTTP below the routes: uvicorn's protocol with a header-read timeout, and HEAD answered for every GET route."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol, closing a connection whose request headers are not complete `seconds` after it
    opened or after its previous response. uvicorn has no such timeout of its own: a client that connects and sends
    nothing (or one header byte a minute) would otherwise hold its socket for ever. "auto" (no timeout) where
    httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        log.warning("httptools is not installed: connections that send no request are not timed out")
        return "auto"

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # The next request's headers are due now, unless a pipelined one has them complete already.
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


class HeadAsGetMiddleware:
    """HEAD on any GET route: the GET's status and headers, no body (load balancers check health with HEAD).

    FastAPI routes answer only the methods they declare, and declaring HEAD on each would double the OpenAPI
    document."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        scope["method"] = "GET"  # in place: the metrics middleware outside reads the route the router sets here
        try:
            await self.app(scope, receive, send_without_body)
        finally:
            scope["method"] = "HEAD"
