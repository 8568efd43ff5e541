"""`GET /api/v1/metrics` as text: the metric families of the monitor's stored state, and their
rendering in the Prometheus text format 0.0.4 or OpenMetrics 1.0.0. Pure: the route
(`routes/metrics.py`) reads each tenant's jobs, polls and alerts; this module counts and writes.

Every family is a gauge (the monitor's own `entra_sync_monitor_info` is an info in
OpenMetrics): the figures are states and ages as stored, so any instance answers the same.
A state set (a job's health, its last run, a poll's status, a tenant's state) is one sample
per possible value, 1 for the current one and 0 for the others; it is typed gauge, not
OpenMetrics' stateset, so that its label (`health`, `state`, `status`) and so every query read
the same whichever format Prometheus negotiated. docs/metrics.md lists the families.

Labels are bounded and name no person: tenant and job ids, the service principal's display
name (an application's), Graph's template id, and the closed vocabularies of the state sets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from shared.alerts.records import SEVERITIES
from shared.domain.health import quarantine_since
from shared.domain.model import HEALTH_VALUES, Job
from shared.domain.tenants import TenantState
from shared.domain.timestamps import parse_timestamp

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_FORMAT = "application/openmetrics-text; version=1.0.0; charset=utf-8"

JOB_LABELS = ("tenant", "service_principal_id", "service_principal_name", "job_id", "template")
RUN_STATES = ("Succeeded", "Failed", "EntryLevelErrors", "unknown")
POLL_STATUSES = ("succeeded", "partial", "failed", "unknown", "none")
TENANT_STATES: tuple[str, ...] = get_args(TenantState)

Kind = Literal["gauge", "info"]


@dataclass(frozen=True)
class Family:
    """One metric family: its name, HELP text, type, unit (OpenMetrics' `# UNIT`) and samples
    (labels, value)."""

    name: str
    help: str
    kind: Kind = "gauge"
    unit: str = ""
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: Mapping[str, str], value: float) -> None:
        self.samples.append((dict(labels), value))

    def add_states(self, labels: Mapping[str, str], name: str, states: Sequence[str], current: str) -> None:
        """A state set: one sample per state, 1 for `current` and 0 for the others."""
        for state in states:
            self.add({**labels, name: state}, 1 if state == current else 0)


@dataclass(frozen=True)
class TenantFigures:
    """What the route read of one tenant: its jobs with health as of the answer's minute, its
    last poll and last successful (or partial) poll records, its open alerts and its state."""

    tenant_id: str
    state: str
    jobs: Sequence[Job]
    last_poll: Mapping[str, Any] | None
    last_successful_poll: Mapping[str, Any] | None
    open_alerts: Sequence[Mapping[str, Any]]


def _age(since: object, now: datetime) -> float | None:
    began = parse_timestamp(since)
    return max(0.0, (now - began).total_seconds()) if began is not None else None


def _job_labels(tenant_id: str, job: Job) -> dict[str, str]:
    return {
        "tenant": tenant_id,
        "service_principal_id": job["servicePrincipalId"],
        "service_principal_name": job.get("servicePrincipalName") or "",
        "job_id": job["jobId"],
        "template": job.get("templateId") or "",
    }


def metric_families(tenants: Iterable[TenantFigures], now: datetime, version: str) -> list[Family]:
    """Every family, in a fixed order, with the samples of each tenant's figures; ages are
    seconds before `now`, never negative."""
    health = Family(
        "entra_sync_job_health",
        "The job's health as the API computes it (docs/health.md): 1 for its current value, 0 for the others.",
    )
    escrowed = Family(
        "entra_sync_job_escrowed",
        "countEscrowed of the job's last run: entries held back for retry. Absent when Graph reports no last run.",
    )
    since_success = Family(
        "entra_sync_job_last_success_age_seconds",
        "Seconds since lastSuccessfulExecution.timeEnded. Absent when the job has never succeeded.",
        unit="seconds",
    )
    quarantine_age = Family(
        "entra_sync_job_quarantine_age_seconds",
        "Seconds since the job's quarantine series began (seriesBegan, else currentBegan). "
        "Absent when the job is not quarantined, or its quarantine reports no start.",
        unit="seconds",
    )
    last_run = Family(
        "entra_sync_job_last_run_state",
        "The state of the job's last run (Succeeded, Failed, EntryLevelErrors; unknown when there is none or "
        "Graph sent another): 1 for the current one.",
    )
    by_health = Family("entra_sync_tenant_jobs_by_health", "The tenant's jobs by health.")
    by_code = Family("entra_sync_tenant_jobs_by_status_code", "The tenant's jobs by Graph's status code.")
    quarantined = Family("entra_sync_tenant_quarantined_jobs", "The tenant's jobs quarantined now.")
    alerts = Family("entra_sync_tenant_open_alerts", "The tenant's open alerts by severity (docs/alerts.md).")
    tenant_state = Family(
        "entra_sync_tenant_state",
        "What the tenant's last poll says of it, as GET /api/v1/tenants (consentMissing, throttled, ...): "
        "1 for its current state.",
    )
    poll_age = Family(
        "entra_sync_monitor_last_successful_poll_age_seconds",
        "Seconds since the tenant's last successful or partial poll ended. Absent before the first.",
        unit="seconds",
    )
    poll_status = Family(
        "entra_sync_monitor_last_poll_status",
        "The status of the tenant's last poll: 1 for its current status; none before the first.",
    )
    info = Family("entra_sync_monitor", "The monitor's version.", kind="info")
    info.add({"version": version}, 1)

    for figures in tenants:
        tenant = {"tenant": figures.tenant_id}
        for job in sorted(figures.jobs, key=lambda j: (j["servicePrincipalId"], j["jobId"])):
            labels = _job_labels(figures.tenant_id, job)
            health.add_states(labels, "health", HEALTH_VALUES, job["health"])
            last: Mapping[str, Any] = job.get("lastExecution") or {}
            count = last.get("countEscrowed")
            if count is not None:
                escrowed.add(labels, count)
            success: Mapping[str, Any] = job.get("lastSuccessfulExecution") or {}
            succeeded = _age(success.get("timeEnded"), now)
            if succeeded is not None:
                since_success.add(labels, succeeded)
            began = quarantine_since(job.get("quarantine") or {}) if job["health"] == "quarantined" else None
            in_quarantine = _age(began, now)
            if in_quarantine is not None:
                quarantine_age.add(labels, in_quarantine)
            state = last.get("state")
            last_run.add_states(labels, "state", RUN_STATES, state if state in RUN_STATES else "unknown")
        for value in HEALTH_VALUES:
            by_health.add({**tenant, "health": value}, sum(1 for job in figures.jobs if job["health"] == value))
        codes: dict[str, int] = {}
        for job in figures.jobs:
            code = job.get("statusCode") or "unknown"
            codes[code] = codes.get(code, 0) + 1
        for code, count in sorted(codes.items()):
            by_code.add({**tenant, "status_code": code}, count)
        quarantined.add(tenant, sum(1 for job in figures.jobs if job["health"] == "quarantined"))
        for severity in SEVERITIES:
            count = sum(1 for alert in figures.open_alerts if alert["severity"] == severity)
            alerts.add({**tenant, "severity": severity}, count)
        tenant_state.add_states(tenant, "state", TENANT_STATES, figures.state)
        ended = _age((figures.last_successful_poll or {}).get("endedAt"), now)
        if ended is not None:
            poll_age.add(tenant, ended)
        status = str(figures.last_poll["status"]) if figures.last_poll else "none"
        poll_status.add_states(tenant, "status", POLL_STATUSES, status if status in POLL_STATUSES else "unknown")

    return [
        health,
        escrowed,
        since_success,
        quarantine_age,
        last_run,
        by_health,
        by_code,
        quarantined,
        alerts,
        tenant_state,
        poll_age,
        poll_status,
        info,
    ]


# ---------------------------------------------------------------- the text


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed, escaped as both formats require."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str, *, openmetrics: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if openmetrics else escaped


def _value(value: float) -> str:
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 3))


def render(families: Iterable[Family], *, openmetrics: bool = False) -> str:
    """The exposition: HELP and TYPE (and with OpenMetrics UNIT) for every family, even one with
    no samples, then its samples; OpenMetrics ends with `# EOF`."""
    lines: list[str] = []
    for family in families:
        # An info family is named without its `_info` suffix in OpenMetrics; the text format
        # has no info type, so there it is a gauge under the sample's name.
        sample_name = f"{family.name}_info" if family.kind == "info" else family.name
        name = family.name if openmetrics else sample_name
        kind = family.kind if openmetrics else "gauge"
        lines.append(f"# HELP {name} {_escape_help(family.help, openmetrics=openmetrics)}")
        lines.append(f"# TYPE {name} {kind}")
        if openmetrics and family.unit:
            lines.append(f"# UNIT {name} {family.unit}")
        for labels, value in family.samples:
            pairs = ",".join(f'{key}="{escape_label_value(text)}"' for key, text in labels.items())
            lines.append(f"{sample_name}{{{pairs}}} {_value(value)}" if pairs else f"{sample_name} {_value(value)}")
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def wants_openmetrics(accept: str | None) -> bool:
    """True when Accept ranks OpenMetrics (1.x or no version) at least as high as the text
    format, as Prometheus asks by default; without Accept, the text format."""
    openmetrics = text = 0.0
    for item in (accept or "").split(","):
        media, *parameters = (part.strip() for part in item.split(";"))
        options = {name.strip().lower(): value.strip() for name, _, value in (p.partition("=") for p in parameters)}
        try:
            q = float(options.get("q", "1"))
        except ValueError:
            q = 0.0
        media = media.lower()
        if media == "application/openmetrics-text" and options.get("version", "1").startswith("1"):
            openmetrics = max(openmetrics, q)
        elif media in ("text/plain", "text/*", "*/*"):
            text = max(text, q)
    return openmetrics > 0 and openmetrics >= text
