"""The API's own reference: `GET /api/openapi.json` (the document, `shared.api.openapi`) and
`GET /api/docs`, Swagger UI over it.

Nothing comes from another host. Swagger UI's files are those of the pinned
`swagger-ui-bundle-v2` package (requirements.txt; the same bytes as the npm `swagger-ui-dist` of
that version), and the page names them with Subresource Integrity hashes, so a changed file is
refused by the browser. The page (`shared/api/reference/`) has the dashboard's Content Security
Policy: no inline code, scripts and styles from this origin only. It takes the function key
as the dashboard does (`dashboard/key.js`).

shared/api/app.py includes `router` behind the caller check of /api/v1: the document describes
this deployment's API, so it is for the API's callers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from swagger_ui_bundle import swagger_ui_path

from shared.api.openapi import build_openapi
from shared.api.routes.dashboard import ASSET_HEADERS, DASHBOARD_DIR, PAGE_HEADERS

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
DOCS_PATH = "/api/docs"
OPENAPI_PATH = "/api/openapi.json"

_JS = "text/javascript; charset=utf-8"
_ASSETS = {
    "swagger-ui-bundle.js": (SWAGGER_UI_DIR, _JS),
    "swagger-ui.css": (SWAGGER_UI_DIR, "text/css; charset=utf-8"),
    "key.js": (DASHBOARD_DIR, _JS),
    "reference.js": (REFERENCE_DIR, _JS),
}

router = APIRouter(include_in_schema=False)


@cache
def _read(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


@router.get(OPENAPI_PATH)
async def openapi_document(request: Request) -> Response:
    """The OpenAPI document (docs/api.md)."""
    return JSONResponse(build_openapi(request.app))


@router.api_route(DOCS_PATH, methods=["GET", "HEAD"])
async def reference_page() -> Response:
    """Swagger UI over the document."""
    return Response(_read(REFERENCE_DIR, "index.html"), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.api_route(DOCS_PATH + "/{name}", methods=["GET", "HEAD"])
async def reference_asset(name: str) -> Response:
    """One of the page's files: only those listed, never a path."""
    if name not in _ASSETS:
        raise HTTPException(404, f"The API reference has no file {name[:100]!r}")
    folder, media_type = _ASSETS[name]
    return Response(_read(folder, name), media_type=media_type, headers=ASSET_HEADERS)
