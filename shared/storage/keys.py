"""Every key formula of the app's tables, in one place (docs/tables.md has the layout).

Keys come from Graph's ids and times only, so repeated or overlapping polls write the same
entities. Times become inverted 100 ns ticks (fixed width), so a partition reads newest first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.domain.model import Event, Execution
from shared.domain.normalize import run_began, run_id
from shared.domain.timestamps import datetime_ticks, timestamp_ticks

_MAX_TICKS = 3_155_378_975_999_999_999  # 9999-12-31T23:59:59.9999999Z
_KEY_UNSAFE = re.compile(r"[/\\#?%|\x00-\x1f\x7f-\x9f]")
_KEY_PART_LIMIT = 240  # three parts and a timestamp stay under the 1 KiB key limit
DISCOVERY_MARKER = "!discovery"  # sorts before any id; holds the discovery sweep's state
SIGNING_KEY_ROW = "continuation"  # the ApiKeys row of the continuation-signing key


def key_part(value: str) -> str:
    """Escape what Table keys forbid (`/ \\ # ?`, control characters) and our separator `|`.
    A part too long for a 1 KiB key keeps a readable head and a hash of the whole value."""
    escaped = _KEY_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value)
    if len(escaped) <= _KEY_PART_LIMIT:
        return escaped
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{escaped[:100].rstrip('%0123456789ABCDEF')}~{digest}"


def job_key(service_principal_id: str, job_id: str) -> str:
    """A job's RowKey in Jobs and JobDays, and the tail of its Executions/Events partition."""
    return f"{key_part(service_principal_id)}|{key_part(job_id)}"


def job_partition(tenant_id: str, service_principal_id: str, job_id: str) -> str:
    """The partition of a job's Executions and Events rows."""
    return f"{tenant_id}|{job_key(service_principal_id, job_id)}"


def day_partition(tenant_id: str, day: str) -> str:
    """The partition of one UTC day's RunsByTime and JobDays rows (`day` is yyyy-mm-dd)."""
    return f"{tenant_id}|{day}"


def inverted_ticks(timestamp: str) -> str:
    """Fixed-width key part that sorts newest first."""
    return f"{_MAX_TICKS - timestamp_ticks(timestamp):019d}"


def run_row_key(time_began: str, activity_identifier: str) -> str:
    """An Executions RowKey from a run's timeBegan and activityIdentifier."""
    return f"{inverted_ticks(time_began)}|{key_part(activity_identifier)}"


def execution_row_key(execution: Execution) -> str:
    return run_row_key(run_began(execution), run_id(execution))


def runs_by_time_keys(
    tenant_id: str, service_principal_id: str, job_id: str, time_began: str, activity_identifier: str
) -> tuple[str, str]:
    """A run's RunsByTime PartitionKey (its UTC day) and RowKey."""
    row_key = f"{inverted_ticks(time_began)}|{job_key(service_principal_id, job_id)}|{key_part(activity_identifier)}"
    return day_partition(tenant_id, time_began[:10]), row_key


def event_row_key(event: Event) -> str:
    # Keyed by the left state's observedAt: overlapping polls write the same event once.
    when = inverted_ticks(event["since"]) if event["since"] else f"{_MAX_TICKS:019d}"
    return f"{when}|{event['kind']}"


def poll_row_key(started_at: str, poll_id: str) -> str:
    return f"{inverted_ticks(started_at)}|{poll_id}"


def run_filter(
    *,
    since: datetime | None,
    until: datetime | None,
    states: Sequence[str] = (),
    after_row_key: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """A parameterized filter (with `@pk` left to the caller) over rows keyed
    `inverted timeBegan ticks|...`: timeBegan in [since, until), state among `states`, and
    RowKey after `after_row_key`. The bounds become a RowKey range, so the service reads
    only the rows in the window."""
    clauses, parameters = ["PartitionKey eq @pk"], {}
    if since is not None:  # timeBegan >= since  <=>  inverted ticks <= MAX - ticks(since)
        clauses.append("RowKey lt @newest")
        parameters["newest"] = f"{_MAX_TICKS - datetime_ticks(since) + 1:019d}"
    if until is not None:  # timeBegan < until  <=>  inverted ticks > MAX - ticks(until)
        clauses.append("RowKey ge @oldest")
        parameters["oldest"] = f"{max(_MAX_TICKS - datetime_ticks(until) + 1, 0):019d}"
    if after_row_key is not None:
        clauses.append("RowKey gt @after")
        parameters["after"] = after_row_key
    if states:
        names = [f"state{index}" for index in range(len(states))]
        # The SDK substitutes `@name` only as a whole space-separated word: hence "( ... )".
        clauses.append("( " + " or ".join(f"state eq @{name}" for name in names) + " )")
        parameters.update(zip(names, states, strict=True))
    return " and ".join(clauses), parameters
