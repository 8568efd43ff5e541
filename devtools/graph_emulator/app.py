"""The Starlette app: Graph under `/v1.0` and `/beta`, the control API under `/_emulator`.

The Graph routes read the raw (still percent-encoded) path so an id holding `/` or `%` reaches
the resolver intact; everything Graph-specific lives in `graph.py`.

More tenants (tenants.py) answer under `/{tenantId}`: a middleware hands a request whose first
segment is a registered tenant id to that tenant's own app, with the prefix as its root path,
so its links (`@odata.nextLink`, `@odata.context`) carry the prefix. The root's control API
lists, adds and removes them (`/_emulator/tenants`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .clock import iso_now
from .faults import FaultConfigError
from .graph import GraphRequest, handle
from .state import EmulatorState
from .tenant import TenantError
from .tenants import TenantRegistry, serve

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
    raw = raw_path.decode("latin-1").removeprefix(request.scope.get("root_path", ""))  # a tenant's prefix
    rest = raw.split("/", 2)[2:]  # drop "" and the version
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


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _ControlError("the body is a JSON object")
    return body


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
        state.set_spec({**_object(await _json_body(request)), "kind": "demo"})
        return JSONResponse({"ok": True, "tenantId": state.tenant.tenant_id})

    async def generated(request: Request) -> Response:
        spec = {**_object(await _json_body(request)), "kind": "generated"}
        await run_in_threadpool(state.set_spec, spec)
        return JSONResponse({"ok": True, "tenantId": state.tenant.tenant_id})

    async def auth(request: Request) -> Response:
        # {"token": "..."}: every Graph request must carry `Authorization: Bearer ...`; null: none.
        if request.method == "PUT":
            body = _object(await _json_body(request))
            if "token" not in body:
                raise _ControlError('the body is {"token": "..."} or {"token": null}')
            state.set_token(body["token"])
        return JSONResponse({"token": state.token})

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

    return [
        Route(f"{CONTROL}/health", guarded(health), methods=["GET"]),
        Route(f"{CONTROL}/tenant", guarded(tenant), methods=["GET", "PUT"]),
        Route(f"{CONTROL}/tenant/demo", guarded(demo), methods=["POST"]),
        Route(f"{CONTROL}/tenant/generated", guarded(generated), methods=["POST"]),
        Route(f"{CONTROL}/auth", guarded(auth), methods=["GET", "PUT"]),
        Route(f"{CONTROL}/clock", guarded(clock), methods=["GET", "POST"]),
        Route(f"{CONTROL}/faults", guarded(faults), methods=["GET", "PUT", "DELETE"]),
        Route(f"{CONTROL}/provisioning", guarded(provisioning), methods=["GET"]),
        Route(f"{CONTROL}/stats", guarded(stats), methods=["GET"]),
        Route(f"{CONTROL}/stats/reset", guarded(reset_stats), methods=["POST"]),
    ]


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint) -> Endpoint:
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except (_ControlError, TenantError, FaultConfigError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return run


def _tenant_routes(tenants: TenantRegistry) -> list[Route]:
    """The root's control of the other tenants: list them, add or replace one, remove one."""

    def listing(root: str, tenant_id: str | None, state: EmulatorState) -> dict[str, Any]:
        prefix = f"{root}/{tenant_id}" if tenant_id else root
        return {
            "tenantId": tenant_id or state.tenant.tenant_id,
            "baseUrl": f"{prefix}/v1.0",
            "controlUrl": f"{prefix}{CONTROL}",
            "tokenRequired": state.token is not None,
        }

    async def list_tenants(request: Request) -> Response:
        root = str(request.base_url).rstrip("/")
        value = [listing(root, tenant_id, state) for tenant_id, state in tenants.states().items()]
        return JSONResponse({"default": listing(root, None, tenants.default), "value": value})

    async def put_tenant(request: Request) -> Response:
        # The body is what the tenant endpoints take: {"kind": "demo", "seed": 2},
        # {"kind": "generated", "servicePrincipals": 150, ...} or a static tenant dict.
        # Replacing a tenant keeps its clock, faults, token and counters, as PUT /tenant does.
        tenant_id = tenants.check(request.path_params["tenant_id"])
        body = _object(await _json_body(request))
        state = tenants.get(tenant_id)
        created = state is None
        if state is None:
            default = tenants.default
            state = EmulatorState(
                {"tenantId": tenant_id, "servicePrincipals": []},
                tenant_id=tenant_id,
                latency_ms=default.latency_ms,
                frozen_clock=default.clock.frozen,
            )
        await run_in_threadpool(serve, state, body)
        tenants.add(tenant_id, state)
        answer = {"ok": True, **listing(str(request.base_url).rstrip("/"), tenant_id, state)}
        return JSONResponse(answer, status_code=201 if created else 200)

    async def delete_tenant(request: Request) -> Response:
        if not tenants.remove(request.path_params["tenant_id"]):
            return JSONResponse({"error": "no such tenant"}, status_code=404)
        return JSONResponse({"ok": True})

    return [
        Route(f"{CONTROL}/tenants", guarded(list_tenants), methods=["GET"]),
        Route(f"{CONTROL}/tenants/{{tenant_id}}", guarded(put_tenant), methods=["PUT"]),
        Route(f"{CONTROL}/tenants/{{tenant_id}}", guarded(delete_tenant), methods=["DELETE"]),
    ]


def _graph_routes(state: EmulatorState) -> list[Route]:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    async def graph(request: Request) -> Response:
        return await _graph(request, state)

    return [Route("/{version}/{rest:path}", graph, methods=methods), Route("/{version}", graph, methods=methods)]


class _TenantPrefixes:
    """Sends `/{tenantId}/...` to that tenant's app when the id is registered; everything else
    (an unknown prefix included, answered as an unknown version) to the default tenant's."""

    def __init__(self, app: ASGIApp, tenants: TenantRegistry) -> None:
        self.app = app
        self.tenants = tenants
        self._apps: dict[str, tuple[EmulatorState, ASGIApp]] = {}

    def _app_of(self, tenant_id: str) -> ASGIApp | None:
        state = self.tenants.get(tenant_id)
        if state is None:
            self._apps.pop(tenant_id, None)  # removed: forget its app
            return None
        known = self._apps.get(tenant_id)
        if known is None or known[0] is not state:
            known = self._apps[tenant_id] = (state, Starlette(routes=[*_control_routes(state), *_graph_routes(state)]))
        return known[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path: str = scope["path"].removeprefix(root)
            head = path.split("/", 2)[1] if path.startswith("/") else ""
            app = self._app_of(head) if head else None
            if app is not None:
                # The path keeps the prefix (as ASGI's does); the root path tells the tenant's
                # routes where their own root is, and request.base_url then carries it.
                await app({**scope, "root_path": f"{root}/{head}"}, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(state: EmulatorState | None = None, *, tenants: TenantRegistry | None = None) -> Starlette:
    """The emulator as an ASGI app serving `state` (a fresh demo tenant when None) at the root,
    and the tenants of `tenants` (whose default is `state`) under their ids."""
    if tenants is not None and state is not None and state is not tenants.default:
        raise ValueError("state must be the registry's default")
    registry = tenants if tenants is not None else TenantRegistry(state if state is not None else EmulatorState())
    app = Starlette(
        routes=[*_control_routes(registry.default), *_tenant_routes(registry), *_graph_routes(registry.default)],
        middleware=[Middleware(_TenantPrefixes, tenants=registry)],
    )
    app.state.emulator = registry.default
    app.state.tenants = registry
    return app
