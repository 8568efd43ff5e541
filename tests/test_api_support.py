"""Helpers for the API tests: tables seeded once per module, and an in-process client.

The API tests only read, so each module polls once into its own TABLE_PREFIX and all its
tests share those tables (a poll per test would cost a second or more each).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer
from shared.api import create_app

CLEARED = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "SERVICE_PRINCIPAL_IDS",
    "AzureWebJobsStorage__tableServiceUri",
    "GRAPH_MAX_CONCURRENCY",
    "POLL_DEADLINE_SECONDS",
    "WEBSITE_AUTH_ENABLED",
    "API_REQUIRED_ROLE",
    "CORS_ALLOWED_ORIGINS",
    "HEALTH_MAX_AGE_SECONDS",
)


def app_settings(azurite: AzuriteServer, emulator: EmulatorServer) -> dict[str, str]:
    return {
        "AZURE_TENANT_ID": DEMO_TENANT_ID,
        "GRAPH_BASE_URL": emulator.base_url,
        "GRAPH_AUTH": "none",
        "AzureWebJobsStorage": azurite.connection_string,
        "TABLE_PREFIX": f"api{uuid.uuid4().hex[:12]}",
        "POLL_SCHEDULE": "0 */5 * * * *",
    }


@contextmanager
def seeded(
    azurite: AzuriteServer, emulator: EmulatorServer, seed: Callable[[EmulatorServer], Awaitable[None]]
) -> Iterator[dict[str, str]]:
    """The app's settings in the environment for a whole module, over tables `seed` filled."""
    from shared.store import close_store

    env = app_settings(azurite, emulator)
    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        emulator.set_demo_tenant()
        emulator.clear_faults()

        async def run() -> None:
            from shared.graph import close_graph_reader

            try:
                await seed(emulator)
            finally:
                await close_graph_reader()
                await close_store()

        asyncio.run(run())
        yield env


@asynccontextmanager
async def api_client(**headers: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as client:
        yield client


def job_path(job: dict[str, Any]) -> str:
    return f"/api/v1/jobs/{quote(job['servicePrincipalId'], safe='')}/{quote(job['jobId'], safe='')}"


async def follow(api: httpx.AsyncClient, url: str | None) -> list[dict[str, Any]]:
    """Every item of every page from `url` on, following nextLink."""
    items: list[dict[str, Any]] = []
    while url:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["value"])
        url = page["nextLink"]
    return items


# ------------------------------------------------------------ hand-made tenants (known answers)


def at(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(activity: str, began: datetime, state: str = "Succeeded", **counts: Any) -> dict[str, Any]:
    return {
        "activityIdentifier": activity,
        "state": state,
        "timeBegan": at(began),
        "timeEnded": at(began + timedelta(minutes=2)),
        **counts,
    }


def job(job_id: str, template: str, last: dict[str, Any] | None, code: str = "Active", **status: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "templateId": template,
        "schedule": {"interval": "PT40M", "state": "Active", "expiration": None},
        "status": {
            "code": code,
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": False,
            "lastExecution": last,
            "quarantine": None,
            **status,
        },
    }


def tenant(*principals: tuple[str, str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "tenantId": DEMO_TENANT_ID,
        "servicePrincipals": [
            {"id": sp_id, "appId": f"app-{sp_id[:8]}", "displayName": name, "jobs": jobs}
            for sp_id, name, jobs in principals
        ],
    }
