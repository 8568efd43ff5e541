"""Cold start: importing the app and answering HTTP never loads the Graph SDK."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from devtools.graph_emulator import EmulatorServer
from shared.poll import run_poll
from tests.support.paths import ROOT

PROBE = """
import asyncio, json, sys, time
TELEMETRY_SDK = {telemetry_sdk!r}
started = time.perf_counter()
import function_app
imported = time.perf_counter() - started
import httpx

async def main():
    transport = httpx.ASGITransport(app=function_app.app.middleware._app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        first = time.perf_counter()
        status = (await client.get("/api/v1/summary")).status_code
        first_answer = time.perf_counter() - first
        jobs = (await client.get("/api/v1/jobs")).json()["value"]
        job = jobs[0]
        await client.get(f"/api/v1/jobs/{job['servicePrincipalId']}/{job['jobId']}")
        await client.get(f"/api/v1/jobs/{job['servicePrincipalId']}/{job['jobId']}/executions")
        await client.get("/api/openapi.json")
    return status, first_answer

status, first_answer = asyncio.run(main())
print(json.dumps({"import": imported, "firstAnswer": first_answer, "status": status,
                  "msgraph": any(name.split(".")[0] in ("msgraph", "msgraph_core", "kiota_http")
                                 for name in sys.modules),
                  "telemetry": sorted(name for name in sys.modules if name.startswith(TELEMETRY_SDK))}))
"""
# What only a configured process loads (shared/telemetry.py). FastAPI itself imports the
# OpenTelemetry API (`opentelemetry.trace`), which is no-op until a provider is set.
TELEMETRY_SDK = ("azure.monitor", "opentelemetry.sdk", "opentelemetry.instrumentation", "azure.core.tracing.ext")


async def test_no_http_request_imports_the_graph_sdk(app_env: dict[str, str], demo_emulator: EmulatorServer) -> None:
    await run_poll(trigger="test")
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", PROBE.replace("{telemetry_sdk!r}", repr(TELEMETRY_SDK))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            **app_env,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=http://127.0.0.1:9/",
        },
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["status"] == 200
    assert measured["msgraph"] is False
    assert measured["telemetry"] == []  # even with a connection string: only the timers and queues configure it
    assert measured["import"] < 10 and measured["firstAnswer"] < 10  # generous: shared CI machines
