"""Running the emulator: in a background thread for tests, or controlling one over HTTP.

`EmulatorControl` speaks only the HTTP control API, so the same test code drives an emulator
in this process (`EmulatorServer`) or one started as a subprocess (`python -m ...`).
`for_tenant(tenant_id)` gives the control of one of its other tenants (tenants.py), whose Graph
root is `{root}/{tenantId}/v1.0`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn

from .app import create_app
from .state import EmulatorState
from .tenant import LivingTenant, Tenant
from .tenants import TenantRegistry, check_tenant_id, serve

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket; port 0 picks a free one (read it back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


def url_host(host: str) -> str:
    host = host.strip("[]")
    return f"[{host}]" if ":" in host else host


def uvicorn_config(app: Any, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,  # a stuck slow-mode request must not hold shutdown long
    )


class EmulatorControl:
    """Client of the control API of an emulator at `root_url` (e.g. `http://127.0.0.1:5000`)."""

    def __init__(self, root_url: str | None = None, timeout: float = 30.0) -> None:
        self._root_url = root_url.rstrip("/") if root_url else None
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._tenants: dict[str, EmulatorControl] = {}

    @property
    def root_url(self) -> str:
        if self._root_url is None:
            raise RuntimeError("the emulator is not running")
        return self._root_url

    @property
    def base_url(self) -> str:
        """Graph's version root, what the app is configured with."""
        return f"{self.root_url}/v1.0"

    def _http(self) -> httpx.Client:
        if self._client is None:
            # No kept-alive connections: the server closes idle ones after a few seconds, and a
            # control call racing that close fails with a reset (tests call it between polls).
            self._client = httpx.Client(
                base_url=f"{self.root_url}/_emulator",
                timeout=self._timeout,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http().request(method, path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"emulator {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> bool:
        try:
            return bool(self._call("GET", "/health").get("ok"))
        except (httpx.HTTPError, RuntimeError):
            return False

    def set_tenant(self, tenant: Tenant) -> None:
        """Serve `tenant`: a static dict verbatim, or rebuild a living tenant from its spec."""
        if isinstance(tenant, LivingTenant):
            spec = dict(tenant.spec)
            kind = spec.pop("kind")
            self._call("POST", f"/tenant/{kind}", spec)
        else:
            self._call("PUT", "/tenant", dict(tenant))

    # ------------------------------------------------------------ more tenants

    def for_tenant(self, tenant_id: str) -> EmulatorControl:
        """The control of the tenant served under `/{tenant_id}`: its `base_url` is
        `{root}/{tenant_id}/v1.0` and every call goes to `{root}/{tenant_id}/_emulator`."""
        check_tenant_id(tenant_id)
        control = self._tenants.get(tenant_id)
        if control is None or control.root_url != f"{self.root_url}/{tenant_id}":
            control = self._tenants[tenant_id] = EmulatorControl(f"{self.root_url}/{tenant_id}", self._timeout)
        return control

    def add_tenant(self, tenant_id: str, tenant: Tenant | None = None, *, token: str | None = None) -> EmulatorControl:
        """Serve `tenant` (a demo tenant when None) under `/{tenant_id}`, replacing its data if
        it is served already; a living tenant is rebuilt from its spec for `tenant_id`."""
        if tenant is None:
            tenant = {"kind": "demo"}
        body = dict(tenant.spec) if isinstance(tenant, LivingTenant) else dict(tenant)
        self._call("PUT", f"/tenants/{tenant_id}", body)
        control = self.for_tenant(tenant_id)
        if token is not None:
            control.set_token(token)
        return control

    def remove_tenant(self, tenant_id: str) -> None:
        self._call("DELETE", f"/tenants/{tenant_id}")

    def tenants(self) -> dict[str, Any]:
        """`{"default": {...}, "value": [...]}`: each tenant's id, baseUrl, controlUrl, tokenRequired."""
        result: dict[str, Any] = self._call("GET", "/tenants")
        return result

    def set_token(self, token: str | None) -> None:
        """Every Graph request of this tenant must carry `Authorization: Bearer <token>` (None: no check)."""
        self._call("PUT", "/auth", {"token": token})

    def set_demo_tenant(self, seed: int = 1) -> None:
        self._call("POST", "/tenant/demo", {"seed": seed})

    def set_generated_tenant(
        self, service_principals: int, job_ratio: float = 0.3, seed: int = 1, failure_events: int = 0
    ) -> None:
        """A generated tenant; `failure_events` > 0 adds a SCIM job with at least that many failure
        events in the provisioning log of the last day (see generated.py)."""
        body = {"servicePrincipals": service_principals, "jobRatio": job_ratio, "seed": seed}
        self._call("POST", "/tenant/generated", {**body, "failureEvents": failure_events})

    def provisioning_events(
        self, job_id: str | None = None, service_principal_id: str | None = None, full: bool = False
    ) -> list[Any]:
        """Every event `/auditLogs/provisioning` serves now (oldest first, unpaged), optionally of
        one job or service principal: ground truth to compare pages against. Summaries (id,
        activityDateTime, jobId, servicePrincipalId, cycleId, status, errorCode) unless `full`."""
        params = {k: v for k, v in (("jobId", job_id), ("servicePrincipalId", service_principal_id)) if v}
        if full:
            params["full"] = "true"
        response = self._http().get("/provisioning", params=params)
        if response.status_code >= 400:
            raise RuntimeError(f"emulator GET /provisioning: {response.status_code} {response.text}")
        events: list[Any] = response.json()["value"]
        return events

    def tenant(self) -> dict[str, Any]:
        """The tenant as served now, jobs materialised: ground truth to compare against."""
        result: dict[str, Any] = self._call("GET", "/tenant")
        return result

    def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", "/faults", faults)
        return result

    def faults(self) -> dict[str, Any]:
        """The fault config with each rule's `matched` and `fired` counters."""
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def advance_clock(self, seconds: float) -> str:
        """Move the emulator clock forward; returns the new now (ISO 8601)."""
        now: str = self._call("POST", "/clock", {"advanceSeconds": seconds})["now"]
        return now

    def freeze_clock(self, frozen: bool = True) -> str:
        """Stop (or restart) the clock following wall time, so served data holds still."""
        now: str = self._call("POST", "/clock", {"advanceSeconds": 0, "frozen": frozen})["now"]
        return now

    def now(self) -> str:
        now: str = self._call("GET", "/clock")["now"]
        return now

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def reset_stats(self) -> None:
        self._call("POST", "/stats/reset")

    def close(self) -> None:
        for control in self._tenants.values():
            control.close()
        self._tenants.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EmulatorServer(EmulatorControl):
    """The emulator on a free loopback port in a background thread.

    `with EmulatorServer(tenant=demo_tenant()) as em:` then point the app at `em.base_url`.
    `em.state` is the live `EmulatorState` for in-process shortcuts.

    `tenants` serves more tenants, each under `/{tenantId}` with its own state (`em.states`);
    a living tenant is rebuilt for its key's id (so two demo tenants share no id), a static
    dict is served as given. `token` is the bearer token the default tenant expects, `tokens`
    those of the other tenants, by id (a tenant without one lets any request in).
    """

    def __init__(
        self,
        tenant: Tenant | None = None,
        *,
        tenants: Mapping[str, Tenant] | None = None,
        token: str | None = None,
        tokens: Mapping[str, str] | None = None,
        latency_ms: int = 0,
        frozen_clock: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.state = EmulatorState(tenant, latency_ms=latency_ms, frozen_clock=frozen_clock, token=token)
        self.registry = TenantRegistry(self.state)
        tenants, tokens = tenants or {}, tokens or {}
        if unknown := set(tokens) - set(tenants):
            raise ValueError(f"tokens for tenants not served: {', '.join(sorted(unknown))}")
        for tenant_id, extra in tenants.items():
            state = EmulatorState(
                {"tenantId": tenant_id, "servicePrincipals": []},
                tenant_id=self.registry.check(tenant_id),
                latency_ms=latency_ms,
                frozen_clock=frozen_clock,
                token=tokens.get(tenant_id),
            )
            serve(state, extra)
            self.registry.add(tenant_id, state)
        self._host, self._port = host, port
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def states(self) -> dict[str, EmulatorState]:
        """The other tenants' live states by id, those added over the control API included."""
        return self.registry.states()

    def start(self) -> Self:
        if self._server is not None:
            return self
        sock = bind_socket(self._host, self._port)
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(create_app(tenants=self.registry)))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"graph-emulator-{port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("the Graph emulator did not start")
            time.sleep(0.01)
        self._root_url = f"http://{url_host(self._host)}:{port}"
        if not self.health():
            self.stop()
            raise RuntimeError("the Graph emulator does not answer")
        return self

    def stop(self) -> None:
        self.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
        self._root_url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
