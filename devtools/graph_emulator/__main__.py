"""`python -m devtools.graph_emulator`: serve the emulator and announce its Graph base URL.

Prints exactly one line, `GRAPH_BASE_URL=http://HOST:PORT/v1.0`, on stdout once it accepts
connections (logs go to stderr), so a parent process can read the port it picked.

`--extra-tenant TENANT_ID=SPEC` (repeatable) serves another tenant, with its own data, clock,
faults and counters, at `http://HOST:PORT/{TENANT_ID}/v1.0` (and `/beta`), its control API at
`http://HOST:PORT/{TENANT_ID}/_emulator`; it is not announced (its URL follows from the one
line). `--token TENANT_ID=TOKEN` (or `default=TOKEN` for the root tenant) makes that tenant
answer Graph's 401 to any request without `Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .demo import demo_tenant
from .generated import generated_tenant
from .server import bind_socket, is_loopback, url_host, uvicorn_config
from .state import EmulatorState
from .tenant import Tenant
from .tenants import TenantRegistry

DEFAULT = "default"  # names the root tenant in --token


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce: str) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self._announce, flush=True)


def _tenant(spec: str, seed: int, tenant_id: str | None = None) -> Tenant:
    if spec == "demo":
        return demo_tenant(seed) if tenant_id is None else demo_tenant(seed, tenant_id=tenant_id)
    if spec.startswith("generated:"):
        size, _, ratio = spec.removeprefix("generated:").partition(":")
        return generated_tenant(int(size), float(ratio or 0.3), seed, tenant_id=tenant_id)
    loaded = json.loads(Path(spec).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{spec}: a tenant file holds one JSON object")
    return loaded


def _pair(parser: argparse.ArgumentParser, flag: str, value: str) -> tuple[str, str]:
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        parser.error(f"{flag} takes NAME=VALUE, got {value!r}")
    return name, rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.graph_emulator", description="Microsoft Graph emulator for Entra Sync Monitor"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tenant", default="demo", help="demo | generated:N[:JOB_RATIO] | path/to/tenant.json")
    parser.add_argument(
        "--extra-tenant",
        action="append",
        default=[],
        metavar="TENANT_ID=SPEC",
        help="serve another tenant (a lower-case GUID) at /TENANT_ID/v1.0; SPEC as --tenant (repeatable)",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TENANT_ID=TOKEN",
        help=f"the bearer token a tenant expects ({DEFAULT}=TOKEN for the root tenant; repeatable); none: no check",
    )
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--frozen-clock", action="store_true", help="the clock moves only when advanced through the control API"
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help="listen on a non-loopback address (a dev tool: test tokens at most)"
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        parser.error(f"refusing to listen on non-loopback host {args.host!r} without --allow-remote")
    try:
        tenant = _tenant(args.tenant, args.seed)
    except (OSError, ValueError) as exc:
        parser.error(f"--tenant {args.tenant}: {exc}")
    tokens = dict(_pair(parser, "--token", value) for value in args.token)
    state = EmulatorState(
        tenant, latency_ms=args.latency_ms, frozen_clock=args.frozen_clock, token=tokens.pop(DEFAULT, None)
    )
    registry = TenantRegistry(state)
    for value in args.extra_tenant:
        tenant_id, spec = _pair(parser, "--extra-tenant", value)
        try:
            extra = EmulatorState(
                _tenant(spec, args.seed, registry.check(tenant_id)),
                tenant_id=tenant_id,
                latency_ms=args.latency_ms,
                frozen_clock=args.frozen_clock,
                token=tokens.pop(tenant_id, None),
            )
        except (OSError, ValueError) as exc:
            parser.error(f"--extra-tenant {value}: {exc}")
        registry.add(tenant_id, extra)
    if tokens:
        parser.error(f"--token for tenants not served: {', '.join(sorted(tokens))}")
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    announce = f"GRAPH_BASE_URL=http://{url_host(args.host)}:{port}/v1.0"
    server = _AnnouncingServer(uvicorn_config(create_app(tenants=registry), args.log_level), announce)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
