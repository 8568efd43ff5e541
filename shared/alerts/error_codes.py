"""What the provisioning logs add to alerts (PROVISIONING_LOGS on): pure.

Two things, both from the error groups the poll stored (`shared.provisioning_logs`):

- the **top error codes** of a job's failures in the last `RECENT_HOURS`, named in its
  quarantined, failing and escrow alerts ("42 failures: AttributeMappingDependencyFailure
  (first seen 09:12 UTC)"). They are live facts: counts move every poll, and a moving count
  must neither re-send nor rewrite an alert;
- the **newErrorCode** rule: a job fails with an error code it has not shown before. A job's
  memory row keeps the codes it has shown (`errorCodes`, with when each was first seen) and
  since when it has kept them (`errorCodesSince`). For the first `LEARN_HOURS` of that memory
  every code is learned silently (turning the feature on, or a job's first day, is not news),
  and a code the job's stored history already holds is learned, not announced. Only
  `failure` events count: `skipped` (out of scope) and `warning` are routine.

A new code's alert stays open while the code is new (`NEW_FOR_HOURS` after its first event)
and is never reminded: it tells a change once. A second new code while it is open is told as
an update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict

from shared.domain.timestamps import isoformat_utc, parse_timestamp

RECENT_HOURS = 24  # the window of the top codes, and how long a code stays "new"
NEW_FOR_HOURS = RECENT_HOURS
LEARN_HOURS = 24
TOP_CODES = 3
MAX_KNOWN_CODES = 200  # bounds the memory row; the oldest are forgotten first
FAILURE = "failure"


class CodeCount(TypedDict):
    """A job's failure events with one error code in the recent window."""

    errorCode: str
    count: int
    firstSeen: str
    lastSeen: str


class KnownCode(TypedDict):
    """An error code a job has shown, as its memory row keeps it."""

    firstSeen: str
    new: bool  # announced by newErrorCode (False: learned silently)


JobKey = tuple[str, str]  # (servicePrincipalId, jobId)


def failures_by_code(rows: Iterable[Mapping[str, Any]]) -> dict[JobKey, list[CodeCount]]:
    """Stored hour rows (ProvisioningErrorDays) as each job's failure codes, most first. Rows
    of other statuses and failures without a code are left out."""
    by_job: dict[JobKey, dict[str, CodeCount]] = {}
    for row in rows:
        code, sp_id, job_id = row.get("errorCode"), row.get("servicePrincipalId"), row.get("jobId")
        if row.get("status") != FAILURE or not code or not sp_id or not job_id:
            continue
        codes = by_job.setdefault((sp_id, job_id), {})
        count = int(row.get("count") or 0)
        first, last = str(row.get("firstSeen") or ""), str(row.get("lastSeen") or "")
        known = codes.get(code)
        if known is None:
            codes[code] = {"errorCode": code, "count": count, "firstSeen": first, "lastSeen": last}
        else:
            known["count"] += count
            known["firstSeen"] = min(known["firstSeen"], first)
            known["lastSeen"] = max(known["lastSeen"], last)
    return {key: sorted(codes.values(), key=lambda c: (-c["count"], c["errorCode"])) for key, codes in by_job.items()}


def _clock(at: str, now: datetime) -> str:
    """09:12 UTC today, else 2026-11-29 09:12 UTC."""
    when = parse_timestamp(at)
    if when is None:
        return at
    text = isoformat_utc(when)
    return f"{text[11:16]} UTC" if text[:10] == isoformat_utc(now)[:10] else f"{text[:10]} {text[11:16]} UTC"


def describe_code(code: CodeCount, now: datetime, first_seen: str | None = None) -> str:
    """`42 failures: AttributeMappingDependencyFailure (first seen 09:12 UTC)`."""
    noun = "failure" if code["count"] == 1 else "failures"
    return f"{code['count']:,} {noun}: {code['errorCode']} (first seen {_clock(first_seen or code['firstSeen'], now)})"


def top_errors(codes: Iterable[CodeCount] | None, now: datetime, known: Mapping[str, KnownCode] | None = None) -> str:
    """The job's top failure codes of the recent window as one line ('' when none). A code's
    first sighting is the memory's when it has one (older than the window)."""
    known = known or {}
    parts = []
    for code in list(codes or [])[:TOP_CODES]:
        memory = known.get(code["errorCode"])
        parts.append(describe_code(code, now, memory["firstSeen"] if memory is not None else None))
    return "; ".join(parts)


def unknown_codes(codes: Iterable[CodeCount] | None, memory_codes: Mapping[str, KnownCode] | None) -> set[str]:
    """Recent codes the job's memory does not hold yet: what the store must look up in the
    job's older history before they can be called new."""
    return {code["errorCode"] for code in codes or []} - set(memory_codes or {})


def learning(since: str | None, now: datetime) -> bool:
    """True while the job's code memory is younger than LEARN_HOURS (or not yet started)."""
    began = parse_timestamp(since)
    return began is None or now - began < timedelta(hours=LEARN_HOURS)


def learn_codes(
    memory_codes: Mapping[str, KnownCode] | None,
    since: str | None,
    codes: Iterable[CodeCount] | None,
    seen_before: set[str],
    now: datetime,
) -> tuple[dict[str, KnownCode], str]:
    """The job's known codes after this evaluation, and since when they are kept. A code is
    marked new only when the memory is past learning, the job's history before the window
    (`seen_before`) lacks it, and its first event came after the memory began."""
    at = isoformat_utc(now)
    since = since or at
    known: dict[str, KnownCode] = dict(memory_codes or {})
    began = parse_timestamp(since)
    for code in codes or []:
        name = code["errorCode"]
        if name in known:
            continue
        first = parse_timestamp(code["firstSeen"])
        is_new = (
            not learning(since, now)
            and name not in seen_before
            and first is not None
            and began is not None
            and first >= began
        )
        known[name] = {"firstSeen": code["firstSeen"], "new": is_new}
    if len(known) > MAX_KNOWN_CODES:
        keep = sorted(known.items(), key=lambda item: item[1]["firstSeen"], reverse=True)[:MAX_KNOWN_CODES]
        known = dict(keep)
    return known, since


def new_codes(known: Mapping[str, KnownCode], now: datetime) -> list[str]:
    """The codes still new now: marked new and first seen within NEW_FOR_HOURS."""
    fresh = []
    for name, code in known.items():
        first = parse_timestamp(code["firstSeen"])
        if code["new"] and first is not None and now - first < timedelta(hours=NEW_FOR_HOURS):
            fresh.append(name)
    return sorted(fresh)
