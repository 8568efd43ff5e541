"""The one place the tests' app settings are made: against Azurite and the Graph emulator,
with every optional setting the developer's shell might carry cleared."""

from __future__ import annotations

import uuid

import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer

# Settings a test must not inherit from the shell that runs it.
CLEARED = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "SERVICE_PRINCIPAL_IDS",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "WORK_QUEUE_NAME",
    "WORK_INLINE_MAX_PRINCIPALS",
    "WORK_ITEM_PRINCIPALS",
    "PROVISIONING_LOGS",
    "PROVISIONING_LOG_SAMPLES",
    "PROVISIONING_LOG_PAGES",
    "GRAPH_MAX_CONCURRENCY",
    "POLL_DEADLINE_SECONDS",
    "WEBSITE_AUTH_ENABLED",
    "API_REQUIRED_ROLE",
    "API_WRITE_ROLE",
    "API_KEY_ONLY_WRITES",
    "API_SIGN_IN_ENABLED",
    "ACTIONS_ENABLED",
    "CORS_ALLOWED_ORIGINS",
    "HEALTH_MAX_AGE_SECONDS",
)


def app_settings(azurite: AzuriteServer, emulator: EmulatorServer, *, prefix: str | None = None) -> dict[str, str]:
    """The app's settings over fresh tables (its own TABLE_PREFIX) and work queue, and the
    emulator's tenant."""
    prefix = prefix or f"t{uuid.uuid4().hex[:12]}"
    return {
        "AZURE_TENANT_ID": DEMO_TENANT_ID,
        "GRAPH_BASE_URL": emulator.base_url,
        "GRAPH_AUTH": "none",
        "AzureWebJobsStorage": azurite.connection_string,
        "TABLE_PREFIX": prefix,
        "WORK_QUEUE_NAME": f"work-{prefix.lower()}"[:49],  # its own queue, as its own tables
        "POLL_SCHEDULE": "0 */5 * * * *",
    }


def apply_settings(patch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Put `env` in the process environment (as the Functions host does), clearing CLEARED."""
    for name in CLEARED:
        patch.delenv(name, raising=False)
    for name, value in env.items():
        patch.setenv(name, value)
