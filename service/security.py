"""What keeps a browser page or a stranger from misusing the service: response headers, the optional API key, and
answers that never name a server path."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.datastructures import MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photo2cad.service.errors import ApiKeyRequired

# The page and the API load nothing from elsewhere: scripts, styles, images and fetches come from this origin only.
STRICT_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# /docs and /redoc (FastAPI's pages, scripts served locally): they start with an inline script and style their
# elements inline, and ReDoc searches in a worker it builds from a blob.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Every answer: no MIME sniffing, no framing by other sites, no referrer leaks, a content security policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = DOCS_POLICY if path in DOCS_PATHS else STRICT_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Content-Security-Policy"] = policy
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Probes of load balancers and orchestrators address the service by an IP the operator may not know in advance;
# these two answers hold nothing a rebinding page could want.
HEALTH_PATHS = ("/healthz", "/readyz")


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's Host check (400 for a Host not allowed), except for the health probes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="PHOTO2CAD_API_KEY, when the service is configured with one (off by default)",
)


def require_api_key(request: Request, given: Annotated[str | None, Depends(api_key_header)]) -> None:
    """Refuse a request without the configured API key; nothing to check when none is configured."""
    expected = request.app.state.api_key
    if expected is None:
        return
    # Constant-time comparison: the answer's timing must not reveal how much of a guess was right.
    if given is None or not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise ApiKeyRequired("this service needs its API key in the X-API-Key header")


def redact_paths(text: str, places: Iterable[tuple[Path, str]]) -> str:
    """`text` with each known directory (as given and resolved) replaced by its name for the caller, e.g. <pool>."""
    for path, name in places:
        for form in sorted({str(path), str(path.resolve())}, key=len, reverse=True):
            if form not in ("", "/", "."):
                text = text.replace(form, name)
    return text
