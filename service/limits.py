"""The request body limit, enforced while the body arrives: a 20 GB upload is cut off after 20 MB, not stored."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
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


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Refused from the header alone: not one byte of the body is read.
            response = JSONResponse({"detail": too_large_message(self.max_bytes)}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
