"""The tenant feed's bounded work (`GET /api/v1/executions`, #17): a window of any length costs a
bounded number of days per request, and cutting the window to the days that can hold runs
loses none, Graph's odd future dates included (stored as given, docs: DOMAIN.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.api.routes import executions
from shared.poll import run_poll
from shared.storage.store import Store
from tests.support.api import api_client, seeded
from tests.support.tenants import job, run, tenant

SP = "11111111-2222-3333-4444-555555555555"
NOW = datetime.now(UTC).replace(microsecond=0)
# In poll order: a run a target system dated 2100 (Graph passes such dates on), then real ones.
RUNS = [
    run("far", datetime(2100, 1, 1, 8, tzinfo=UTC), "Failed"),
    run("later", datetime(2100, 3, 1, 8, tzinfo=UTC)),
    run("old", NOW - timedelta(days=40), "Failed"),
    run("recent", NOW - timedelta(hours=1), "Failed"),
]
NEWEST_FIRST = ["later", "far", "recent", "old"]


async def _history(emulator: EmulatorServer) -> None:
    for last in RUNS:
        emulator.set_tenant(tenant((SP, "Odd dates", [job("scim.odd", "scim", last)])))
        record = await run_poll(trigger="test")
        assert record["status"] == "succeeded", record


@pytest.fixture(scope="module")
def history(azurite: AzuriteServer, emulator: EmulatorServer) -> Iterator[dict[str, str]]:
    with seeded(azurite, emulator, _history) as env:
        yield env


@pytest.fixture
async def api(history: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


@pytest.fixture
def days_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The RunsByTime days read, counted at the Store."""
    read: list[str] = []
    runs_page = Store.runs_by_time_page

    async def counted(self: Store, day: str, **kwargs: Any) -> Any:
        read.append(day)
        return await runs_page(self, day, **kwargs)

    monkeypatch.setattr(Store, "runs_by_time_page", counted)
    return read


async def pages_of(api: httpx.AsyncClient, params: dict[str, Any], days_read: list[str]) -> list[list[str]]:
    """Each page's runs, following nextLink; each request's reads checked against the bound."""
    url: str | None = str(httpx.URL("/api/v1/executions", params=params))
    pages = []
    while url:
        days_read.clear()
        response = await api.get(url)
        assert response.status_code == 200, response.text
        assert len(days_read) <= executions.FEED_DAYS_PER_PAGE, days_read
        pages.append([item["activityIdentifier"] for item in response.json()["value"]])
        url = response.json()["nextLink"]
        assert len(pages) < 50, "the paging must end"
    return pages


@pytest.mark.parametrize("days_per_page", [1, 2, 31])
async def test_the_widest_window_finds_every_run_in_few_bounded_requests(
    api: httpx.AsyncClient, days_read: list[str], monkeypatch: pytest.MonkeyPatch, days_per_page: int
) -> None:
    monkeypatch.setattr(executions, "FEED_DAYS_PER_PAGE", days_per_page)
    pages = await pages_of(api, {"from": "0001-01-01", "to": "9999-12-31", "top": 1000}, days_read)
    assert [name for page in pages for name in page] == NEWEST_FIRST
    # The two odd days, then the 41 days from the first rollup to tomorrow: never the centuries.
    assert len(pages) <= 2 + -(-43 // days_per_page) + 1, pages


async def test_the_failure_feed_over_all_time_pages_by_top(api: httpx.AsyncClient, days_read: list[str]) -> None:
    pages = await pages_of(api, {"from": "0001-01-01", "to": "9999-12-31", "state": "Failed", "top": 1}, days_read)
    assert [name for page in pages for name in page] == ["far", "recent", "old"]


async def test_a_window_ending_far_ahead_starts_at_the_newest_run(api: httpx.AsyncClient, days_read: list[str]) -> None:
    """to=2099-01-01 over real dates only: the first page already holds today's runs."""
    window = {"from": (NOW - timedelta(days=2)).date().isoformat(), "to": "2099-01-01"}
    pages = await pages_of(api, window, days_read)
    assert pages[0] == ["recent"]
