"""The demo tenant: 31 service principals, 23 provisioning jobs, every case the app must handle.

Times are relative to the moment the tenant is built (E), so the history is always recent and
grows while the emulator runs. What it covers (display name: template, profile):

- Salesforce: `salesforce`, healthy PT40M, every run succeeds and most export, so lastExecution,
  lastSuccessfulExecution and lastSuccessfulExecutionWithExports are usually the same run.
- Contoso Sales Portal: `scim`, healthy PT20M with occasional entry-level errors.
- Contoso Legacy HR Connector: `customappsso`, healthy but rarely exports (the with-exports run is
  older than the last success); countImported above 2**31 (Int64); timestamps without fraction.
- ServiceNow: `ServiceNowOutDelta`, escrow growing (EntryLevelErrors, countEscrowed +35 a run)
  for two days; last success before that.
- AWS IAM Identity Center: `aws`, bad credentials: failed 2 h, then Quarantine
  `EncounteredQuarantineException` since E-30h (retries at +6 h, +18 h, next at +42 h).
- Box: `BoxOutDelta`, Quarantine `TooManyDeletes` since E-10h (threshold 500 in the settings).
- Google Workspace: `gsuite`, escrow grew for three days, Quarantine
  `EncounteredEscrowProportionThreshold` since E-20h.
- Adobe Identity Management: `adobeIdentityManagement`, Quarantine with reason
  `unknownFutureValue` and an unknown error code (tolerance).
- Atlassian Cloud: `atlassianCloud`, runs ending in state `PartialSuccess` (an unknown future
  enum value) for the last day.
- GitHub Enterprise Managed User: `gitHubEnterpriseManagedUser`, failing since E-3h
  (`SystemForCrossDomainIdentityManagementServiceIncompatible`), countSuccessiveCompleteFailures.
- Slack: `slack`, Paused since E-2d.
- Zoom: `zoom`, NotConfigured: never run, Graph's sentinels, including a sentinel
  lastSuccessfulExecution (activityIdentifier null, 0001-01-01 times, zero counts).
- Dropbox Business: `dropboxSCIM`, NotRun: never run, sentinels, null last executions.
- Workday to Entra ID User Provisioning: `Workday2AAD` inbound, healthy, runs of 5-25 minutes.
- Contoso HR SuccessFactors: `SuccessFactors2AAD` inbound, initial cycle in progress (started
  E-3h, takes 8 h): status NotRun (its first run has not completed), lastExecution null,
  progress observed within the last 30 s; advancing the clock completes it (then Active).
- Contoso Cloud Sync (contoso.local): cloud sync (app template 1a4721b3-...), two jobs,
  `AD2AADProvisioning` and `AD2AADPasswordHash`, healthy PT2M.
- Contoso Cloud Sync (fabrikam.local): `AD2AADProvisioning` failing since E-50min with
  `HybridIdentityServiceAgentsUnavailable`; quarantined at E+2h (advance the clock to see it).
- Cross-tenant sync to Fabrikam: `Azure2Azure`, healthy, escrowsPruned true.
- Contoso Cloud Sync (northwind.local): `AD2AADProvisioning` PT2M whose lastSuccessfulExecution
  is the partial record of the cloud sync schema article (activityIdentifier null, timeBegan
  0001-01-01, real timeEnded and counts; lastSuccessfulExecutionWithExports null); most runs end
  with a few escrows, so the last success is older than lastExecution.
- Contoso Cloud Sync (tailspin.local): `AD2AADProvisioning` PT2M restarted at E-12min: a full
  cycle (3 h) is running, so progress[] is observed within the last 30 s while lastExecution
  ended before the restart; advancing the clock 3 h completes it.
- Fabrikam Learning Portal: `scim`, escrowsPruned: its initial cycle (E-9h, 6 h) hit the escrow
  threshold, the service pruned escrows instead of quarantining, and paused the job when the cycle
  completed (status Paused, no successful run).
- Cross-tenant sync to Northwind Traders: `Azure2Azure` just started, NotRun, as the cross-tenant
  sync article shows it: schedule Active PT40M, lastExecution an all-sentinel record (state
  Failed, error code "None"), the other executions null.
- No jobs: Microsoft Graph, Office 365 Exchange Online, Office 365 SharePoint Online, Microsoft
  Teams, Azure Portal (Microsoft-owned, untagged), DocuSign, Tableau Cloud, Fabrikam Partner
  Portal (tagged, SSO only), Contoso Expenses (an app registration, untagged).
Cloud sync jobs count entries by mapping (`user to User`, `group to Group`), as Microsoft's
example shows. progress[] is [] between cycles and holds one observation while a cycle runs.
Cloud sync service principals carry no WindowsAzureActiveDirectoryIntegratedApp tag: only the
application template finds them.

Over 400 lines because it is data: one definition per demo job, each with the case it covers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .profiles import (
    AGENTS_UNAVAILABLE,
    BAD_CREDENTIALS,
    CLOUD_SYNC_TEMPLATE_ID,
    ESCROW_THRESHOLD,
    FUTURE_ERROR,
    INTEGRATED_APP_TAG,
    MICROSOFT_TENANT_ID,
    SCIM_INCOMPATIBLE,
    TOO_MANY_DELETES,
    escrow_growth,
    failing,
    job_id,
    life,
    paused,
    quarantined,
    stable_uuid,
    unknown_state,
)
from .runs import DAY, HOUR, JobProfile, Phase
from .tenant import LivingTenant

DEMO_TENANT_ID = "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9"
CLOUD_SYNC_ENTRY_TYPES = ("user to User", "group to Group")
CROSS_TENANT_SETTINGS = (("AzureIngestionAttributeOptimization", "False"), ("LookaheadQueryEnabled", "False"))
MINUTE = 60


@dataclass(frozen=True)
class _Job:
    template_id: str
    profile: str
    interval: int
    phases: tuple[Phase, ...]
    initial: int = HOUR
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _App:
    name: str
    jobs: tuple[_Job, ...] = ()
    tagged: bool = True
    template_id: str | None = None  # applicationTemplateId; a gallery GUID when None and tagged
    app_id: str | None = None
    owner: str = DEMO_TENANT_ID
    sso: str | None = "saml"


def _job(
    template_id: str,
    profile: str,
    interval: int,
    anchor: int,
    initial: int,
    *later: Phase,
    escrow_rate: float = 0.05,
    **options: Any,
) -> _Job:
    return _Job(
        template_id, profile, interval, life(anchor, initial, *later, escrow_rate=escrow_rate), initial, options
    )


def _never(template_id: str, code: str, sentinel: bool) -> _Job:
    return _Job(template_id, code, 40 * MINUTE, (), options={"never_run_code": code, "sentinel_last_success": sentinel})


def _microsoft(name: str, app_id: str) -> _App:
    """A first-party service principal: owned by Microsoft's tenant, untagged, never provisioned."""
    return _App(name, tagged=False, app_id=app_id, owner=MICROSOFT_TENANT_ID, sso=None)


def _apps(e: int) -> tuple[_App, ...]:
    """The demo's apps, with times relative to the epoch `e`."""
    return (
        _App(
            "Salesforce",
            (
                _job(
                    "salesforce",
                    "healthy",
                    40 * MINUTE,
                    e - 9 * DAY,
                    2 * HOUR,
                    escrow_rate=0.0,
                    export_rate=0.8,
                    population=1200,
                    groups=40,
                ),
            ),
        ),
        _App(
            "ServiceNow",
            (
                _job(
                    "ServiceNowOutDelta",
                    "escrow-growing",
                    40 * MINUTE,
                    e - 20 * DAY,
                    5 * HOUR,
                    escrow_growth(e - 2 * DAY, 120, 35),
                    population=5400,
                    groups=300,
                ),
            ),
        ),
        _App(
            "AWS IAM Identity Center",
            (
                _job(
                    "aws",
                    "quarantine-credentials",
                    40 * MINUTE,
                    e - 30 * DAY,
                    HOUR,
                    failing(e - 32 * HOUR, BAD_CREDENTIALS),
                    quarantined(e - 30 * HOUR, "EncounteredQuarantineException", BAD_CREDENTIALS),
                    population=800,
                    groups=25,
                ),
            ),
        ),
        _App(
            "Workday to Entra ID User Provisioning",
            (
                _job(
                    "Workday2AAD",
                    "healthy-inbound",
                    40 * MINUTE,
                    e - 45 * DAY,
                    14 * HOUR,
                    population=8000,
                    run_seconds=(5 * MINUTE, 25 * MINUTE),
                    export_rate=0.6,
                    entry_types=("User", "Group"),
                ),
            ),
        ),
        _App(
            "Contoso HR SuccessFactors",
            (
                _job(
                    "SuccessFactors2AAD",
                    "initial-in-progress",
                    40 * MINUTE,
                    e - 3 * HOUR,
                    8 * HOUR,
                    population=6500,
                    entry_types=("User", "Group"),
                ),
            ),
        ),
        _App(
            "Slack",
            (
                _job(
                    "slack",
                    "paused",
                    40 * MINUTE,
                    e - 60 * DAY,
                    3 * HOUR,
                    paused(e - 2 * DAY),
                    population=2300,
                    groups=90,
                ),
            ),
        ),
        _App("Zoom", (_never("zoom", "NotConfigured", sentinel=True),)),
        _App(
            "Atlassian Cloud",
            (
                _job(
                    "atlassianCloud",
                    "partial-success",
                    40 * MINUTE,
                    e - 12 * DAY,
                    2 * HOUR,
                    unknown_state(e - DAY),
                    population=1900,
                    groups=120,
                ),
            ),
        ),
        _App(
            "GitHub Enterprise Managed User",
            (
                _job(
                    "gitHubEnterpriseManagedUser",
                    "failing",
                    40 * MINUTE,
                    e - 7 * DAY,
                    HOUR,
                    failing(e - 3 * HOUR, SCIM_INCOMPATIBLE),
                    population=650,
                ),
            ),
        ),
        _App(
            "Box",
            (
                _job(
                    "BoxOutDelta",
                    "quarantine-deletes",
                    40 * MINUTE,
                    e - 90 * DAY,
                    4 * HOUR,
                    quarantined(e - 10 * HOUR, "TooManyDeletes", TOO_MANY_DELETES),
                    population=3100,
                ),
            ),
        ),
        _App("Dropbox Business", (_never("dropboxSCIM", "NotRun", sentinel=False),)),
        _App(
            "Contoso Cloud Sync (contoso.local)",
            (
                _job(
                    "AD2AADProvisioning",
                    "healthy-cloud-sync",
                    2 * MINUTE,
                    e - 120 * DAY,
                    3 * HOUR,
                    population=12_000,
                    groups=800,
                    run_seconds=(15, 90),
                    export_rate=0.5,
                    entry_types=CLOUD_SYNC_ENTRY_TYPES,
                ),
                _job(
                    "AD2AADPasswordHash",
                    "healthy-password-hash",
                    2 * MINUTE,
                    e - 120 * DAY,
                    HOUR,
                    escrow_rate=0.0,
                    population=12_000,
                    run_seconds=(5, 40),
                    export_rate=0.7,
                    entry_types=CLOUD_SYNC_ENTRY_TYPES,
                ),
            ),
            tagged=False,
            template_id=CLOUD_SYNC_TEMPLATE_ID,
            sso=None,
        ),
        _App(
            "Contoso Cloud Sync (fabrikam.local)",
            (
                _job(
                    "AD2AADProvisioning",
                    "failing-then-quarantine",
                    2 * MINUTE,
                    e - 30 * DAY,
                    2 * HOUR,
                    failing(e - 50 * MINUTE, AGENTS_UNAVAILABLE),
                    quarantined(e + 2 * HOUR, "EncounteredQuarantineException", AGENTS_UNAVAILABLE),
                    population=2500,
                    groups=140,
                    run_seconds=(10, 60),
                    entry_types=CLOUD_SYNC_ENTRY_TYPES,
                ),
            ),
            tagged=False,
            template_id=CLOUD_SYNC_TEMPLATE_ID,
            sso=None,
        ),
        _App(
            "Cross-tenant sync to Fabrikam",
            (
                _job(
                    "Azure2Azure",
                    "healthy-escrows-pruned",
                    40 * MINUTE,
                    e - 15 * DAY,
                    40 * MINUTE,
                    population=450,
                    escrows_pruned=True,
                    entry_types=("user", "group"),
                ),
            ),
            sso=None,
        ),
        _App(
            "Contoso Cloud Sync (northwind.local)",
            (
                _job(
                    "AD2AADProvisioning",
                    "healthy-partial-last-success",
                    2 * MINUTE,
                    e - 70 * DAY,
                    2 * HOUR,
                    escrow_rate=0.6,
                    population=3600,
                    groups=210,
                    run_seconds=(15, 80),
                    export_rate=0.4,
                    entry_types=CLOUD_SYNC_ENTRY_TYPES,
                    partial_last_success=True,
                ),
            ),
            tagged=False,
            template_id=CLOUD_SYNC_TEMPLATE_ID,
            sso=None,
        ),
        _App(
            "Contoso Cloud Sync (tailspin.local)",
            (
                _job(
                    "AD2AADProvisioning",
                    "cycle-running",
                    2 * MINUTE,
                    e - 50 * DAY,
                    3 * HOUR,
                    Phase("initial", e - 12 * MINUTE),
                    population=9000,
                    groups=450,
                    run_seconds=(15, 90),
                    entry_types=CLOUD_SYNC_ENTRY_TYPES,
                ),
            ),
            tagged=False,
            template_id=CLOUD_SYNC_TEMPLATE_ID,
            sso=None,
        ),
        _App(
            "Fabrikam Learning Portal",
            (
                _Job(
                    "scim",
                    "escrows-pruned-paused",
                    40 * MINUTE,
                    (
                        Phase("initial", e - 9 * HOUR, state="EntryLevelErrors", escrow_base=1800),
                        Phase("paused", e - 3 * HOUR + MINUTE),
                    ),
                    6 * HOUR,
                    {"escrows_pruned": True, "population": 26_000, "groups": 40},
                ),
            ),
        ),
        _App(
            "Cross-tenant sync to Northwind Traders",
            (
                _Job(
                    "Azure2Azure",
                    "not-run-started",
                    40 * MINUTE,
                    (),
                    options={
                        "never_run_code": "NotRun",
                        "sentinel_last_execution": True,
                        "settings": CROSS_TENANT_SETTINGS,
                    },
                ),
            ),
            sso=None,
        ),
        _App(
            "Google Workspace",
            (
                _job(
                    "gsuite",
                    "quarantine-escrow",
                    40 * MINUTE,
                    e - 25 * DAY,
                    3 * HOUR,
                    escrow_growth(e - 4 * DAY, 900, 400),
                    quarantined(
                        e - 20 * HOUR,
                        "EncounteredEscrowProportionThreshold",
                        ESCROW_THRESHOLD,
                        state="EntryLevelErrors",
                        escrow_base=41_500,
                    ),
                    population=20_000,
                    groups=600,
                ),
            ),
        ),
        _App(
            "Adobe Identity Management",
            (
                _job(
                    "adobeIdentityManagement",
                    "quarantine-unknown-reason",
                    40 * MINUTE,
                    e - 40 * DAY,
                    2 * HOUR,
                    quarantined(e - 6 * HOUR, "unknownFutureValue", FUTURE_ERROR),
                    population=700,
                ),
            ),
        ),
        _App(
            "Contoso Legacy HR Connector",
            (
                _job(
                    "customappsso",
                    "healthy-rare-exports",
                    40 * MINUTE,
                    e - 200 * DAY,
                    6 * HOUR,
                    escrow_rate=0.1,
                    export_rate=0.03,
                    population=15_000,
                    big_count_offset=2**32,
                    frac_digits=0,
                ),
            ),
        ),
        _App(
            "Contoso Sales Portal",
            (_job("scim", "healthy", 20 * MINUTE, e - 5 * DAY, HOUR, population=300, export_rate=0.5),),
        ),
        _microsoft("Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
        _microsoft("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
        _microsoft("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
        _microsoft("Microsoft Teams", "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"),
        _microsoft("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"),
        _App("DocuSign"),
        _App("Tableau Cloud"),
        _App("Fabrikam Partner Portal"),
        _App("Contoso Expenses", tagged=False, sso=None),
    )


def _service_principal(app: _App, tenant_id: str, ns: str) -> dict[str, Any]:
    # Microsoft's first-party app ids and gallery template ids are the same in every tenant;
    # object ids and the tenant's own app ids are not.
    app_id = app.app_id or stable_uuid(f"{ns}app:{app.name}")
    template = app.template_id or (stable_uuid(f"template:{app.name}") if app.tagged else None)
    return {
        "id": stable_uuid(f"{ns}sp:{app.name}"),
        "accountEnabled": True,
        "appDisplayName": app.name,
        "appId": app_id,
        "applicationTemplateId": template,
        "appOwnerOrganizationId": tenant_id if app.owner == DEMO_TENANT_ID else app.owner,
        "appRoleAssignmentRequired": app.tagged,
        "displayName": app.name,
        "preferredSingleSignOnMode": app.sso,
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs" if app.owner == MICROSOFT_TENANT_ID else "AzureADMyOrg",
        "tags": [INTEGRATED_APP_TAG] if app.tagged else [],
    }


def demo_tenant(seed: int = 1, now: float | None = None, tenant_id: str = DEMO_TENANT_ID) -> LivingTenant:
    """The demo tenant as of `now` (default: wall time); counts vary with `seed`.

    Another `tenant_id` gives the same cases under that tenant's own ids (service principals,
    their app ids, jobs), so tenants built with different ids never share an id.
    """
    epoch = int(time.time() if now is None else now) // 60 * 60
    apps = _apps(epoch)
    ns = "" if tenant_id == DEMO_TENANT_ID else f"{tenant_id}:"
    sps = [_service_principal(app, tenant_id, ns) for app in apps]
    profiles: list[tuple[JobProfile, ...]] = []
    n = 0
    for app in apps:
        built = []
        for job in app.jobs:
            built.append(
                JobProfile(
                    job_id=job_id(job.template_id, f"{ns}{app.name}/{job.template_id}", tenant_id),
                    template_id=job.template_id,
                    profile=job.profile,
                    interval=job.interval,
                    phases=job.phases,
                    initial_duration=job.initial,
                    seed=seed,
                    # 0-7 fractional digits across jobs, as Graph varies
                    **{"frac_digits": n % 8, **job.options},
                )
            )
            n += 1
        profiles.append(tuple(built))
    spec: dict[str, Any] = {"kind": "demo", "seed": seed}
    if tenant_id != DEMO_TENANT_ID:
        spec["tenantId"] = tenant_id
    return LivingTenant(tenant_id, sps, lambda i: profiles[i], spec, epoch)
