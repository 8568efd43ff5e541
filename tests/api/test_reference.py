"""The API reference (shared/api/routes/reference.py): `/api/openapi.json` and `/api/docs`,
Swagger UI from the pinned package's files under the dashboard's CSP. Its caller check is in
test_api_security.py; in a real browser: tests/browser/dashboard.spec.mjs, "API reference"."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.api.routes.dashboard import CONTENT_SECURITY_POLICY
from shared.api.routes.reference import REFERENCE_DIR, SWAGGER_UI_DIR
from tests.support.api import api_client

PAGE = "/api/docs"


@pytest.fixture
async def api(app_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


async def test_the_page_loads_only_its_own_files_under_the_dashboards_policy(api: httpx.AsyncClient) -> None:
    response = await api.get(PAGE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    assert not re.search(r"https?://|//[a-z]", html, re.IGNORECASE), "no other host"
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert [re.search(r'src="([^"]+)"', tag)[1] for tag in scripts] == [  # type: ignore[index]
        "docs/key.js",
        "docs/swagger-ui-bundle.js",
        "docs/reference.js",
    ], "every script a file of this app, none inline"
    assert "<script>" not in html and "<style" not in html and not re.search(r"\sstyle=|\son[a-z]+=", html)


async def test_swagger_uis_files_are_the_pinned_packages_and_match_their_integrity_hashes(
    api: httpx.AsyncClient,
) -> None:
    html = (REFERENCE_DIR / "index.html").read_text()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = await api.get(f"{PAGE}/{name}")
        assert served.status_code == 200
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.content == (SWAGGER_UI_DIR / name).read_bytes()
        declared = re.search(rf'"docs/{re.escape(name)}" integrity="([^"]+)"', html)
        assert declared and declared[1] == _sri(served.content), f"{name}: the SRI hash in index.html"
    assert SWAGGER_UI_DIR.name == "swagger-ui-5.31.0"  # requirements.txt pins swagger-ui-bundle-v2==5.31.0
    bundle = await api.get(f"{PAGE}/swagger-ui-bundle.js")
    revalidated = await api.get(f"{PAGE}/swagger-ui-bundle.js", headers={"If-None-Match": bundle.headers["etag"]})
    assert revalidated.status_code == 304  # 1.5 MB sent once per browser, then 304s


@pytest.mark.parametrize("name", ["index.html", "swagger-initializer.js", "..%2Fapp.py", "oauth2-redirect.html"])
async def test_only_the_listed_files_are_served(api: httpx.AsyncClient, name: str) -> None:
    response = await api.get(f"{PAGE}/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_page_takes_the_key_as_the_dashboard_does_and_never_shows_it() -> None:
    script = (REFERENCE_DIR / "reference.js").read_text()
    assert "FunctionKey.value" in script and "'x-functions-key'" in script
    assert "showMutatedRequest: false" in script  # the curl line shows no interceptor-added key
    assert "validatorUrl: null" in script  # no validator badge from another host
    assert "innerHTML" not in script and "console." not in script


async def test_fastapis_cdn_pages_are_gone(api: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/api/redoc", "/api/docs/oauth2-redirect", "/openapi.json"):
        assert (await api.get(path)).status_code == 404, path
