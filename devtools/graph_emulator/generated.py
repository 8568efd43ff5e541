"""Generated tenants of any size, for paging and polling at scale.

Service principals are built eagerly (cheap dicts, 10,000 in well under a second); job
profiles are built only when a service principal's jobs are first asked for, from a random
generator seeded by (seed, index), so the same arguments always give the same tenant.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from .profiles import (
    CLOUD_SYNC_TEMPLATE_ID,
    INTEGRATED_APP_TAG,
    MICROSOFT_TENANT_ID,
    PROFILE_WEIGHTS,
    TEMPLATES,
    make_profile,
)
from .runs import DAY, JobProfile, Phase
from .tenant import LivingTenant

_VENDORS = (
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Tailspin",
    "Wingtip",
    "Adventure Works",
    "Litware",
    "Proseware",
    "Woodgrove",
    "Alpine Ski House",
    "Blue Yonder",
    "Coho Winery",
    "Fourth Coffee",
)
_PRODUCTS = (
    "HR",
    "CRM",
    "Expenses",
    "Helpdesk",
    "Wiki",
    "Payroll",
    "Learning",
    "Travel",
    "Analytics",
    "Procurement",
    "Benefits",
    "Recruiting",
    "Ticketing",
    "Chat",
    "Storage",
    "Portal",
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


FAILING_APP = "Benchmark Failing SCIM App"
FAILING_INTERVAL = 40 * 60
FAILING_RUNS_PER_DAY = DAY // FAILING_INTERVAL  # 36


def generated_tenant(
    service_principals: int,
    job_ratio: float = 0.3,
    seed: int = 1,
    now: float | None = None,
    failure_events: int = 0,
    tenant_id: str | None = None,
) -> LivingTenant:
    """A living tenant of `service_principals` SPs; about `job_ratio` of them have jobs.

    Its tenant id comes from `seed` unless `tenant_id` is given; then every id is drawn from
    (tenant_id, seed), so two tenants of the same seed and size still share no id.

    `failure_events` > 0 adds one more service principal (`FAILING_APP`, last in the list) whose
    PT40M SCIM job has escrowed entries on every run of the day before `now`: its provisioning
    log then holds at least `failure_events` failure events in that day (each of the 36 runs
    logs ceil(N / 36) plus 0-9 failures), and it keeps failing as the clock moves on.
    """
    if service_principals < 0 or not 0.0 <= job_ratio <= 1.0 or failure_events < 0:
        raise ValueError("service_principals >= 0, 0 <= job_ratio <= 1 and failure_events >= 0")
    epoch = int(time.time() if now is None else now) // 60 * 60
    namespace = f"{tenant_id}:" if tenant_id else ""
    rng = random.Random(f"{namespace}{seed}" if namespace else seed)
    drawn = _uuid(rng)
    tenant_id = tenant_id or drawn
    sps: list[dict[str, Any]] = []
    job_templates: list[tuple[str, ...]] = []
    for i in range(service_principals):
        app_id = _uuid(rng)
        has_jobs = rng.random() < job_ratio
        cloud_sync = has_jobs and rng.random() < 0.05
        microsoft = not has_jobs and rng.random() < 0.2
        tagged = (has_jobs and not cloud_sync) or (not has_jobs and not microsoft and rng.random() < 0.5)
        name = f"{rng.choice(_VENDORS)} {rng.choice(_PRODUCTS)} {i:05d}"
        if cloud_sync:
            name = f"{rng.choice(_VENDORS)} Cloud Sync (domain{i}.local)"
            templates: tuple[str, ...] = ("AD2AADProvisioning",)
            if rng.random() < 0.5:
                templates += ("AD2AADPasswordHash",)
        elif has_jobs:
            templates = (rng.choice(TEMPLATES),) * (2 if rng.random() < 0.05 else 1)
        else:
            templates = ()
        job_templates.append(templates)
        sps.append(
            {
                "id": _uuid(rng),
                "accountEnabled": True,
                "appDisplayName": name,
                "appId": app_id,
                "applicationTemplateId": CLOUD_SYNC_TEMPLATE_ID if cloud_sync else (_uuid(rng) if tagged else None),
                "appOwnerOrganizationId": MICROSOFT_TENANT_ID if microsoft else tenant_id,
                "appRoleAssignmentRequired": tagged,
                "displayName": name,
                "preferredSingleSignOnMode": "saml" if tagged else None,
                "servicePrincipalNames": [app_id],
                "servicePrincipalType": "Application",
                "signInAudience": "AzureADMultipleOrgs" if microsoft else "AzureADMyOrg",
                "tags": [INTEGRATED_APP_TAG] if tagged else [],
            }
        )
    failing: JobProfile | None = None
    if failure_events:
        app_id = _uuid(rng)
        failing = JobProfile(
            job_id=f"scim.{uuid.UUID(int=rng.getrandbits(128)).hex}.{tenant_id}",
            template_id="scim",
            profile="escrow-growing",
            interval=FAILING_INTERVAL,
            # The first run begins one interval after the phase start: 36 runs end within the day.
            phases=(
                Phase(
                    "periodic",
                    epoch - DAY - FAILING_INTERVAL + 1,
                    state="EntryLevelErrors",
                    escrow_base=-(-failure_events // FAILING_RUNS_PER_DAY),
                ),
            ),
            seed=seed,
        )
        job_templates.append(("scim",))
        sps.append(
            {
                "id": _uuid(rng),
                "accountEnabled": True,
                "appDisplayName": FAILING_APP,
                "appId": app_id,
                "applicationTemplateId": _uuid(rng),
                "appOwnerOrganizationId": tenant_id,
                "appRoleAssignmentRequired": True,
                "displayName": FAILING_APP,
                "preferredSingleSignOnMode": None,
                "servicePrincipalNames": [app_id],
                "servicePrincipalType": "Application",
                "signInAudience": "AzureADMyOrg",
                "tags": [INTEGRATED_APP_TAG],
            }
        )
    kinds = list(PROFILE_WEIGHTS)
    weights = list(PROFILE_WEIGHTS.values())

    def profiles_for(index: int) -> tuple[JobProfile, ...]:
        if failing is not None and index == service_principals:
            return (failing,)
        job_rng = random.Random(f"{namespace}{seed}:{index}")
        built = []
        for n, template in enumerate(job_templates[index]):
            kind = job_rng.choices(kinds, weights)[0]
            built.append(
                make_profile(
                    kind,
                    job=f"{template}.{uuid.UUID(int=job_rng.getrandbits(128)).hex}.{tenant_id}",
                    template_id=template,
                    epoch=epoch,
                    rng=job_rng,
                    seed=seed * 1000 + n,
                )
            )
        return tuple(built)

    spec = {
        "kind": "generated",
        "servicePrincipals": service_principals,
        "jobRatio": job_ratio,
        "seed": seed,
        "failureEvents": failure_events,
        **({"tenantId": tenant_id} if namespace else {}),
    }
    return LivingTenant(tenant_id, sps, profiles_for, spec, epoch)
