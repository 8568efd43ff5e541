"""Telemetry through the real parts: a poll of the demo tenant (emulator over HTTP, Azurite)
as a trace and as metrics, read back from OpenTelemetry's in-memory exporters; telemetry off;
and the real `configure_azure_monitor` in a child process, sending to a local stand-in for
Application Insights' ingestion endpoint.

OpenTelemetry's global providers can be set once per process: this module sets them once
(`otel`), as `configure_azure_monitor` would, with an in-memory exporter and reader, and
turns the Azure SDK's tracing on only for its own tests.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter as CounterInstrument
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from devtools.azurite import DEV_KEY, AzuriteServer, free_port
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer
from shared import telemetry
from shared.domain.model import HEALTH_VALUES
from shared.poll import poll_and_alert
from shared.settings import load_settings
from shared.storage.store import open_store
from tests.support.paths import ROOT

NAMES = {
    "syncmon.poll.duration",
    "syncmon.poll.completed",
    "syncmon.graph.requests",
    "syncmon.graph.throttled",
    "syncmon.runs.stored",
    "syncmon.jobs",
    "syncmon.jobs.escrowed",
    "syncmon.alerts.open",
    "syncmon.alerts.delivery_failures",
}
WEBHOOK_SECRET = "telemetry-test-signing-secret-0123456789"


class _Exporters:
    """What the process's providers export to: the in-memory pair, and whatever a test adds."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.extra: list[SpanExporter] = []
        self.metrics = InMemoryMetricReader(
            preferred_temporality={
                CounterInstrument: AggregationTemporality.DELTA,
                Histogram: AggregationTemporality.DELTA,
            }
        )


class _Fanout(SpanExporter):
    def __init__(self, exporters: _Exporters) -> None:
        self.exporters = exporters

    def export(self, spans: Any) -> SpanExportResult:
        for extra in self.exporters.extra:
            extra.export(spans)
        return SpanExportResult.SUCCESS


_installed: _Exporters | None = None


@pytest.fixture
def otel() -> Iterator[_Exporters]:
    """The global providers (set once per process), with the Azure SDK's tracing on for the test."""
    global _installed
    if _installed is None:
        exporters = _Exporters()
        provider = TracerProvider(sampler=ALWAYS_ON)
        provider.add_span_processor(SimpleSpanProcessor(exporters.spans))
        provider.add_span_processor(SimpleSpanProcessor(_Fanout(exporters)))
        telemetry.adapt_tracer_provider(provider)  # as configure_telemetry does to the distro's
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[exporters.metrics]))
        _installed = exporters
    from azure.core.settings import settings
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan

    settings.tracing_implementation = OpenTelemetrySpan  # what the distro's azure_sdk instrumentation sets
    _installed.spans.clear()
    _installed.metrics.get_metrics_data()  # deltas start now
    try:
        yield _installed
    finally:
        settings.tracing_implementation = None
        _installed.extra.clear()


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Each instrument's points: (attributes, value), a histogram's value its (count, sum)."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = (point.count, point.sum) if hasattr(point, "count") else point.value
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


def _descends(span: ReadableSpan, ancestor: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    while span.parent is not None:
        if span.parent.span_id == ancestor.context.span_id:
            return True
        parent = by_id.get(span.parent.span_id)
        if parent is None:
            return False
        span = parent
    return False


def _every_value(spans: tuple[ReadableSpan, ...], points: dict[str, Any]) -> str:
    values: list[str] = []
    for span in spans:
        values.append(span.name)
        values += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            values += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
        if span.status.description:
            values.append(span.status.description)
    values += [json.dumps(points, default=str)]
    return "\n".join(values)


async def test_a_poll_is_one_trace_with_graph_and_table_dependencies(
    otel: _Exporters, app_env: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")  # nobody listens
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("ALERT_DELIVERY_ATTEMPTS", "1")
    settings = load_settings()
    record = await poll_and_alert(settings, trigger="test")
    assert record["status"] == "succeeded" and record["runsStored"] > 0

    spans = otel.spans.get_finished_spans()
    polls = [span for span in spans if span.name == telemetry.POLL_SPAN]
    assert len(polls) == 1
    poll = polls[0]
    assert poll.parent is None and poll.kind is SpanKind.INTERNAL
    assert {span.context.trace_id for span in spans} == {poll.context.trace_id}  # nothing outside the poll's trace
    attributes = dict(poll.attributes or {})
    assert attributes["syncmon.tenant"] == DEMO_TENANT_ID and attributes["syncmon.trigger"] == "test"
    assert attributes["syncmon.poll.id"] == record["pollId"]
    assert attributes["syncmon.poll.status"] == "succeeded"
    assert attributes["syncmon.poll.discovery"] is record["discovery"]
    assert attributes["syncmon.jobs.read"] == record["jobsRead"]
    assert attributes["syncmon.jobs.changed"] == record["jobsChanged"]
    assert attributes["syncmon.runs.stored"] == record["runsStored"]
    assert attributes["syncmon.graph.requests"] == record["graph"]["requests"]
    assert attributes["syncmon.alerts.status"] == record["alerts"]["status"]

    by_id = {span.context.span_id: span for span in spans}
    clients = [span for span in spans if span.kind is SpanKind.CLIENT]
    graph_port = httpx.URL(demo_emulator.base_url).port
    graph = [span for span in clients if (span.attributes or {}).get("server.port") == graph_port]
    batches = [span for span in graph if span.name == "POST /v1.0/$batch"]
    assert batches and all(span.parent is not None and span.parent.span_id == poll.context.span_id for span in graph)
    # Every Graph attempt is a span, as the record counts them.
    assert len(graph) == record["graph"]["requests"]
    batch = dict(batches[0].attributes or {})
    assert batch["http.request.method"] == "POST" and batch["http.response.status_code"] == 200
    assert batch["url.full"] == f"{demo_emulator.base_url}/$batch" and batch["server.address"] == "127.0.0.1"
    assert all("?" not in str((span.attributes or {}).get("url.full")) for span in graph)
    assert not [
        span for span in spans if "kiota" in (span.instrumentation_scope.name if span.instrumentation_scope else "")
    ]

    tables = [span for span in clients if span not in graph]
    assert tables, "the Table Storage calls are dependency spans"
    assert all(_descends(span, poll, by_id) for span in tables)
    urls = {str((span.attributes or {}).get("url.full") or (span.attributes or {}).get("http.url")) for span in tables}
    assert any("/devstoreaccount1/" in url for url in urls)

    points = _points(otel.metrics)
    assert set(points) == NAMES - {"syncmon.graph.throttled"}  # no 429: a counter never added to has no point
    everything = _every_value(spans, points)
    for secret in (DEV_KEY, app_env["AzureWebJobsStorage"], "AccountKey", "SharedKey", "Bearer ", WEBHOOK_SECRET):
        assert secret not in everything


async def test_the_metrics_are_the_records_numbers(
    otel: _Exporters, app_env: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")  # nobody listens
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("ALERT_DELIVERY_ATTEMPTS", "1")
    settings = load_settings()
    record = await poll_and_alert(settings, trigger="test")
    points = _points(otel.metrics)
    tenant = {"tenant": DEMO_TENANT_ID}

    assert points["syncmon.poll.completed"] == [({**tenant, "status": "succeeded"}, 1)]
    [(attributes, (count, seconds))] = points["syncmon.poll.duration"]
    assert attributes == {**tenant, "trigger": "test", "status": "succeeded"} and count == 1
    assert 0 < seconds <= record["durationSeconds"] + 1
    assert points["syncmon.graph.requests"] == [(tenant, record["graph"]["requests"])]
    assert sum(value for _, value in points.get("syncmon.graph.throttled", [])) == record["graph"]["throttled"]
    assert points["syncmon.runs.stored"] == [(tenant, record["runsStored"])]

    jobs = await open_store(settings).list_jobs()
    by_health = Counter(job["health"] for job in jobs)
    gauge = {attributes["health"]: value for attributes, value in points["syncmon.jobs"]}
    assert gauge == {health: by_health[health] for health in HEALTH_VALUES}  # absent ones read 0
    escrowed = sum(int((job.get("lastExecution") or {}).get("countEscrowed") or 0) for job in jobs)
    assert points["syncmon.jobs.escrowed"] == [(tenant, escrowed)]
    open_by_severity = {attributes["severity"]: value for attributes, value in points["syncmon.alerts.open"]}
    assert sum(open_by_severity.values()) == record["alerts"]["openAlerts"] > 0
    assert set(open_by_severity) == set(telemetry.SEVERITIES)
    failures = points["syncmon.alerts.delivery_failures"]
    assert failures and {attributes["target"] for attributes, _ in failures} == {"webhook"}
    assert sum(value for _, value in failures) == record["alerts"]["delivery"]["retrying"]

    # The next poll: counted again, and the gauges say the same of the same jobs.
    await poll_and_alert(settings, trigger="test")
    points = _points(otel.metrics)
    assert points["syncmon.poll.completed"] == [({**tenant, "status": "succeeded"}, 1)]
    assert {attributes["health"]: value for attributes, value in points["syncmon.jobs"]} == gauge


async def test_throttled_answers_are_counted(
    otel: _Exporters, app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    demo_emulator.set_faults(
        {"rules": [{"path": "^/\\$batch$", "status": 429, "retryAfter": 0, "times": 2, "inBatch": False}]}
    )
    record = await poll_and_alert(load_settings(), trigger="test")
    points = _points(otel.metrics)
    assert record["graph"]["throttled"] >= 1
    assert sum(value for _, value in points["syncmon.graph.throttled"]) == record["graph"]["throttled"]
    throttled = [span for span in otel.spans.get_finished_spans() if (span.attributes or {}).get("syncmon.throttled")]
    assert len(throttled) == record["graph"]["throttled"]
    assert all(span.attributes and span.attributes["http.response.status_code"] == 429 for span in throttled)


class _Failing(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise ConnectionError("Application Insights is unreachable")


async def test_a_failing_exporter_never_fails_a_poll(
    otel: _Exporters, app_env: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    otel.extra.append(_Failing())

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a broken instrument")

    # An instrument that raises, as a broken SDK might: recording is skipped, the poll goes on.
    monkeypatch.setattr(telemetry.instruments().poll_completed, "add", broken)
    record = await poll_and_alert(load_settings(), trigger="test")
    assert record["status"] == "succeeded"
    stored = await open_store(load_settings()).last_poll()
    assert stored is not None and stored["pollId"] == record["pollId"]


def test_the_authentication_string_names_the_managed_identity() -> None:
    from azure.identity import ManagedIdentityCredential

    client_id = "00000000-1111-2222-3333-444444444444"
    for value in (
        f"Authorization=AAD;ClientId={client_id}",
        f"ClientId={client_id};Authorization=AAD",
    ):  # Bicep's order
        credential = telemetry.entra_credential(value)
        assert isinstance(credential, ManagedIdentityCredential)
    assert isinstance(telemetry.entra_credential("Authorization=AAD"), ManagedIdentityCredential)  # system-assigned
    assert telemetry.entra_credential(None) is None and telemetry.entra_credential("") is None


# ---------------------------------------------------------------- in a child process

PROBE = """
import asyncio, json, sys
from opentelemetry import trace
from shared.poll import run_poll
from shared.storage.store import close_store
from shared.graph.reader import close_graph_reader
from shared.telemetry import configure_telemetry

async def main():
    try:
        return await run_poll(trigger="test")
    finally:
        await close_graph_reader()
        await close_store()

record = asyncio.run(main())
print(json.dumps({
    "status": record["status"],
    "configured": configure_telemetry(),
    "provider": type(trace.get_tracer_provider()).__name__,
    "loaded": sorted({m for m in sys.modules if m.startswith(("azure.monitor", "opentelemetry.sdk"))})[:3],
}))
"""


def _child(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=180, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


async def test_without_a_connection_string_nothing_is_configured(app_env: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    measured = await asyncio.to_thread(_child, {**env, **app_env})
    assert measured == {"status": "succeeded", "configured": False, "provider": "ProxyTracerProvider", "loaded": []}


class _Ingestion(BaseHTTPRequestHandler):
    """Application Insights' ingestion endpoint, as far as the exporter needs it."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        items = json.loads(body)
        self.received.extend(items if isinstance(items, list) else [items])
        answer = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


async def test_configured_it_sends_the_poll_to_application_insights(
    app_env: dict[str, str], azurite: AzuriteServer
) -> None:
    received: list[dict[str, Any]] = []
    handler = type("Ingestion", (_Ingestion,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
        env.update(app_env)
        env.update(
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                    "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                    f"IngestionEndpoint=http://127.0.0.1:{server.server_address[1]}/"
                ),
                "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # its own endpoint is Microsoft's
                "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",  # no Azure VM metadata probe off Azure
            }
        )
        measured = await asyncio.to_thread(_child, env)
    finally:
        server.shutdown()
    assert measured["status"] == "succeeded" and measured["configured"] is True
    metrics_sent = {
        item["data"]["baseData"]["metrics"][0]["name"] for item in received if item["data"]["baseType"] == "MetricData"
    }
    assert {"syncmon.poll.completed", "syncmon.poll.duration", "syncmon.graph.requests", "syncmon.jobs"} <= metrics_sent
    dependencies = [item["data"]["baseData"] for item in received if item["data"]["baseType"] == "RemoteDependencyData"]
    names = {dependency["name"] for dependency in dependencies}
    assert "poll" in names and "POST /v1.0/$batch" in names
    assert any(
        dependency.get("type") == "HTTP" and "devstoreaccount1" in dependency.get("data", "")
        for dependency in dependencies
    )
    assert not [item for item in received if item["data"]["baseType"] in ("RequestData", "MessageData")]  # the host's
    assert DEV_KEY not in json.dumps(received)


async def test_a_fanned_out_poll_ends_when_its_last_work_item_completes_it(
    otel: _Exporters, app_env: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.work import LocalWorker, queue_options

    monkeypatch.setenv("WORK_INLINE_MAX_PRINCIPALS", "0")  # every poll through the work queue
    monkeypatch.setenv("WORK_ITEM_PRINCIPALS", "10")
    settings = load_settings()
    dispatched = await poll_and_alert(settings, trigger="test")
    assert dispatched["status"] == "dispatched"
    before = _points(otel.metrics)
    assert "syncmon.poll.completed" not in before  # dispatched is not ended
    await LocalWorker(settings, queue_options()).run(idle_seconds=1.0)
    stored = await open_store(settings).last_poll()
    assert stored is not None and stored["pollId"] == dispatched["pollId"] and stored["status"] == "succeeded"

    items = [span for span in otel.spans.get_finished_spans() if span.name == telemetry.WORK_ITEM_SPAN]
    assert len(items) == stored["work"]["items"] and all(span.parent is None for span in items)
    assert {(span.attributes or {}).get("syncmon.poll.id") for span in items} == {dispatched["pollId"]}
    points = _points(otel.metrics)
    assert points["syncmon.poll.completed"] == [({"tenant": DEMO_TENANT_ID, "status": "succeeded"}, 1)]
    # The timer's part (the listing) and the items' parts add up to the completed record's.
    for name, total in (
        ("syncmon.graph.requests", stored["graph"]["requests"]),
        ("syncmon.runs.stored", stored["runsStored"]),
    ):
        assert sum(value for _, value in before.get(name, []) + points[name]) == total
