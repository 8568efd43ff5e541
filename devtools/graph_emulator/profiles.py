"""Building blocks for job timelines, shared by the demo and generated tenants.

`life()` starts a job with its long initial cycle followed by healthy incremental cycles; the
other helpers return the phases that can follow (escrow growth, failures, quarantine, pause).
`make_profile()` turns a profile name into a plausible timeline for generated tenants.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any

from .runs import DAY, HOUR, JobProfile, Phase

CLOUD_SYNC_TEMPLATE_ID = "1a4721b3-e57f-4451-ae87-ef078703ec94"
INTEGRATED_APP_TAG = "WindowsAzureActiveDirectoryIntegratedApp"
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
_IDS = uuid.UUID("0b8f5a52-8d0e-4d38-9f4c-4f1f2b6c7a10")


def _error(code: str, message: str, actionable: bool = True) -> Mapping[str, Any]:
    return {"code": code, "message": message, "tenantActionable": actionable}


SCIM_INCOMPATIBLE = _error(
    "SystemForCrossDomainIdentityManagementServiceIncompatible",
    'The SCIM endpoint\'s response to a GET of /Users?filter=userName eq "..." could not be '
    "understood (HTTP 200 with an unexpected schema). Check the app's SCIM implementation.",
)
AGENTS_UNAVAILABLE = _error(
    "HybridIdentityServiceAgentsUnavailable",
    "No active provisioning agent is available for the domain. Check that the agents are "
    "running and can reach the service.",
)
BAD_CREDENTIALS = _error(
    "SystemForCrossDomainIdentityManagementUnauthorized",
    "Failed to authenticate to the target application: the secret token was rejected "
    "(HTTP 401 Unauthorized). Update the admin credentials and test the connection.",
)
TOO_MANY_DELETES = _error(
    "TooManyDeletes",
    "The job was quarantined because the number of deletions in one cycle exceeded the "
    "accidental deletions threshold (QuarantineTooManyDeletesThreshold).",
)
ESCROW_THRESHOLD = _error(
    "EscrowThresholdExceeded",
    "Too many entries failed to provision (over 40 percent of the cycle's events).",
)
FUTURE_ERROR = _error(
    "SynchronizationTargetThrottledPermanently",
    "An error code this client has never seen: it must be kept as given.",
    actionable=False,
)


def job_id(template_id: str, name: str, tenant_id: str) -> str:
    """`<templateId>.<32 hex>.<tenant id>`, the shape of real job ids."""
    return f"{template_id}.{uuid.uuid5(_IDS, name).hex}.{tenant_id}"


def stable_uuid(name: str) -> str:
    return str(uuid.uuid5(_IDS, name))


def life(anchor: int, initial: int, *later: Phase, escrow_rate: float = 0.05) -> tuple[Phase, ...]:
    """Initial cycle at `anchor` lasting `initial` s, then healthy cycles, then `later` phases."""
    return (
        Phase("initial", anchor),
        Phase("periodic", anchor + initial + 300, escrow_rate=escrow_rate),
        *later,
    )


def escrow_growth(at: int, base: int, growth: int) -> Phase:
    return Phase("periodic", at, state="EntryLevelErrors", escrow_base=base, escrow_growth=growth)


def failing(at: int, error: Mapping[str, Any]) -> Phase:
    return Phase("periodic", at, state="Failed", error=error)


def quarantined(at: int, reason: str, error: Mapping[str, Any], state: str = "Failed", escrow_base: int = 0) -> Phase:
    # Escrow-threshold retries still end with entry-level errors, not a failed run.
    return Phase(
        "quarantine",
        at,
        state=state,
        error=error if state == "Failed" else None,
        escrow_base=escrow_base,
        reason=reason,
        quarantine_error=error,
    )


def paused(at: int) -> Phase:
    return Phase("paused", at)


def unknown_state(at: int, state: str = "PartialSuccess") -> Phase:
    return Phase("periodic", at, state=state, escrow_base=2)


# name: weight, for generated tenants
PROFILE_WEIGHTS: dict[str, float] = {
    "healthy": 60,
    "escrow-growing": 7,
    "failing": 5,
    "quarantine-credentials": 4,
    "quarantine-escrow": 2,
    "quarantine-deletes": 2,
    "paused": 5,
    "not-configured": 5,
    "not-run": 4,
    "initial-in-progress": 2,
    "partial-success": 2,
    "quarantine-unknown-reason": 2,
}
TEMPLATES = ("scim", "customappsso", "aws", "BoxOutDelta", "salesforce", "slack", "gsuite")


def make_profile(
    kind: str,
    *,
    job: str,
    template_id: str,
    epoch: int,
    rng: random.Random,
    seed: int,
) -> JobProfile:
    """A plausible timeline for profile `kind`, anchored days before `epoch`."""
    interval = rng.choice((20 * 60, 40 * 60, 40 * 60, 40 * 60))
    if template_id.startswith("AD2AAD"):
        interval = 2 * 60
    anchor = epoch - rng.randint(2 * DAY, 120 * DAY)
    initial = rng.randint(HOUR // 2, 12 * HOUR)
    hours_ago = rng.randint(2, 60) * HOUR
    later: tuple[Phase, ...] = ()
    never = ""
    if kind == "escrow-growing":
        later = (escrow_growth(epoch - hours_ago, rng.randint(5, 300), rng.randint(1, 40)),)
    elif kind == "failing":
        later = (failing(epoch - hours_ago // 4, rng.choice((SCIM_INCOMPATIBLE, AGENTS_UNAVAILABLE))),)
    elif kind == "quarantine-credentials":
        later = (
            failing(epoch - hours_ago - 2 * HOUR, BAD_CREDENTIALS),
            quarantined(epoch - hours_ago, "EncounteredQuarantineException", BAD_CREDENTIALS),
        )
    elif kind == "quarantine-escrow":
        later = (
            escrow_growth(epoch - hours_ago - DAY, 3000, 400),
            quarantined(
                epoch - hours_ago,
                rng.choice(("EncounteredEscrowProportionThreshold", "EncounteredTotalEscrowThreshold")),
                ESCROW_THRESHOLD,
                state="EntryLevelErrors",
                escrow_base=42_000,
            ),
        )
    elif kind == "quarantine-deletes":
        later = (quarantined(epoch - hours_ago, "TooManyDeletes", TOO_MANY_DELETES),)
    elif kind == "quarantine-unknown-reason":
        later = (quarantined(epoch - hours_ago, "unknownFutureValue", FUTURE_ERROR),)
    elif kind == "paused":
        later = (paused(epoch - hours_ago),)
    elif kind == "partial-success":
        later = (unknown_state(epoch - hours_ago),)
    elif kind in ("not-configured", "not-run"):
        never = "NotConfigured" if kind == "not-configured" else "NotRun"
    if kind == "initial-in-progress":
        anchor, initial = epoch - HOUR, rng.randint(3 * HOUR, 10 * HOUR)
    if later and later[0].start <= anchor + initial + 300:
        anchor = later[0].start - initial - DAY  # keep the history before the trouble
    return JobProfile(
        job_id=job,
        template_id=template_id,
        profile=kind,
        interval=interval,
        phases=() if never else life(anchor, initial, *later, escrow_rate=rng.choice((0.0, 0.05, 0.2))),
        population=rng.randint(20, 40_000),
        groups=rng.choice((0, 0, rng.randint(1, 500))),
        initial_duration=initial,
        run_seconds=(10, rng.randint(60, 900)),
        export_rate=rng.choice((0.05, 0.35, 0.8)),
        frac_digits=rng.randint(0, 7),
        escrows_pruned=rng.random() < 0.05,
        never_run_code=never or "NotRun",
        sentinel_last_success=bool(never) and rng.random() < 0.5,
        seed=seed,
    )
