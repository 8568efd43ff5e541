"""The Function app as the host sees it: indexing, bindings, and calls the way the host makes them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from devtools.graph_emulator import EmulatorServer
from tests.support.paths import ROOT


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    # get_functions() registers the ASGI function again on every call: index once per process.
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def test_importing_the_app_loads_no_graph_sdk_and_no_client() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import function_app; "
        "print(time.perf_counter() - t); print('msgraph' in sys.modules, 'kiota_http' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    seconds, loaded = result.stdout.split("\n")[:2]
    assert loaded == "False False"
    assert float(seconds) < 10


def test_bindings(functions: dict[str, Any]) -> None:
    assert set(functions) == {
        "http_app_func",
        "poll",
        "discover",
        "retention",
        "health",
        "work_item",
        "poisoned_work_item",
    }
    http = json.loads(functions["http_app_func"].get_function_json())["bindings"]
    trigger = next(b for b in http if b["type"] == "httpTrigger")
    assert trigger["authLevel"] == "FUNCTION"
    assert trigger["route"] == "/{*route}"
    health = json.loads(functions["health"].get_function_json())["bindings"]
    trigger = next(b for b in health if b["type"] == "httpTrigger")
    assert (trigger["authLevel"], trigger["route"], trigger["methods"]) == ("ANONYMOUS", "health", ["GET"])
    schedules = {"poll": "POLL_SCHEDULE", "discover": "DISCOVERY_SCHEDULE", "retention": "RETENTION_SCHEDULE"}
    for name, setting in schedules.items():
        bindings = json.loads(functions[name].get_function_json())["bindings"]
        assert bindings == [
            {
                "direction": "IN",
                "type": "timerTrigger",
                "name": "timer",
                "schedule": f"%{setting}%",
                "runOnStartup": False,
                "useMonitor": True,
            }
        ]
    # The work queue and the poison queue the host moves failed items to (host.json: after
    # maxDequeueCount tries), both in the app's storage account.
    for name, queue in (("work_item", "%WORK_QUEUE_NAME%"), ("poisoned_work_item", "%WORK_QUEUE_NAME%-poison")):
        bindings = json.loads(functions[name].get_function_json())["bindings"]
        assert bindings == [
            {
                "direction": "IN",
                "type": "queueTrigger",
                "name": "message",
                "queueName": queue,
                "connection": "AzureWebJobsStorage",
            }
        ]


async def test_http_through_the_asgi_middleware_as_the_host_calls_it(
    functions: dict[str, Any], app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    user_function = functions["http_app_func"].get_user_function()
    await functions["poll"].get_user_function()(TimerRequest(past_due=False))

    request = func.HttpRequest("GET", "http://localhost:7071/api/v1/summary", headers={}, params={}, body=b"")
    response = await user_function(request, None)
    assert response.status_code == 200
    summary = json.loads(response.get_body())
    assert summary["jobs"]["total"] > 0
    assert summary["lastPoll"]["trigger"] == "timer"

    missing = func.HttpRequest(
        "GET", "http://localhost:7071/api/v1/jobs/nope/nope/executions", headers={}, params={}, body=b""
    )
    response = await user_function(missing, None)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_timer_logs_past_due_and_records_it(
    functions: dict[str, Any],
    app_env: dict[str, str],
    demo_emulator: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await functions["poll"].get_user_function()(TimerRequest(past_due=True))
    assert "past due" in caplog.text
    request = func.HttpRequest("GET", "http://localhost/api/v1/summary", headers={}, params={}, body=b"")
    response = await functions["http_app_func"].get_user_function()(request, None)
    assert json.loads(response.get_body())["lastPoll"]["pastDue"] is True
