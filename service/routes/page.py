"""GET /: the demo page (service/static: index.html, page.css, page.js; nothing fetched from elsewhere)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

# Next to the package's modules (pyproject ships service/static/* as package data), found without importlib.resources:
# an editable install made before service/ had an __init__.py maps it as a namespace package, which resources refuses.
STATIC = Path(__file__).resolve().parents[1] / "static"


def page_router() -> APIRouter:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    router = APIRouter(tags=["page"])

    @router.get("/", response_class=HTMLResponse, summary="Drop a photo, see the ranked shapes")
    async def page() -> HTMLResponse:
        return HTMLResponse(html)

    return router
