"""The request body limits, enforced while the body arrives: a 20 GB upload is cut off after 20 MB, not stored, and
a body that stops arriving is answered 408 instead of holding its request open."""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(limit: int) -> str:
    return (
        f"the request body is larger than the limit of {limit:,} bytes ({limit / 2**20:g} MB, "
        "PHOTO2CAD_MAX_UPLOAD_BYTES); send a smaller photo"
    )


class UploadTooLarge(HTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it parses a form into a 400.
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(limit))


class BodyTooSlow(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            status_code=408,
            detail=f"the request body stopped arriving: nothing for {timeout_s:g} s (PHOTO2CAD_BODY_TIMEOUT_SECONDS)",
        )


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, idle_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        # Refused from the header alone, not one byte of the body read; but inside the route that would read it, so
        # that the answer is the route's (its metrics label, its documented 413).
        declared_too_large = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        received = 0
        complete = False

        async def receive_within_limit() -> Message:
            nonlocal received, complete
            if declared_too_large:
                raise UploadTooLarge(self.max_bytes)
            if complete:  # after the body: waiting for a disconnect may rightly take as long as the answer
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_timeout_s)
            except asyncio.TimeoutError:
                raise BodyTooSlow(self.idle_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
