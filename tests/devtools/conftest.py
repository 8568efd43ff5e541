"""The emulator tests' own emulator: one per module, clock frozen, the demo tenant and no
faults before each test (the session's emulator in tests/conftest.py is the app tests')."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer, demo_tenant


@pytest.fixture(scope="module")
def em() -> Iterator[EmulatorServer]:
    with EmulatorServer(tenant=demo_tenant(), frozen_clock=True) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest) -> Iterator[None]:
    if "em" not in request.fixturenames:  # a test of this folder without an emulator
        yield
        return
    em: EmulatorServer = request.getfixturevalue("em")
    em.set_demo_tenant()
    em.clear_faults()
    em.reset_stats()
    yield
    em.clear_faults()


@pytest.fixture(scope="module")
def graph(em: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=em.base_url, timeout=60) as client:
        yield client
