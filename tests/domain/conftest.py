"""The domain is pure: its tests may not start Azurite or the Graph emulator."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def azurite() -> None:
    pytest.fail("tests/domain/ is for pure tests: a test that needs Azurite belongs in tests/storage/")


@pytest.fixture(scope="session")
def emulator() -> None:
    pytest.fail("tests/domain/ is for pure tests: a test that needs the Graph emulator belongs in tests/graph/")
