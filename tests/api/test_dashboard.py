"""The dashboard (docs/dashboard.md): the page and its assets as the app serves them, and the
page in a real browser, Debian's Chromium driven by playwright-core
(tests/browser/dashboard.spec.mjs), against `python -m shared serve` over emulator data.

The browser test fails (never skips) when Chromium or playwright-core is missing:
scripts/setup.sh installs both.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devtools.azurite import AzuriteServer, free_port, wait_for_port
from devtools.graph_emulator import EmulatorServer, demo_tenant, generated_tenant
from shared.api.app import create_app
from shared.api.routes.dashboard import CONTENT_SECURITY_POLICY, DASHBOARD_DIR, DASHBOARD_PATH
from shared.poll import run_poll
from tests.support.env import CLEARED, app_settings, apply_settings
from tests.support.paths import ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
PLAYWRIGHT = ROOT / "node_modules" / "playwright-core" / "package.json"
SPEC = ROOT / "tests" / "browser" / "dashboard.spec.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
HOURS_OF_HISTORY = 12
# The page over several tenants: the home tenant (no name: shown by its id), Fabrikam, and
# Northwind, whose consent was revoked (Graph refuses every read).
FABRIKAM = "11111111-2222-3333-4444-555555555555"
NORTHWIND = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
REVOKED = {"rules": [{"path": ".*", "status": 403}]}


def _app() -> FastAPI:
    return create_app()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://testserver") as http:
        yield http


# ------------------------------------------------------------ the page and its files, in process


async def test_the_page_is_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get(DASHBOARD_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert response.text == (DASHBOARD_DIR / "index.html").read_text()
    revalidated = await client.get(DASHBOARD_PATH, headers={"If-None-Match": response.headers["etag"]})
    assert revalidated.status_code == 304


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("key.js", "text/javascript; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
    ],
)
async def test_the_assets_are_served_from_the_package(client: httpx.AsyncClient, name: str, media_type: str) -> None:
    response = await client.get(f"{DASHBOARD_PATH}/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (DASHBOARD_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path", ["index.html.bak", "..%2Fapi.py", "%2e%2e%2fdashboard_route.py", "app.js%00", "APP.JS", "dashboard.md"]
)
async def test_only_the_listed_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"{DASHBOARD_PATH}/{path}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_trailing_slash_redirects_to_the_page_keeping_the_query(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{DASHBOARD_PATH}/", params={"code": "k"})
    assert response.status_code == 308
    assert response.headers["location"] == "../dashboard?code=k"  # relative: right behind any host


async def test_the_page_needs_no_caller_check_but_its_data_does(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With App Service Authentication on, the page (which holds no tenant data) loads and can
    say "sign in"; the API it reads still answers 401 without a signed-in caller."""
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://testserver") as http:
        assert (await http.get(DASHBOARD_PATH)).status_code == 200
        assert (await http.get("/api/v1/jobs")).status_code == 401


def test_the_page_uses_no_inline_code_no_markup_from_data_and_no_other_host() -> None:
    html = (DASHBOARD_DIR / "index.html").read_text()
    script = (DASHBOARD_DIR / "app.js").read_text()
    key_script = (DASHBOARD_DIR / "key.js").read_text()
    css = (DASHBOARD_DIR / "app.css").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script src="dashboard/key.js" defer>',
        '<script src="dashboard/app.js" defer>',
    ]
    assert "<style" not in html and not re.search(r"\sstyle=|\son[a-z]+=", html)
    for text in (html, script, key_script, css):
        # The one other host: the script links out to an object in the Entra admin center (a new
        # tab; nothing is loaded from there, and the CSP's default-src 'self' would refuse it).
        allowed = r"www\.w3\.org/2000/svg" + (r"|entra\.microsoft\.com/#view/" if text is script else "")
        assert not re.search(rf"https?://(?!{allowed})", text), "no absolute URL: relative only"
        assert "@import" not in text and "url(" not in text.replace("data:", "")
    # API text reaches the page only as text: no HTML parsing of strings at all.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script + key_script, sink
    assert "console." not in script + key_script  # nothing logged: the function key can never end up there


def test_the_key_is_read_once_kept_for_the_tab_and_sent_only_as_a_header() -> None:
    """Static half of the browser test's checks: key.js moves `?code=` into sessionStorage and out
    of the address bar; app.js reads the key from there only and sends it as x-functions-key."""
    key_script = (DASHBOARD_DIR / "key.js").read_text()
    script = (DASHBOARD_DIR / "app.js").read_text()
    assert "sessionStorage.setItem" in key_script and "history.replaceState" in key_script
    assert "name.toLowerCase() === 'code'" in key_script  # ?Code= too, as the Functions host reads it
    assert "'code'" not in script and "location.search" not in script, "app.js never reads the key from the URL"
    assert script.count("FunctionKey.value") == 1 and "headers['x-functions-key'] = KEY" in script
    # The sign-in redirect and followed nextLinks go through withoutKey: no key in a URL it builds.
    assert "const back = FunctionKey.withoutKey(window.location.href);" in script
    assert "return FunctionKey.withoutKey(link);" in script


def test_the_files_go_into_the_deployment_package() -> None:
    patterns = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()]
    for path in (
        "shared",
        "shared/api",
        "shared/api/dashboard",
        "shared/api/dashboard/index.html",
        "shared/api/dashboard/app.js",
        "shared/api/dashboard/key.js",
        "shared/api/reference/index.html",
        "shared/api/reference/reference.js",
    ):
        parts = path.split("/")
        assert not any(Path(part).match(pattern.rstrip("/")) for pattern in patterns for part in parts), (
            f"{path} is excluded by .funcignore"
        )
    assert {p.name for p in DASHBOARD_DIR.iterdir()} >= {"index.html", "key.js", "app.js", "app.css"}


# ------------------------------------------------------------ in a real browser


def _require_browser_tools() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the dashboard's browser test runs with Node.js 18+")
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/setup.sh (as root it installs Debian's chromium), "
            "or `apt-get install --no-install-recommends chromium`"
        )
    if not PLAYWRIGHT.exists():
        pytest.fail("node_modules/playwright-core is missing: run scripts/setup.sh (npm ci)")
    return node


async def _history(emulator: EmulatorServer) -> None:
    """HOURS_OF_HISTORY hourly polls of the demo tenant, ending now: every job has runs to chart."""
    from shared.graph.reader import close_graph_reader
    from shared.storage.store import close_store

    try:
        emulator.advance_clock(-HOURS_OF_HISTORY * 3600)
        emulator.set_demo_tenant()
        for _ in range(HOURS_OF_HISTORY):
            await run_poll(trigger="test")
            emulator.advance_clock(3600)  # back to where the clock was after the last one
        await run_poll(trigger="test")
    finally:
        await close_graph_reader()
        await close_store()


def _serve(app_env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`python -m shared serve` with `app_env`; yields the dashboard's URL."""
    env = {name: value for name, value in os.environ.items() if name not in CLEARED}
    env.update(app_env)
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, 30, process)
        url = f"http://127.0.0.1:{port}{DASHBOARD_PATH}"
        status = httpx.get(url, timeout=10).status_code
        if status == 404:
            pytest.fail(
                "`python -m shared serve` has no /api/v1/dashboard: shared/api.py's create_app() must "
                "include shared.api.routes.dashboard.router (app.include_router(dashboard_router))"
            )
        assert status == 200, log_path.read_text()[-3000:]
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def served(
    app_env: dict[str, str], demo_emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """`python -m shared serve` over tables with a history, with the provisioning logs' error
    groups collected (PROVISIONING_LOGS=samples: the demo's failing jobs log failures); yields
    the dashboard's URL."""
    monkeypatch.setenv("PROVISIONING_LOGS", "samples")
    asyncio.run(_history(demo_emulator))
    yield from _serve({**app_env, "PROVISIONING_LOGS": "samples"}, tmp_path / "serve.log")


async def _poll_tenants() -> None:
    from shared.graph.reader import close_graph_reader
    from shared.poll import run_poll
    from shared.storage.store import close_store

    try:
        await run_poll(trigger="test", tenants_inline=True)
    finally:
        await close_graph_reader()
        await close_store()


@pytest.fixture
def served_tenants(azurite: AzuriteServer, tmp_path: Path) -> Iterator[str]:
    """The page over three tenants, each polled once from one emulator serving them under their
    own paths; yields the dashboard's URL. The settings apply to the poll and the server only."""
    extra = {FABRIKAM: generated_tenant(8, 0.6, seed=7), NORTHWIND: generated_tenant(4, 0.6, seed=5)}
    with EmulatorServer(tenant=demo_tenant(seed=3), tenants=extra) as graph:
        graph.for_tenant(NORTHWIND).set_faults(REVOKED)
        names = {FABRIKAM: "Fabrikam", NORTHWIND: "Northwind"}
        setting = [
            {"tenantId": tenant, "displayName": name, "graphBaseUrl": graph.for_tenant(tenant).base_url}
            for tenant, name in names.items()
        ]
        env = {**app_settings(azurite, graph), "TENANTS": json.dumps(setting)}
        with pytest.MonkeyPatch.context() as patch:
            apply_settings(patch, env)
            asyncio.run(_poll_tenants())
        yield from _serve(env, tmp_path / "serve-tenants.log")


def test_the_dashboard_in_a_real_browser(served: str, served_tenants: str) -> None:
    """The table lists every job, the filters narrow it, a column sorts from the keyboard, a
    job's chart draws, the phone layout does not scroll sideways, the function key goes only in
    x-functions-key; one tenant shows no picker, several a picker and all tenants at a glance;
    screenshots in test-artifacts/dashboard/."""
    node = _require_browser_tools()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    env = {
        **os.environ,
        "DASHBOARD_URL": served,
        "DASHBOARD_TENANTS_URL": served_tenants,
        "CHROMIUM": str(CHROMIUM),
        "ARTIFACTS_DIR": str(ARTIFACTS),
    }
    started = time.monotonic()
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(SPEC)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = (result.stdout + result.stderr)[-8000:]
    assert result.returncode == 0, f"browser test failed ({time.monotonic() - started:.0f} s):\n{output}"
    assert "skipped 0" in output, output  # the many-tenants part included
    shots = {path.name for path in ARTIFACTS.glob("*.png")}
    expected = {
        "desktop-overview.png",
        "desktop-job.png",
        "phone-overview.png",
        "phone-job.png",
        "tenants-overview.png",
    }
    assert expected <= shots, output
