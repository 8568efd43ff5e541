"""Helpers for the API tests: tables seeded once per module, and an in-process client.

The API tests only read, so each module polls once into its own TABLE_PREFIX and all its
tests share those tables (a poll per test would cost a second or more each).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from tests.support.env import app_settings, apply_settings


@contextmanager
def seeded(
    azurite: AzuriteServer, emulator: EmulatorServer, seed: Callable[[EmulatorServer], Awaitable[None]]
) -> Iterator[dict[str, str]]:
    """The app's settings in the environment for a whole module, over tables `seed` filled."""
    from shared.storage.store import close_store

    env = app_settings(azurite, emulator, prefix=f"api{uuid.uuid4().hex[:12]}")
    with pytest.MonkeyPatch.context() as patch:
        apply_settings(patch, env)
        emulator.set_demo_tenant()
        emulator.clear_faults()

        async def run() -> None:
            from shared.graph.reader import close_graph_reader

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


def polls_apart(hours: float) -> Callable[[EmulatorServer], Awaitable[None]]:
    """A seed for `seeded`: a poll, the emulator's clock `hours` on, another poll."""

    async def seed(emulator: EmulatorServer) -> None:
        from shared.poll import run_poll

        await run_poll(trigger="test")
        emulator.advance_clock(hours * 3600)
        await run_poll(trigger="test")

    return seed
