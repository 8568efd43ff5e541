"""Fixtures: real Azurite and the Graph emulator on free loopback ports, one of each per run.

Each test gets its own TABLE_PREFIX, so tests share the services without sharing data.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.azurite import AzuriteServer  # noqa: E402
from devtools.graph_emulator import EmulatorServer, demo_tenant  # noqa: E402
from tests.support.env import app_settings, apply_settings  # noqa: E402
from tests.support.tenants import reset_to_demo  # noqa: E402


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    with AzuriteServer() as server:
        yield server


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant=demo_tenant()) as server:
        yield server


@pytest.fixture
def demo_emulator(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session's emulator, reset to the demo tenant with no faults, its clock back on the
    wall clock (earlier tests move it days ahead; the app's own clock is the wall clock)."""
    reset_to_demo(emulator)
    emulator.reset_stats()
    yield emulator
    emulator.clear_faults()


@pytest.fixture
def app_env(azurite: AzuriteServer, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The app's settings for this test (also put in the environment, as the host does),
    against fresh tables and the demo tenant with no faults."""
    env = app_settings(azurite, demo_emulator)
    apply_settings(monkeypatch, env)
    return env


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the per-process clients in the loop that made them (each test has its own loop)."""
    yield
    from shared.storage.store import close_store

    await close_store()
    if "shared.storage.work_queue" in sys.modules:
        from shared.storage.work_queue import close_work_queue

        await close_work_queue()
    if "shared.graph.reader" in sys.modules:
        from shared.graph.reader import close_graph_reader

        await close_graph_reader()
