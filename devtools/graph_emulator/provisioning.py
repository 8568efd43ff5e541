"""`GET /auditLogs/provisioning`: provisioningObjectSummary events derived from the tenant's jobs.

A living tenant's events come from its job runs (runs.py). Each run logs one event per
escrowed object (`failure`, at most `MAX_EVENTS_PER_RUN`, with a provisioning error code that
depends on the job's kind; an escrowed object keeps its code run after run), a sample of its
exports (`success`, at most `MAX_SUCCESSES_PER_RUN`), now and then a `warning`, and a few
import deltas that were not entitled (`skipped`, at most 2, rarely in a run without exports).
A run that fails as a whole (state `Failed`) logs no per-object events. Events are spread
over the run's span, so a running cycle's events appear as the clock passes them. Everything
is a function of the tenant and its seed: the same clock gives the same events.

A static tenant serves the list under its `provisioningEvents` key verbatim (filtered and paged).

A living tenant's log starts `HISTORY` (1 day) before the tenant was built, to keep a fresh
demo cheap (a PT2M cloud sync job runs 21,600 times in 30 days); it fills up as the clock runs.
Only events of the last `RETENTION` (30 days: the Azure portal keeps provisioning data for 30
days with a premium edition) are served. Filter grammar, order and paging: see `parse_filter`,
`ORDER` and `query`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import hashlib
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .clock import format_time
from .runs import DAY, JobProfile, Run, _run, _runs_before, _started
from .tenant import LivingTenant, TenantView

RETENTION = 30 * DAY
HISTORY = DAY  # runs logged before a living tenant was built; later runs are all logged
MAX_EVENTS_PER_RUN = 300  # failures (escrows) logged per run
MAX_SUCCESSES_PER_RUN = 5  # successes are a sample: the log would otherwise hold millions
MAX_SKIPPED_PER_RUN = 2
DEFAULT_TOP = 1000  # undocumented for this API; see docs/graph-emulator.md
MAX_TOP = 1000
SKIPTOKEN_PREFIX = "UFJPVg"  # base64 of "PROV"
_NAMESPACE = uuid.UUID("0b7e2a4e-61c5-4b0f-9d55-2f3e8b1c7a90")
_ACTIVITY_NAMESPACE = uuid.UUID("6f1c3c62-2f4e-4c55-9a57-3a1f0c1e5b7d")  # runs.py: activityIdentifier
AAD = "Azure Active Directory"  # the spelling of Microsoft's provisioningObjectSummary examples
SERVICE = {"id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"}

# Error codes from "Error codes" and "Error codes for cross-tenant synchronization" of the
# provisioning logs article (MicrosoftDocs/azure-docs, concept-provisioning-logs.md) and the
# Workday-to-AD troubleshooting table (SystemForCrossDomainIdentityManagementBadResponse).
# code -> (errorCategory, reason, recommendedAction)
ERRORS: dict[str, tuple[str, str, str | None]] = {
    "EntryConflict": (
        "nonServiceFailure",
        "The target application returned a conflict: an object with the same matching attribute already exists.",
        "Correct the conflicting attribute values in either Microsoft Entra ID or the application, "
        "or review your matching attribute configuration.",
    ),
    "SystemForCrossDomainIdentityManagementBadResponse": (
        "nonServiceFailure",
        "The target system returned an error response: a value in the request is invalid.",
        "Check the export event for the value of the attribute the error names.",
    ),
    "SystemForCrossDomainIdentityManagementServiceIncompatible": (
        "nonServiceFailure",
        "The provisioning service is unable to parse the response from the third party application.",
        "Work with the application developer to ensure that the SCIM server is compatible.",
    ),
    "MandatoryFieldsMissing": (
        "nonServiceFailure",
        "The object couldn't be created because required values are missing.",
        "Correct the missing attribute values in the source record.",
    ),
    "DuplicateTargetEntries": (
        "nonServiceFailure",
        "More than one object in the target application was found with the configured matching attributes.",
        "Remove the duplicate object from the target application, or reconfigure your attribute mappings.",
    ),
    "DuplicateSourceEntries": (
        "nonServiceFailure",
        "More than one object was found with the configured matching attributes.",
        "Remove the duplicate object, or reconfigure your attribute mappings.",
    ),
    "LicenseLimitExceeded": (
        "nonServiceFailure",
        "There are no available licenses for this user in the target application.",
        "Procure more licenses for the target application, or review your user assignments.",
    ),
    "InvalidAnchor": (
        "nonServiceFailure",
        "An object that was previously created or matched by the provisioning service no longer exists.",
        "Ensure that the object exists; restart the job to force a new matching of all objects.",
    ),
    "TooManyRequests": (
        "failure",
        "The target app rejected this attempt because it is overloaded and receiving too many requests.",
        None,
    ),
    "Timeout": ("failure", "The target application took too long to respond.", None),
    "AzureActiveDirectoryCannotUpdateObjectsOriginatedInExternalService": (
        "nonServiceFailure",
        "The synchronization engine could not update one or more user properties in the target tenant "
        "(Source of Authority enforcement).",
        "Update the property directly in the target tenant.",
    ),
    "AzureDirectoryB2BManagementPolicyCheckFailure": (
        "nonServiceFailure",
        "The cross-tenant synchronization policy allowing automatic redemption failed.",
        "Ensure that the automatic redemption setting has been enabled for both the source and target tenants.",
    ),
    "AzureActiveDirectoryQuotaLimitExceeded": (
        "nonServiceFailure",
        "The number of objects in the tenant exceeds the directory limit.",
        "Check whether the quota can be increased.",
    ),
    "EntrySynchronizationSkipped": (
        "nonServiceFailure",
        "The object was not provisioned: it is out of scope, or already exists in the target with no changes.",
        None,
    ),
}
_OUTBOUND_CODES = (
    "SystemForCrossDomainIdentityManagementBadResponse",
    "EntryConflict",
    "MandatoryFieldsMissing",
    "DuplicateTargetEntries",
    "LicenseLimitExceeded",
    "TooManyRequests",
    "Timeout",
    "SystemForCrossDomainIdentityManagementServiceIncompatible",
)
_INBOUND_CODES = ("DuplicateSourceEntries", "MandatoryFieldsMissing", "InvalidAnchor", "EntryConflict")
_CROSS_TENANT_CODES = (
    "AzureActiveDirectoryCannotUpdateObjectsOriginatedInExternalService",
    "AzureDirectoryB2BManagementPolicyCheckFailure",
    "AzureActiveDirectoryQuotaLimitExceeded",
)
STATUSES = ("success", "warning", "failure", "skipped")


@dataclass(slots=True)
class Event:
    """One provisioning event, compact; `materialise` gives its Graph JSON."""

    at: int  # epoch seconds of activityDateTime
    id: str
    job_id: str
    sp_id: str
    status: str
    sp_index: int = -1
    job_index: int = -1
    run_begin: int = 0
    cycle_id: str = ""
    n: int = 0  # the object's number: stable across runs for escrowed objects
    action: str = "other"
    code: str | None = None
    raw: Mapping[str, Any] | None = None  # a static tenant's event, served verbatim


def _direction(template_id: str) -> str:
    if template_id.startswith("Azure2Azure"):
        return "cross-tenant"
    if template_id.startswith(("AD2AAD", "API2AAD")) or "2AAD" in template_id or "Workday" in template_id:
        return "inbound"
    return "outbound"


def _uid(text: str) -> str:
    """A GUID-shaped id derived from `text` (blake2b: uuid5 is too slow for 10^5 events)."""
    h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


@functools.lru_cache(maxsize=4096)
def _codes_of(key: int, template_id: str) -> tuple[str, ...]:
    direction = _direction(template_id)
    pool = {"cross-tenant": _CROSS_TENANT_CODES, "inbound": _INBOUND_CODES}.get(direction, _OUTBOUND_CODES)
    rng = random.Random(key ^ 0xC0DE)
    return tuple(rng.sample(pool, min(len(pool), 2 + key % 2)))


def _codes(profile: JobProfile) -> tuple[str, ...]:
    """The two or three error codes this job's objects fail with, most frequent first."""
    return _codes_of(profile.key, profile.template_id)


def _code_for(profile: JobProfile, n: int) -> str:
    """An escrowed object keeps its error code run after run (70 % the job's first code)."""
    codes = _codes(profile)
    mixed = ((profile.key ^ (n * 2_654_435_761)) * 0x9E3779B1) & 0xFFFFFFFF
    pick = (mixed >> 8) / (1 << 24)
    return codes[0] if pick < 0.7 or len(codes) == 1 else codes[1 + (mixed & 0xFF) % (len(codes) - 1)]


def _run_events(profile: JobProfile, sp_id: str, sp_index: int, job_index: int, run: Run) -> list[Event]:
    if run.state == "Failed":
        return []
    counts = run.counts
    rng = random.Random(profile.key ^ (run.begin * 31 + 0x5EED))
    exported = min(counts["countExported"], MAX_SUCCESSES_PER_RUN)
    escrowed = min(counts["countEscrowed"], MAX_EVENTS_PER_RUN)
    skipped = min(max(0, counts["countImportedDeltas"] - counts["countEntitled"]), MAX_SKIPPED_PER_RUN)
    if not exported and not escrowed and rng.random() < 0.9:
        skipped = 0  # most quiet runs log nothing
    warned = 1 if exported and rng.random() < 0.05 else 0
    kinds = ["success"] * (exported - warned) + ["warning"] * warned + ["failure"] * escrowed + ["skipped"] * skipped
    rng.shuffle(kinds)
    total = len(kinds)
    if not total:
        return []
    span = max(1, run.end - run.begin)
    began = format_time(run.begin, run.begin_ticks, 7)
    cycle = str(uuid.uuid5(_ACTIVITY_NAMESPACE, f"{profile.job_id}:{began}"))
    initial = profile.phases[run.phase].kind == "initial"
    events: list[Event] = []
    seen = {"success": 0, "warning": 0, "failure": 0, "skipped": 0}
    for i, status in enumerate(kinds):
        number = seen[status]
        seen[status] += 1
        if status == "failure":
            n = number  # the same objects stay in escrow run after run
            action = "create" if initial or rng.random() < 0.4 else "update"
            code: str | None = _code_for(profile, n)
        else:
            n = 100_000 + rng.randrange(max(1, profile.population))
            roll = rng.random()
            action = (
                "other"
                if status == "skipped"
                else "create"
                if initial or roll < 0.2
                else "disable"
                if roll < 0.25
                else "delete"
                if roll < 0.28
                else "update"
            )
            code = (
                "EntrySynchronizationSkipped"
                if status == "skipped"
                else (_codes(profile)[0] if status == "warning" else None)
            )
        events.append(
            Event(
                at=run.begin + (i + 1) * span // (total + 1),
                id=_uid(f"{profile.job_id}:{cycle}:{status}:{number}"),
                job_id=profile.job_id,
                sp_id=sp_id,
                status=status,
                sp_index=sp_index,
                job_index=job_index,
                run_begin=run.begin,
                cycle_id=cycle,
                n=n,
                action=action,
                code=code,
            )
        )
    return events


def _runs_from(profile: JobProfile, low: int, high: int) -> Iterator[Run]:
    """Runs that began in (low - a run's length, high] and did not end before `low`."""
    for p, phase in enumerate(profile.phases):
        started = _started(profile, p, high)
        if started == 0:
            continue
        base = _runs_before(profile, p)
        first = 0
        if phase.kind == "periodic" and low > phase.start:
            first = max(0, (low - phase.start) // profile.interval - 1)
        for j in range(first, started):
            run = _run(profile, p, j, base + j)
            if run.end >= low:
                yield run


class _JobLog:
    """A job's events, extended as the clock passes; sorted by time."""

    def __init__(self, profile: JobProfile, sp_id: str, sp_index: int, job_index: int) -> None:
        self.profile, self.sp_id, self.sp_index, self.job_index = profile, sp_id, sp_index, job_index
        self.low: int | None = None
        self.high: int | None = None
        self.events: list[Event] = []
        self.times: list[int] = []

    def window(self, low: int, high: int) -> list[Event]:
        if self.low is None or self.high is None or low < self.low:
            self.low, self.high, self.events = low, low, []
            self._extend(low, high, include_begun_at_low=True)
        elif high > self.high:
            self._extend(self.high, high, include_begun_at_low=False)
        start = bisect.bisect_left(self.times, low)
        end = bisect.bisect_right(self.times, high)
        return self.events[start:end]

    def _extend(self, low: int, high: int, include_begun_at_low: bool) -> None:
        fresh: list[Event] = []
        for run in _runs_from(self.profile, low, high):
            if not include_begun_at_low and run.begin <= low:
                continue  # already logged in full
            fresh.extend(_run_events(self.profile, self.sp_id, self.sp_index, self.job_index, run))
        self.events.extend(fresh)
        self.events.sort(key=lambda event: (event.at, event.id))
        self.times = [event.at for event in self.events]
        self.high = max(self.high or high, high)


def parse_time(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 instant (`Z`, an offset, or none: UTC), or None."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# Job logs outlive a tenant swap: a demo rebuilt with the same clock (every test does that) has
# the same timelines, so its events are not computed again. Keyed by the profile's repr.
_SHARED: dict[tuple[str, str, int, int], _JobLog] = {}
_SHARED_MAX = 512
_LOCK = threading.Lock()


class ProvisioningLog:
    """The events of one tenant (rebuilt when the tenant is swapped)."""

    def __init__(self, tenant: TenantView, raw_events: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.tenant = tenant
        self._jobs: dict[tuple[int, int], _JobLog] = {}
        self._static: list[Event] = []
        for raw in raw_events or []:
            at = parse_time(str(raw.get("activityDateTime", "")))
            status_info = raw.get("provisioningStatusInfo") or {}
            sp = raw.get("servicePrincipal") or {}
            self._static.append(
                Event(
                    at=int(at) if at is not None else 0,
                    id=str(raw.get("id", "")),
                    job_id=str(raw.get("jobId", "")),
                    sp_id=str(sp.get("id", "") if isinstance(sp, Mapping) else ""),
                    status=str(status_info.get("status", "") if isinstance(status_info, Mapping) else ""),
                    raw=raw,
                )
            )
        self._static.sort(key=lambda event: (event.at, event.id))

    def events(self, now: float, job_id: str | None = None, sp_id: str | None = None) -> list[Event]:
        """Events served at `now`, oldest first; narrowed to one job / SP when given (cheaply)."""
        high = int(now)
        low = high - RETENTION
        if not isinstance(self.tenant, LivingTenant):
            return [e for e in self._static if low <= e.at <= high]
        low = max(low, self.tenant.built_at - HISTORY)
        found: list[Event] = []
        with _LOCK:
            for i, sp in enumerate(self.tenant.service_principals()):
                if sp_id is not None and str(sp["id"]) != sp_id:
                    continue
                for k, profile in enumerate(self.tenant.profiles(i)):
                    if job_id is not None and profile.job_id != job_id:
                        continue
                    log = self._jobs.get((i, k))
                    if log is None:
                        shared = (repr(profile), str(sp["id"]), i, k)
                        log = _SHARED.get(shared)
                        if log is None:
                            if len(_SHARED) >= _SHARED_MAX:
                                _SHARED.clear()
                            log = _SHARED[shared] = _JobLog(profile, str(sp["id"]), i, k)
                        self._jobs[(i, k)] = log
                    found.extend(log.window(low, high))
        found.sort(key=lambda event: (event.at, event.id))
        return found

    def summary(self, event: Event) -> dict[str, Any]:
        """The fields tests compare on, cheaply (the full JSON of 10^5 events takes seconds)."""
        if event.raw is not None:
            raw = self.materialise(event)
            info = (raw.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
            cycle = str(raw.get("cycleId", ""))
        else:
            info, cycle = {"errorCode": event.code}, event.cycle_id
        return {
            "id": event.id,
            "activityDateTime": format_time(event.at, 0, 0),
            "jobId": event.job_id,
            "servicePrincipalId": event.sp_id,
            "cycleId": cycle,
            "status": event.status,
            "errorCode": info.get("errorCode"),
        }

    def materialise(self, event: Event) -> dict[str, Any]:
        if event.raw is not None:
            return dict(event.raw)
        assert isinstance(self.tenant, LivingTenant)
        sp = self.tenant.service_principals()[event.sp_index]
        profile = self.tenant.profiles(event.sp_index)[event.job_index]
        return _event_json(event, profile, sp, self.tenant.tenant_id)


def _event_json(event: Event, profile: JobProfile, sp: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    mixed = int(event.id[:8], 16)
    app = str(sp.get("displayName") or "")
    direction = _direction(profile.template_id)
    kind = "Group" if event.status != "failure" and mixed % 100 < 8 else "User"
    name = f"{kind} {event.n:06d}"
    source_id = _uid(f"{profile.job_id}:source:{kind}:{event.n}")
    target_id = _uid(f"{profile.job_id}:target:{kind}:{event.n}")
    sp_system = {
        "id": _uid(f"system:{sp['id']}"),
        "displayName": app,
        "details": {
            "ApplicationId": sp.get("appId"),
            "ServicePrincipalId": sp["id"],
            "ServicePrincipalDisplayName": app,
        },
    }
    aad = {"id": _uid(f"aad:{tenant_id}"), "displayName": AAD, "details": {}}
    source, target = (sp_system, aad) if direction == "inbound" else (aad, sp_system)
    if direction == "cross-tenant":
        target = {**aad, "id": _uid(f"aad:{sp['id']}"), "details": sp_system["details"]}
    verb = {"create": "Add", "delete": "Delete", "disable": "Update", "update": "Update"}.get(event.action, "Skipped")
    steps = [
        {
            "name": f"EntryImport{verb if verb != 'Skipped' else ''}",
            "provisioningStepType": "import",
            "status": "success",
            "description": f"Received {kind} '{name}' change of type ({verb}) from {source['displayName']}",
            "details": {},
        }
    ]
    if event.status == "skipped":
        steps.append(
            {
                "name": "EntrySynchronizationSkipped",
                "provisioningStepType": "scoping",
                "status": "skipped",
                "description": f"{kind} '{name}' will be skipped: it is not in scope",
                "details": {},
            }
        )
    else:
        steps.append(
            {
                "name": f"EntrySynchronization{verb}",
                "provisioningStepType": "matching",
                "status": "success",
                "description": f"{kind} '{name}' will be {event.action}d in {target['displayName']}",
                "details": {},
            }
        )
        export_status = {"failure": "failure", "warning": "warning"}.get(event.status, "success")
        steps.append(
            {
                "name": f"EntryExport{verb}",
                "provisioningStepType": "export",
                "status": export_status,
                "description": (
                    f"Failed to {event.action} {kind} '{name}' in {target['displayName']}"
                    if event.status == "failure"
                    else f"{kind} '{name}' was {event.action}d in {target['displayName']}"
                ),
                "details": {"ReportableIdentifier": name},
            }
        )
    error = None
    if event.code is not None:
        category, reason, action = ERRORS[event.code]
        error = {
            "errorCode": event.code,
            "reason": reason,
            "additionalDetails": None,
            "errorCategory": category,
            "recommendedAction": action,
        }
    modified = (
        []
        if event.status == "skipped"
        else [
            {"displayName": "objectId", "oldValue": None, "newValue": source_id},
            {"displayName": "displayName", "oldValue": None, "newValue": name},
            {
                "displayName": "accountEnabled",
                "oldValue": None,
                "newValue": "False" if event.action == "disable" else "True",
            },
        ]
    )
    return {
        "id": event.id,
        "activityDateTime": format_time(event.at, 0, 0),
        "tenantId": tenant_id,
        "jobId": profile.job_id,
        "cycleId": event.cycle_id,
        "changeId": _uid(f"change:{event.id}"),
        "provisioningAction": event.action,
        "durationInMilliseconds": 150 + mixed % 5851,
        "sourceSystem": source,
        "targetSystem": target,
        "initiatedBy": dict(SERVICE),
        "servicePrincipal": {"id": sp["id"], "displayName": app},
        "sourceIdentity": {"id": source_id, "displayName": name, "identityType": kind, "details": {}},
        "targetIdentity": {
            "id": "" if event.status == "failure" and event.action == "create" else target_id,
            "displayName": "" if event.status == "failure" and event.action == "create" else name,
            "identityType": kind,
            "details": {},
        },
        "provisioningStatusInfo": {"status": event.status, "errorInformation": error},
        "provisioningSteps": steps,
        "modifiedProperties": modified,
    }


# ---- $filter ---------------------------------------------------------------------------------

Predicate = Callable[[Event], bool]
_EQ_FIELDS: dict[str, Callable[[Event], str]] = {
    "jobid": lambda e: e.job_id,
    "serviceprincipal/id": lambda e: e.sp_id,
    "provisioningstatusinfo/status": lambda e: e.status,
}
_TOKEN = re.compile(
    r"""\s*(?:(?P<open>\()|(?P<close>\))|(?P<str>'(?:[^']|'')*')
    |(?P<word>[A-Za-z_][A-Za-z0-9_/]*)|(?P<time>\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)?))""",
    re.VERBOSE,
)
_TIME_OPS: dict[str, Callable[[int, int], bool]] = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


class FilterError(ValueError):
    pass


@dataclass
class Filter:
    predicate: Predicate
    job_id: str | None = None  # set when the filter pins one job (and-ed at top level)
    sp_id: str | None = None


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"Invalid filter clause: unexpected text at position {pos}.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse_filter(text: str) -> Filter:
    """`and`, `or` and parentheses over `jobId eq '..'`, `servicePrincipal/id eq '..'`,
    `provisioningStatusInfo/status eq '..'` and `activityDateTime eq|gt|ge|lt|le <DateTimeOffset>`.
    Values compare case-sensitively (the docs: "The filters are all case sensitive")."""
    tokens = _tokens(text)
    pos = 0
    pins: dict[str, str] = {}

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("Invalid filter clause: the expression ended early.")
        pos += 1
        return tokens[pos - 1]

    def is_word(token: tuple[str, str] | None, word: str) -> bool:
        return token is not None and token[0] == "word" and token[1].lower() == word

    def clause(top: bool) -> Predicate:
        token = take()
        if token[0] == "open":
            inner = disjunction(False)
            if take()[0] != "close":
                raise FilterError("Invalid filter clause: unbalanced parentheses.")
            return inner
        if token[0] != "word":
            raise FilterError(f"Invalid filter clause: unexpected '{token[1]}'.")
        name = token[1].lower()
        op = take()
        if op[0] != "word":
            raise FilterError(f"Invalid filter clause: expected an operator after '{token[1]}'.")
        operator = op[1].lower()
        value = take()
        if name == "activitydatetime" and operator in _TIME_OPS:
            raw = value[1].strip("'") if value[0] in ("time", "str") else None
            when = parse_time(raw) if raw else None
            if when is None:
                raise FilterError(f"Invalid filter clause: '{value[1]}' is not a DateTimeOffset.")
            compare = _TIME_OPS[operator]
            return lambda e: compare(e.at, when)
        if name in _EQ_FIELDS and operator == "eq" and value[0] == "str":
            wanted = value[1][1:-1].replace("''", "'")
            if top and name in ("jobid", "serviceprincipal/id"):
                pins[name] = wanted
            get = _EQ_FIELDS[name]
            return lambda e: get(e) == wanted
        raise FilterError(
            f"Invalid filter clause: '{token[1]} {op[1]} {value[1]}' is not supported by the emulator "
            "(jobId, servicePrincipal/id, provisioningStatusInfo/status: eq; activityDateTime: eq, gt, ge, lt, le)."
        )

    def conjunction(top: bool) -> Predicate:
        parts = [clause(top)]
        while is_word(peek(), "and"):
            take()
            parts.append(clause(top))
        return parts[0] if len(parts) == 1 else lambda e: all(p(e) for p in parts)

    def disjunction(top: bool) -> Predicate:
        start = len(pins)
        parts = [conjunction(top)]
        while is_word(peek(), "or"):
            take()
            parts.append(conjunction(False))
        if len(parts) > 1 and top and len(pins) > start:
            pins.clear()  # `jobId eq 'a' or ...` pins nothing
        return parts[0] if len(parts) == 1 else lambda e: any(p(e) for p in parts)

    if not tokens:
        raise FilterError("Invalid filter clause: the filter is empty.")
    predicate = disjunction(True)
    if pos != len(tokens):
        raise FilterError(f"Invalid filter clause: unexpected '{tokens[pos][1]}'.")
    return Filter(predicate, pins.get("jobid"), pins.get("serviceprincipal/id"))


# ---- paging --------------------------------------------------------------------------------


def encode_skiptoken(as_of: int, at: int, event_id: str) -> str:
    raw = json.dumps({"asOf": as_of, "at": at, "id": event_id}, separators=(",", ":")).encode()
    return SKIPTOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str) -> tuple[int, int, str] | None:
    if not token.startswith(SKIPTOKEN_PREFIX):
        return None
    body = token[len(SKIPTOKEN_PREFIX) :]
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        as_of, at, event_id = raw["asOf"], raw["at"], raw["id"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    if not isinstance(as_of, int) or not isinstance(at, int) or not isinstance(event_id, str):
        return None
    return as_of, at, event_id


def page(
    events: list[Event], descending: bool, top: int, after: tuple[int, str] | None
) -> tuple[list[Event], Event | None]:
    """One page of `events` (oldest first) in the requested order, after the keyset `after`;
    and the page's last event when more follow."""
    if descending:
        ordered: Sequence[Event] = events[::-1]
        if after is not None:
            ordered = [e for e in ordered if (e.at, e.id) < after]
    else:
        ordered = events
        if after is not None:
            ordered = [e for e in ordered if (e.at, e.id) > after]
    chunk = list(ordered[:top])
    return chunk, (chunk[-1] if len(ordered) > top else None)
