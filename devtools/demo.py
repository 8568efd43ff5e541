"""The demo: the whole app on this machine, against three demo tenants.

Starts Azurite (data kept in .demo-data/, so re-running keeps the history) and the Graph
emulator, then runs the app's own commands: `python -m shared poll` and
`python -m shared serve`. On fresh data the emulator's tenants start --catch-up-hours in the
past and each poll moves their clocks on by --minutes-per-poll, so history grows fast; they
never pass the wall clock (the browser's), so no time the dashboard shows lies in the future.
Caught up, they keep wall time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from devtools.azurite import ROOT, AzuriteServer, free_port, wait_for_port
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorControl

DATA = ROOT / ".demo-data"
# Two more tenants beside the demo tenant (docs/multitenant.md): Fabrikam, healthy, and
# Northwind, whose admin revoked the app's consent (its Graph takes no token the app has).
FABRIKAM = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
NORTHWIND = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
_GENERATED = {FABRIKAM: (40, 0.5), NORTHWIND: (12, 0.5)}
_EXTRA_TENANTS = [
    "--extra-tenant",
    f"{FABRIKAM}=generated:40:0.5",
    "--extra-tenant",
    f"{NORTHWIND}=generated:12:0.5",
    "--token",
    f"{NORTHWIND}=consent-revoked",
]


def _clocks(control: EmulatorControl) -> list[EmulatorControl]:
    return [control, *(control.for_tenant(tenant) for tenant in _GENERATED)]


def _start_behind(control: EmulatorControl, hours: float) -> None:
    """Every tenant's clock `hours` back, and its data made anew as of then."""
    for clock in _clocks(control):
        clock.advance_clock(-hours * 3600)
    control.set_demo_tenant()
    for tenant, (principals, ratio) in _GENERATED.items():
        control.for_tenant(tenant).set_generated_tenant(principals, ratio)


def _catch_up(control: EmulatorControl, seconds: float) -> None:
    """Move every tenant's clock on by `seconds`, but never past the wall clock."""
    from datetime import UTC, datetime

    from shared.domain.timestamps import parse_timestamp

    for clock in _clocks(control):
        now = parse_timestamp(clock.now())
        behind = (datetime.now(UTC) - now).total_seconds() if now else 0.0
        if (step := min(seconds, behind - 1)) > 0:
            clock.advance_clock(step)


def _tenants_setting(root: str) -> str:
    import json

    return json.dumps(
        [
            {"tenantId": DEMO_TENANT_ID, "displayName": "Contoso (demo)"},  # the home tenant, named
            {"tenantId": FABRIKAM, "displayName": "Fabrikam (demo)", "graphBaseUrl": f"{root}/{FABRIKAM}/v1.0"},
            {
                "tenantId": NORTHWIND,
                "displayName": "Northwind (consent revoked)",
                "graphBaseUrl": f"{root}/{NORTHWIND}/v1.0",
            },
        ]
    )


def _start_emulator(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.graph_emulator", "--port", "0", "--tenant", "demo", *_EXTRA_TENANTS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("GRAPH_BASE_URL="):
        process.kill()
        raise RuntimeError(f"the Graph emulator did not start (said {line!r})")
    return process, line.split("=", 1)[1]


def _poll(env: dict[str, str]) -> bool:
    """Run `python -m shared poll` as a user would, and say what it did in one line."""
    import json

    result = subprocess.run(
        [sys.executable, "-m", "shared", "poll"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    try:
        result_line = json.loads(result.stdout.strip().splitlines()[-1])
        for record in result_line.get("tenants") or [result_line]:  # several tenants: a line each
            print(
                f"poll of {record['tenantId']} {record['status']}: {record['servicePrincipalsScanned']} service "
                f"principals, {record['jobsRead']} jobs read, {record['jobsChanged']} changed, "
                f"{record['runsStored']} runs stored, {record['graph']['requests']} Graph requests, "
                f"{record['durationSeconds']} s",
                flush=True,
            )
    except (IndexError, KeyError, ValueError, TypeError):
        print(f"poll exit {result.returncode}", flush=True)
    if result.returncode != 0 or "poll failed for" in result.stderr:
        print(result.stderr.strip().splitlines()[-1][-2000:] if result.stderr.strip() else "", file=sys.stderr)
    return result.returncode == 0


def _example_executions_url(api: str) -> str:
    """A real job's executions URL, so the printed example works as it is."""
    import json
    import urllib.parse
    import urllib.request

    with urllib.request.urlopen(f"{api}/v1/jobs", timeout=10) as response:  # loopback only
        jobs = json.load(response)["value"]
    for job in jobs:
        if job["lastExecution"]:
            path = "/".join(urllib.parse.quote(job[k], safe="") for k in ("servicePrincipalId", "jobId"))
            return f'"{api}/v1/jobs/{path}/executions?top=5"'
    return f'"{api}/v1/jobs/<servicePrincipalId>/<jobId>/executions?top=5"'


def _port(wanted: int) -> int:
    try:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", wanted))
        return wanted
    except OSError:
        return free_port()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=7071, help="API port (another free one if taken)")
    parser.add_argument("--poll-seconds", type=float, default=30, help="seconds between polls")
    parser.add_argument(
        "--minutes-per-poll", type=float, default=30, help="demo minutes that pass per poll, until caught up"
    )
    parser.add_argument(
        "--catch-up-hours", type=float, default=12, help="on fresh data, how far back the tenants' clocks start"
    )
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: run until Ctrl-C)")
    parser.add_argument("--fresh", action="store_true", help="forget the stored demo history first")
    args = parser.parse_args(argv)

    if args.fresh and DATA.exists():
        import shutil

        shutil.rmtree(DATA)
    # Kept history is as of the wall clock it was polled at: only fresh data starts behind.
    fresh = not DATA.exists()
    processes: list[subprocess.Popen[str]] = []
    azurite = AzuriteServer(location=DATA / "azurite")
    try:
        azurite.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "GRAPH_", "AzureWebJobs"))}
        emulator, graph_url = _start_emulator(env)
        processes.append(emulator)
        control = EmulatorControl(graph_url.rsplit("/", 1)[0])
        if fresh and args.catch_up_hours > 0:
            _start_behind(control, args.catch_up_hours)
        env.update(
            {
                "AZURE_TENANT_ID": DEMO_TENANT_ID,
                "GRAPH_BASE_URL": graph_url,
                "GRAPH_AUTH": "none",
                "TENANTS": _tenants_setting(graph_url.rsplit("/", 1)[0]),
                "AzureWebJobsStorage": azurite.connection_string,
                "TABLE_PREFIX": "demo",
                # The emulator serves the provisioning logs: the demo shows why jobs fail.
                "PROVISIONING_LOGS": "samples",
            }
        )
        print(f"Azurite tables: {azurite.table_endpoint} (data in {DATA})")
        print(f"Graph emulator: {graph_url}")
        _poll(env)
        port = _port(args.port)
        server = subprocess.Popen(
            [sys.executable, "-m", "shared", "serve", "--port", str(port)], cwd=ROOT, env=env, text=True
        )
        processes.append(server)
        wait_for_port(port, 30)
        api = f"http://127.0.0.1:{port}/api"
        example = _example_executions_url(api)
        print(
            f"""
Entra Sync Monitor is running on three demo tenants: Contoso (the home tenant), Fabrikam, and
Northwind, whose consent was revoked (it shows as consentMissing; the others go on).
  Dashboard:             {api}/v1/dashboard
  API docs (OpenAPI UI): {api}/docs
  OpenAPI document:      {api}/openapi.json
  Prometheus metrics:    {api}/v1/metrics           (docs/metrics.md: scrape config, Grafana dashboard)
Try:
  curl -s {api}/v1/tenants                       (each tenant's state, last poll and job counts)
  curl -s {api}/v1/tenants/summary
  curl -s '{api}/v1/jobs?tenant={FABRIKAM}'
  curl -s {api}/v1/summary
  curl -s {api}/v1/jobs
  curl -s {example}
  curl -s '{api}/v1/errors?window=24h'          (why jobs fail: the provisioning logs' error groups)
Polling every {args.poll_seconds:g} s; {args.minutes_per_poll:g} demo minutes pass per poll until the
tenants' clocks reach the wall clock, then real time. Ctrl-C stops.
""",
            flush=True,
        )
        started = time.monotonic()
        while not args.duration or time.monotonic() - started < args.duration:
            time.sleep(
                min(args.poll_seconds, max(0.1, args.duration - (time.monotonic() - started)))
                if args.duration
                else args.poll_seconds
            )
            if server.poll() is not None:
                print("the API server stopped", file=sys.stderr)
                return 1
            if args.duration and time.monotonic() - started >= args.duration:
                break
            _catch_up(control, args.minutes_per_poll * 60)
            _poll(env)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        azurite.stop()
        print("demo stopped")


if __name__ == "__main__":
    sys.exit(main())
