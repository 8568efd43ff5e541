"""Microsoft Graph emulator: service principals and their synchronization (provisioning) jobs.

An HTTP server that answers like Graph v1.0 for what Entra Sync Monitor reads, so the real
`msgraph-sdk` client can be exercised without a tenant: paging, `$select`, `$batch`, Graph's
error bodies, throttling and other injected faults, and tenants whose job history grows with
the emulator's clock. Run it with `python -m devtools.graph_emulator`, or in tests with
`EmulatorServer`. Besides the default tenant at the root it serves more tenants, each under
`/{tenantId}/v1.0` with its own data, clock, faults, counters and expected token (tenants.py).
"""

from .app import create_app
from .demo import DEMO_TENANT_ID, demo_tenant
from .generated import generated_tenant
from .runs import JobProfile, Phase, materialise_job
from .server import EmulatorControl, EmulatorServer
from .state import EmulatorState
from .tenant import LivingTenant, Tenant
from .tenants import TenantRegistry

__all__ = [
    "DEMO_TENANT_ID",
    "EmulatorControl",
    "EmulatorServer",
    "EmulatorState",
    "JobProfile",
    "LivingTenant",
    "Phase",
    "Tenant",
    "TenantRegistry",
    "create_app",
    "demo_tenant",
    "generated_tenant",
    "materialise_job",
]
