"""No secret reaches a log line or an HTTP answer, and local settings never reach git or the package."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devtools.azurite import DEV_KEY, free_port
from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from shared.poll import PollFailedError, run_poll
from tests.support.paths import ROOT

SECRET = "sup3r-s3cret-Value~0123456789"


async def test_a_run_with_secrets_configured_logs_none_of_them(
    app_env: dict[str, str],
    demo_emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", SECRET)
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' HTTP logging included
    await run_poll(trigger="test")
    bodies = []
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        for path in ("/api/v1/jobs", "/api/v1/summary", "/api/v1/jobs/x/y", "/api/v1/jobs/x/y/executions?top=0"):
            bodies.append((await api.get(path)).text)
        monkeypatch.setenv("GRAPH_AUTH", "bogus")  # a configuration error answered over HTTP
        bodies.append((await api.get("/api/v1/jobs")).text)
    monkeypatch.setenv("GRAPH_AUTH", "none")
    monkeypatch.setenv("GRAPH_BASE_URL", f"http://127.0.0.1:{free_port()}/v1.0")
    with pytest.raises(PollFailedError) as failed:
        await run_poll(trigger="test")
    everything = caplog.text + "".join(bodies) + str(failed.value.record)
    assert "poll " in caplog.text  # the structured line was logged
    for secret in (SECRET, DEV_KEY, DEV_KEY[:20]):
        assert secret not in everything


def test_the_cli_never_prints_a_bad_connection_string(app_env: dict[str, str]) -> None:
    env = {**os.environ, **app_env, "AzureWebJobsStorage": f"DefaultEndpointsProtocol=https;AccountKey={SECRET}"}
    result = subprocess.run(
        [sys.executable, "-m", "shared", "poll"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AzureWebJobsStorage" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_local_settings_stay_out_of_git_and_the_package() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "local.settings.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
    assert "local.settings.json" in (ROOT / ".funcignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "local.settings.json" not in tracked.split()


def test_the_sample_settings_hold_no_secret() -> None:
    sample = (ROOT / "local.settings.sample.json").read_text()
    assert "AccountKey" not in sample and DEV_KEY not in sample


def test_no_secret_looking_text_in_the_code() -> None:
    """The only key in the repository is Azurite's published development key, in devtools."""
    hits = []
    for path in Path(ROOT).rglob("*"):
        if any(part in {".git", ".venv", "node_modules", ".demo-data"} for part in path.parts) or not path.is_file():
            continue
        if path.suffix not in {".py", ".json", ".bicep", ".md", ".sh", ".yaml", ".txt"}:
            continue
        if DEV_KEY in path.read_text(errors="ignore") and path != ROOT / "devtools" / "azurite.py":
            hits.append(str(path.relative_to(ROOT)))
    assert hits == []
