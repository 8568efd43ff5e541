"""The naive baseline the app is measured against: what a first script would do.

- Graph: `httpx` directly (a keep-alive connection, no SDK), one request at a time:
  enumerate `/servicePrincipals?$select=id,appId,displayName&$top=999` following
  `@odata.nextLink` (the same page size as the app), then GET each service principal's
  `/synchronization/jobs`, in sequence. A 429/503/504 is retried after its Retry-After.
- Tables: `azure-data-tables` (sync client), one `upsert_entity` per record, no batching:
  a job entity per job and an execution entity per distinct run it shows
  (`lastExecution`, `lastSuccessfulExecution`, `lastSuccessfulExecutionWithExports`;
  the same run in two slots is one entity; Graph's year-0001 sentinels are not runs).
- No change detection: every poll writes everything it read.

It reads the app's own settings names from the environment (AZURE_TENANT_ID, GRAPH_BASE_URL,
AzureWebJobsStorage, TABLE_PREFIX) but shares no code with `shared/`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

_RETRYABLE = frozenset({429, 503, 504})
_ATTEMPTS = 5
_KEY_UNSAFE = re.compile(r"[/\\#?%|\x00-\x1f\x7f-\x9f]")
RUN_SLOTS = ("lastExecution", "lastSuccessfulExecution", "lastSuccessfulExecutionWithExports")


def _key(value: str) -> str:
    return _KEY_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value)


class _Graph:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(timeout=60.0)
        self.requests = 0
        self.throttled = 0

    def get(self, url: str) -> tuple[int, Any]:
        for attempt in range(1, _ATTEMPTS + 1):
            response = self.client.get(url)
            self.requests += 1
            if response.status_code in _RETRYABLE and attempt < _ATTEMPTS:
                self.throttled += 1
                try:
                    wait = float(response.headers.get("Retry-After", "1"))
                except ValueError:
                    wait = 1.0
                time.sleep(min(60.0, max(0.0, wait)))
                continue
            body = response.json() if response.content else None
            return response.status_code, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.client.close()


def _table(service: TableServiceClient, name: str) -> TableClient:
    try:
        service.create_table(name)
    except ResourceExistsError:
        pass
    return service.get_table_client(name)


def _runs(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    status = job.get("status") if isinstance(job.get("status"), dict) else {}
    runs: dict[str, dict[str, Any]] = {}
    for slot in RUN_SLOTS:
        run = (status or {}).get(slot)
        if not isinstance(run, dict) or not run.get("activityIdentifier"):
            continue
        if str(run.get("timeBegan") or "").startswith("0001"):
            continue
        runs.setdefault(str(run["activityIdentifier"]), run)
    return list(runs.values())


def poll(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One naive poll; returns what it did (its own counts, for cross-checking only)."""
    env = os.environ if env is None else env
    tenant = env["AZURE_TENANT_ID"].lower()
    prefix = env.get("TABLE_PREFIX") or "naive"
    graph = _Graph(env["GRAPH_BASE_URL"])
    service = TableServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    jobs_table = _table(service, f"{prefix}Jobs")
    runs_table = _table(service, f"{prefix}Executions")
    record: dict[str, Any] = {"servicePrincipals": 0, "jobs": 0, "runs": 0, "writes": 0, "errors": 0}
    try:
        url: str | None = f"{graph.base_url}/servicePrincipals?$select=id,appId,displayName&$top=999"
        principals: list[dict[str, Any]] = []
        while url:
            status, page = graph.get(url)
            if status != 200 or not isinstance(page, dict):
                raise RuntimeError(f"servicePrincipals page answered {status}")
            principals.extend(page.get("value") or [])
            url = page.get("@odata.nextLink")
        record["servicePrincipals"] = len(principals)
        for sp in principals:
            jobs_url: str | None = f"{graph.base_url}/servicePrincipals/{quote(sp['id'], safe='')}/synchronization/jobs"
            jobs: list[dict[str, Any]] = []
            while jobs_url:
                status, body = graph.get(jobs_url)
                if status != 200 or not isinstance(body, dict):
                    record["errors"] += 1
                    break
                jobs.extend(job for job in body.get("value") or [] if isinstance(job, dict))
                jobs_url = body.get("@odata.nextLink")
            for job in jobs:
                if not job.get("id"):
                    record["errors"] += 1
                    continue
                job_key = f"{_key(sp['id'])}|{_key(str(job['id']))}"
                jobs_table.upsert_entity(
                    {
                        "PartitionKey": tenant,
                        "RowKey": job_key,
                        "servicePrincipalName": sp.get("displayName") or "",
                        "document": json.dumps(job, separators=(",", ":")),
                    },
                    mode=UpdateMode.REPLACE,
                )
                record["jobs"] += 1
                record["writes"] += 1
                for run in _runs(job):
                    runs_table.upsert_entity(
                        {
                            "PartitionKey": f"{tenant}|{job_key}",
                            "RowKey": _key(str(run["activityIdentifier"])),
                            "document": json.dumps(run, separators=(",", ":")),
                        },
                        mode=UpdateMode.REPLACE,
                    )
                    record["runs"] += 1
                    record["writes"] += 1
    finally:
        graph.close()
        jobs_table.close()
        runs_table.close()
        service.close()
    record["graphRequests"] = graph.requests
    record["throttled"] = graph.throttled
    record["status"] = "succeeded" if not record["errors"] else "partial"
    return record
