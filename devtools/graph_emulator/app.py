"""The Starlette app: Graph under `/v1.0` and `/beta`, the control API under `/_emulator`.

The Graph routes read the raw (still percent-encoded) path so an id holding `/` or `%` reaches
the resolver intact; everything Graph-specific lives in `graph.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .clock import iso_now
from .faults import FaultConfigError
from .graph import GraphRequest, handle
from .state import EmulatorState
from .tenant import TenantError

VERSIONS = ("v1.0", "beta")
CONTROL = "/_emulator"


def _bad_version(version: str) -> Response:
    body = {"error": {"code": "BadRequest", "message": f"Invalid version: {version}"}}
    return JSONResponse(body, status_code=400)


async def _graph(request: Request, state: EmulatorState) -> Response:
    version = request.path_params["version"]
    if version not in VERSIONS:
        return _bad_version(version)
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    rest = raw_path.decode("latin-1").split("/", 2)[2:]  # drop "" and the version
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = "/" + (rest[0] if rest else "") + (f"?{query}" if query else "")
    headers = {name.lower(): value for name, value in request.headers.items()}
    base_url = f"{str(request.base_url).rstrip('/')}/{version}"
    graph_request = GraphRequest(request.method, target, headers, base_url, False, await request.body())
    response = handle(state, graph_request)
    state.stats.record(
        request.method,
        response.path,
        response.status,
        in_batch=False,
        authorized="authorization" in headers,
        faulted=response.faulted,
        authorization=headers.get("authorization"),
    )
    delay_ms = state.latency_ms + state.faults.latency_ms + response.delay_ms
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)
    data = (
        b"" if response.status == 204 else json.dumps(response.body, separators=(",", ":"), ensure_ascii=False).encode()
    )
    if response.truncate:
        data = data[: len(data) // 2]  # a 200 whose JSON is cut: what a dropped stream looks like
    if response.drop:
        return _DroppedResponse(data, status_code=response.status, headers=response.headers)
    return Response(data, status_code=response.status, headers=response.headers)


class _DroppedResponse(Response):
    """Headers and half the body, then the connection closes: the client sees a reset
    mid-answer (a transport error), not an HTTP status."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": bytes(self.body[: len(self.body) // 2]), "more_body": True})
        # Returning with more_body pending makes the server close the connection.


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _ControlError(f"body is not JSON: {exc}") from exc


class _ControlError(ValueError):
    pass


def _int(body: Any, key: str, default: int) -> int:
    value = body.get(key, default) if isinstance(body, dict) else default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _ControlError(f"{key} must be an integer")
    return value


def _clock_body(state: EmulatorState) -> dict[str, Any]:
    return {"now": iso_now(state.clock.now()), "frozen": state.clock.frozen}


def _control_routes(state: EmulatorState) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def tenant(request: Request) -> Response:
        if request.method == "PUT":
            state.set_tenant(await _json_body(request))
            return JSONResponse({"ok": True, "tenantId": state.tenant.tenant_id})
        now = state.clock.now()
        snapshot = await run_in_threadpool(state.tenant.snapshot, now)  # 10,000 SPs take a while
        return JSONResponse(snapshot, headers={"x-emulator-now": iso_now(now)})

    async def demo(request: Request) -> Response:
        body = await _json_body(request)
        state.set_demo_tenant(_int(body, "seed", 1))
        return JSONResponse({"ok": True, "tenantId": state.tenant.tenant_id})

    async def generated(request: Request) -> Response:
        body = await _json_body(request)
        ratio = body.get("jobRatio", 0.3) if isinstance(body, dict) else 0.3
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise _ControlError("jobRatio must be a number")
        count = _int(body, "servicePrincipals", 1000)
        failures = _int(body, "failureEvents", 0)
        await run_in_threadpool(state.set_generated_tenant, count, float(ratio), _int(body, "seed", 1), failures)
        return JSONResponse({"ok": True, "tenantId": state.tenant.tenant_id})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            seconds = body.get("advanceSeconds", 0) if isinstance(body, dict) else 0
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise _ControlError("advanceSeconds must be a number")
            if isinstance(body, dict) and isinstance(body.get("frozen"), bool):
                state.clock.freeze(body["frozen"])
            state.clock.advance(seconds)
        return JSONResponse(_clock_body(state))

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            state.set_faults(await _json_body(request))
        elif request.method == "DELETE":
            state.clear_faults()
        return JSONResponse(state.faults.to_json())

    async def provisioning(request: Request) -> Response:
        # Every event /auditLogs/provisioning serves right now, oldest first, unpaged: the
        # ground truth for tests, as summaries (id, activityDateTime, jobId, servicePrincipalId,
        # cycleId, status, errorCode); ?full=true for the Graph JSON. ?jobId=, ?servicePrincipalId=.
        now = state.clock.now()
        log = state.provisioning
        job, sp = request.query_params.get("jobId"), request.query_params.get("servicePrincipalId")

        full = request.query_params.get("full", "").lower() == "true"

        def collect() -> list[dict[str, Any]]:
            shape = log.materialise if full else log.summary
            return [shape(e) for e in log.events(now, job, sp)]

        events = await run_in_threadpool(collect)
        return JSONResponse({"now": iso_now(now), "value": events})

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats.snapshot())

    async def reset_stats(request: Request) -> Response:
        state.stats.reset()
        return JSONResponse({"ok": True})

    def guarded(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except (_ControlError, TenantError, FaultConfigError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return run

    return [
        Route(f"{CONTROL}/health", guarded(health), methods=["GET"]),
        Route(f"{CONTROL}/tenant", guarded(tenant), methods=["GET", "PUT"]),
        Route(f"{CONTROL}/tenant/demo", guarded(demo), methods=["POST"]),
        Route(f"{CONTROL}/tenant/generated", guarded(generated), methods=["POST"]),
        Route(f"{CONTROL}/clock", guarded(clock), methods=["GET", "POST"]),
        Route(f"{CONTROL}/faults", guarded(faults), methods=["GET", "PUT", "DELETE"]),
        Route(f"{CONTROL}/provisioning", guarded(provisioning), methods=["GET"]),
        Route(f"{CONTROL}/stats", guarded(stats), methods=["GET"]),
        Route(f"{CONTROL}/stats/reset", guarded(reset_stats), methods=["POST"]),
    ]


def create_app(state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app serving `state` (a fresh demo tenant when None)."""
    state = state if state is not None else EmulatorState()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    async def graph(request: Request) -> Response:
        return await _graph(request, state)

    app = Starlette(
        routes=[
            *_control_routes(state),
            Route("/{version}/{rest:path}", graph, methods=methods),
            Route("/{version}", graph, methods=methods),
        ]
    )
    app.state.emulator = state
    return app
