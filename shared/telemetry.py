"""OpenTelemetry: each poll as a trace and its outcome as metrics, sent to Application Insights.

Configured once per process, lazily, by the timer and queue triggers' work and the local
commands (`configure_telemetry`), never at import and never on the HTTP path: nothing here
imports the OpenTelemetry SDK or the Azure Monitor distro until then (cold start,
tests/app/test_cold_start.py). Without `APPLICATIONINSIGHTS_CONNECTION_STRING` nothing is
configured and every span and instrument below is the OpenTelemetry API's no-op.

The app sends spans and metrics only; the Functions host keeps logging requests and relaying
the worker's log lines (docs/telemetry.md says who sends what). Recording never raises: a
telemetry fault is logged and the poll goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.domain.model import HEALTH_VALUES

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

log = logging.getLogger("entra_sync_monitor.telemetry")

NAME = "entra_sync_monitor"  # the tracer's and the meter's
POLL_SPAN = "poll"
WORK_ITEM_SPAN = "work item"
# The alert vocabulary (shared/alerts/records.py), repeated: the alerts room is not ours to import.
SEVERITIES = ("critical", "error", "warning", "info")
# The distro's instrumentations that would duplicate what the host or this module records:
# FastAPI requests are the host's; Graph's HTTP attempts are spanned by shared/graph/counting.py.
# Only the Azure SDK's own tracing (Table Storage) stays on.
_INSTRUMENTATIONS_OFF = ("django", "fastapi", "flask", "httpx", "psycopg2", "requests", "urllib", "urllib3")
# The Graph SDK's own spans (kiota): eight a request, with the full URL; ours say it once.
_QUIET_SCOPES = ("kiota",)

P = ParamSpec("P")

_lock = threading.Lock()
_configured: bool | None = None
_open_poll: ContextVar[trace.Span | None] = ContextVar("open_poll_span", default=None)


# ---------------------------------------------------------------- configuration


def configure_telemetry(environ: Mapping[str, str] | None = None) -> bool:
    """Send traces and metrics to Application Insights, once per process, when
    `APPLICATIONINSIGHTS_CONNECTION_STRING` is set; True when they are sent. A failure to
    configure is logged, never raised: the poll does not depend on its telemetry."""
    global _configured
    env = os.environ if environ is None else environ
    with _lock:
        if _configured is not None:
            return _configured
        connection_string = (env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip()
        if not connection_string:
            _configured = False
            return False
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor

            # The distro (1.8.11) overwrites its `disable_logging` argument with what
            # OTEL_LOGS_EXPORTER says: "none" is the only way to keep it from sending the
            # log lines the host relays already (an operator's own value is kept).
            os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
            configure_azure_monitor(
                connection_string=connection_string,
                credential=entra_credential(env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")),
                # The host relays the worker's log lines already: sent here too, each would be twice.
                disable_logging=True,
                enable_live_metrics=False,
                # Every poll's trace whole. The distro's default limits spans per second, which
                # cuts a poll's trace short after its first few dozen spans (OTEL_TRACES_SAMPLER
                # and OTEL_TRACES_SAMPLER_ARG still override this; docs/telemetry.md).
                sampling_ratio=1.0,
                instrumentation_options={name: {"enabled": False} for name in _INSTRUMENTATIONS_OFF},
            )
            provider = trace.get_tracer_provider()
            if hasattr(provider, "sampler"):
                adapt_tracer_provider(provider)  # type: ignore[arg-type]
            _configured = True
        except Exception as error:  # a broken distro or setting: the poll runs without telemetry
            log.warning("telemetry not configured: %s", type(error).__name__)
            _configured = False
        return _configured


def entra_credential(authentication: str | None) -> TokenCredential | None:
    """The credential of `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` (`Authorization=AAD` and,
    for a user-assigned identity, `ClientId=<client id>`, in any order), or None for
    instrumentation-key ingestion. As "Microsoft Entra authentication for Application
    Insights" shows for Python (learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication,
    the Python tab): `configure_azure_monitor(credential=ManagedIdentityCredential(client_id=...))`."""
    pairs = {}
    for part in (authentication or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            pairs[name.strip().lower()] = value.strip()
    if pairs.get("authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = pairs.get("clientid")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def adapt_tracer_provider(provider: TracerProvider) -> None:
    """What this app keeps of the traces: only the traces of a poll or a work item (an HTTP
    request's or the retention run's Table calls are not sampled), without the Graph SDK's
    own spans. Used on the distro's provider and on the tests' in-memory one."""
    provider.sampler = _poll_traces_only(provider.sampler)
    configure_scopes = getattr(provider, "_set_tracer_configurator", None)
    try:  # the SDK's experimental hook (opentelemetry-sdk 1.45): without it the SDK's spans stay
        from opentelemetry.sdk.trace import _TracerConfig
    except ImportError:
        return
    if configure_scopes is None:
        return

    def scope_config(scope: Any) -> Any:
        return _TracerConfig(is_enabled=not any(quiet in scope.name for quiet in _QUIET_SCOPES))

    configure_scopes(tracer_configurator=scope_config)


def _poll_traces_only(inner: Sampler) -> Sampler:
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class PollTracesOnly(Sampler):
        """Root spans other than a poll's or a work item's are dropped; the rest is `inner`'s."""

        def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> Any:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid and name not in (POLL_SPAN, WORK_ITEM_SPAN):
                return SamplingResult(Decision.DROP)
            return inner.should_sample(parent_context, trace_id, name, *args, **kwargs)

        def get_description(self) -> str:
            return f"PollTracesOnly{{{inner.get_description()}}}"

    return PollTracesOnly()


def _safely(record: Callable[P, None]) -> Callable[P, None]:
    """Telemetry never fails the work it measures."""

    @wraps(record)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception as error:
            log.warning("telemetry %s not recorded: %s", record.__name__, type(error).__name__)

    return guarded


# ---------------------------------------------------------------- traces


def tracer() -> trace.Tracer:
    """The app's tracer, from the global provider (the API's no-op until configured)."""
    return trace.get_tracer(NAME)


@contextmanager
def poll_span(tenant_id: str, trigger: str) -> Iterator[trace.Span]:
    """A tenant's poll: the root of its trace. Re-entrant: the poll and its alert step
    (`poll_and_alert`) and the poll itself (`poll_tenant`) share one span."""
    open_span = _open_poll.get()
    if open_span is not None:
        yield open_span
        return
    with tracer().start_as_current_span(
        POLL_SPAN, kind=SpanKind.INTERNAL, attributes={"syncmon.tenant": tenant_id, "syncmon.trigger": trigger}
    ) as span:
        token = _open_poll.set(span)
        try:
            yield span
        finally:
            _open_poll.reset(token)


@_safely
def describe_poll(span: trace.Span, record: Mapping[str, Any]) -> None:
    """The poll record's outcome on its span."""
    graph = record.get("graph") or {}
    span.set_attributes(
        {
            "syncmon.poll.id": str(record.get("pollId") or ""),
            "syncmon.poll.status": str(record.get("status") or ""),
            "syncmon.poll.discovery": bool(record.get("discovery")),
            "syncmon.poll.errors": int(record.get("errorCount") or 0),
            "syncmon.principals.scanned": int(record.get("servicePrincipalsScanned") or 0),
            "syncmon.jobs.read": int(record.get("jobsRead") or 0),
            "syncmon.jobs.changed": int(record.get("jobsChanged") or 0),
            "syncmon.runs.stored": int(record.get("runsStored") or 0),
            "syncmon.graph.requests": int(graph.get("requests") or 0),
            "syncmon.graph.throttled": int(graph.get("throttled") or 0),
        }
    )
    if record.get("status") == "failed":
        kinds = sorted((record.get("errorsByKind") or {}).keys())
        span.set_status(Status(StatusCode.ERROR, ",".join(kinds)[:200] or "failed"))


@_safely
def describe_alert_step(span: trace.Span, section: Mapping[str, Any]) -> None:
    span.set_attribute("syncmon.alerts.status", str(section.get("status") or ""))
    if "openAlerts" in section:
        span.set_attribute("syncmon.alerts.open", int(section["openAlerts"]))


@contextmanager
def work_item_span(
    tenant_id: str, poll_id: str, item: int, items: int, *, poisoned: bool = False
) -> Iterator[trace.Span]:
    """One work item of a fanned-out poll: the root of its own trace (a queue message carries
    no trace context), tied to its poll by `syncmon.poll.id`."""
    attributes: dict[str, str | int | bool] = {
        "syncmon.tenant": tenant_id,
        "syncmon.poll.id": poll_id,
        "syncmon.work.item": item,
        "syncmon.work.items": items,
        "syncmon.work.poisoned": poisoned,
    }
    with tracer().start_as_current_span(WORK_ITEM_SPAN, kind=SpanKind.INTERNAL, attributes=attributes) as span:
        yield span


# ---------------------------------------------------------------- metrics


class _Instruments:
    """The meter's instruments: their names are what the workbook and the alerts query."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.poll_duration = meter.create_histogram(
            "syncmon.poll.duration", unit="s", description="A tenant's poll, from its start to its record"
        )
        self.poll_completed = meter.create_counter(
            "syncmon.poll.completed", description="Polls that ended, whatever their status"
        )
        self.graph_requests = meter.create_counter(
            "syncmon.graph.requests", description="HTTP attempts to Microsoft Graph, retries included"
        )
        self.graph_throttled = meter.create_counter(
            "syncmon.graph.throttled", description="Graph answers 429 or 503 (throttled)"
        )
        self.runs_stored = meter.create_counter("syncmon.runs.stored", description="Provisioning runs stored")
        self.jobs = meter.create_gauge("syncmon.jobs", description="The tenant's jobs by health, after its poll")
        self.escrowed = meter.create_gauge(
            "syncmon.jobs.escrowed", description="countEscrowed summed over the jobs' last runs"
        )
        self.alerts_open = meter.create_gauge("syncmon.alerts.open", description="Open alerts by severity")
        self.delivery_failures = meter.create_counter(
            "syncmon.alerts.delivery_failures", description="Notifications not delivered (retrying or given up)"
        )


_instruments: _Instruments | None = None


def instruments() -> _Instruments:
    """Made once, from the global meter provider: before it is configured they are the API's
    proxies, which forward to the provider once one is set."""
    global _instruments
    if _instruments is None:
        _instruments = _Instruments(metrics.get_meter(NAME))
    return _instruments


@_safely
def poll_ended(record: Mapping[str, Any], seconds: float | None = None) -> None:
    """A poll ended (any status but dispatched, whose work items end it later)."""
    tenant, status = str(record.get("tenantId") or ""), str(record.get("status") or "")
    duration = seconds if seconds is not None else float(record.get("durationSeconds") or 0.0)
    found = instruments()
    found.poll_duration.record(
        duration, {"tenant": tenant, "trigger": str(record.get("trigger") or ""), "status": status}
    )
    found.poll_completed.add(1, {"tenant": tenant, "status": status})


@_safely
def graph_answered(tenant_id: str, status_code: int) -> None:
    found = instruments()
    found.graph_requests.add(1, {"tenant": tenant_id})
    if status_code in (429, 503):
        found.graph_throttled.add(1, {"tenant": tenant_id})


@_safely
def runs_stored(tenant_id: str, count: int) -> None:
    if count:
        instruments().runs_stored.add(count, {"tenant": tenant_id})


@_safely
def tenant_state(tenant_id: str, jobs: Iterable[Mapping[str, Any]], open_severities: Iterable[str]) -> None:
    """The tenant's jobs by health, their escrows and its open alerts by severity, as the
    alert step read them after a poll. Every health and severity gets its point, 0 when none
    has it, so a value that is gone reads 0 whichever instance polled last."""
    by_health: Counter[str] = Counter()
    escrowed = 0
    for job in jobs:
        by_health[str(job.get("health") or "unknown")] += 1
        last = job.get("lastExecution") or {}
        escrowed += int(last.get("countEscrowed") or 0)
    by_severity = Counter(open_severities)
    found = instruments()
    for health in dict.fromkeys([*HEALTH_VALUES, *by_health]):
        found.jobs.set(by_health[health], {"tenant": tenant_id, "health": health})
    found.escrowed.set(escrowed, {"tenant": tenant_id})
    for severity in dict.fromkeys([*SEVERITIES, *by_severity]):
        found.alerts_open.set(by_severity[severity], {"tenant": tenant_id, "severity": severity})


@_safely
def delivery_failed(tenant_id: str, target: str) -> None:
    instruments().delivery_failures.add(1, {"tenant": tenant_id, "target": target})
