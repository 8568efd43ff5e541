"""The dashboard: one page, served by the app itself, that reads only the public API.

`GET /api/v1/dashboard` is the page; `GET /api/v1/dashboard/{key.js,app.js,app.css}` its
assets, all from the package folder `shared/api/dashboard/` (hand-written, no build step, nothing
from a CDN). The page holds no tenant data: it fetches `/api/v1/...` with relative URLs, sending
the function key as `x-functions-key`: key.js takes it once from the page's `?code=` into
sessionStorage and out of the address bar (App Service Authentication works through
same-origin cookies). So the page itself needs no caller check of its own beyond the
Functions host's key; every API call it makes is checked as any portal's is.

shared/api/app.py includes `router`; docs/dashboard.md is the reader's guide.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
DASHBOARD_PATH = "/api/v1/dashboard"

# Everything the page needs comes from this origin; nothing may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The page URL may carry the function key (?code=): no Referer ever leaves with it.
ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time: the ETag (shared.api.http) makes that a 304 when nothing changed.
    "Cache-Control": "no-cache",
}
# A page's own (the API reference's too, shared.api.routes.reference).
PAGE_HEADERS = {**ASSET_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY"}
_ASSETS = {
    "key.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}

router = APIRouter(prefix=DASHBOARD_PATH, include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    return (DASHBOARD_DIR / name).read_bytes()


@router.api_route("", methods=["GET", "HEAD"])
async def dashboard_page() -> Response:
    """The page (see docs/dashboard.md)."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/")
async def dashboard_slash(request: Request) -> Response:
    """`/api/v1/dashboard/` -> the page, whose relative URLs are written for `/api/v1/dashboard`.
    The query goes along, `?code=` included: the page must see the key once to keep it, and the
    redirect is to this same origin (the key is already in the URL the browser asked for)."""
    query = request.url.query
    return Response(
        status_code=308,
        headers={"Location": "../dashboard" + (f"?{query}" if query else ""), "Cache-Control": "no-store"},
    )


@router.api_route("/{name}", methods=["GET", "HEAD"])
async def dashboard_asset(name: str) -> Response:
    """One of the page's assets: only the files listed, never a path."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"The dashboard has no file {name[:100]!r}")
    return Response(_read(name), media_type=media_type, headers=ASSET_HEADERS)
