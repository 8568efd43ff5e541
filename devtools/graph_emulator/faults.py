"""Injected faults: throttling, outages, truncated bodies, slow answers, forbidden or missing SPs.

A rule matches the request path after the version (`/servicePrincipals/{id}/...`, `/$batch`)
with a regex, for top-level requests, batch items or both, and optionally only requests whose
body holds `bodyContains` (e.g. the `$batch` that carries one service principal's id). It fails
the first `times` matches (or every `every`-th match, or always) and then lets requests through,
which is how tests drive a client's retry logic deterministically.

Modes: `status` answers a Graph error (with Retry-After for 429/503); `truncate` cuts a 200's
JSON in half (inside a batch, the item's body comes back as a base64 string, the way Graph
returns a body it cannot embed as JSON); `slow` only delays; `drop` (top level only) closes the
connection halfway through the body; `body` answers 200 with the rule's `body` instead of the
real one (a shape the client does not expect).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODES = ("status", "truncate", "slow", "drop", "body")


class FaultConfigError(ValueError):
    """A fault config the control API rejects with 400."""


@dataclass
class FaultRule:
    pattern: re.Pattern[str]
    status: int = 503
    retry_after: int | None = None
    times: int | None = None
    every: int | None = None
    in_batch: bool | None = None
    mode: str = "status"
    delay_ms: int = 0
    body_contains: str | None = None
    body: Any = None
    matched: int = 0
    fired: int = 0

    def applies(self, path: str, in_batch: bool, body: bytes) -> bool:
        if self.in_batch is not None and self.in_batch != in_batch:
            return False
        if self.body_contains is not None and self.body_contains.encode() not in body:
            return False
        return self.pattern.search(path) is not None

    def fire(self) -> bool:
        """Count a match; True when this match should be faulted."""
        self.matched += 1
        if self.times is not None and self.fired >= self.times:
            return False
        if self.every is not None and self.matched % self.every != 0:
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.pattern.pattern,
            "status": self.status,
            "retryAfter": self.retry_after,
            "times": self.times,
            "every": self.every,
            "inBatch": self.in_batch,
            "mode": self.mode,
            "delayMs": self.delay_ms,
            "bodyContains": self.body_contains,
            "body": self.body,
            "matched": self.matched,
            "fired": self.fired,
        }


@dataclass(frozen=True)
class FaultOutcome:
    """What to do to one request: fail with `status`, truncate, drop or replace the body,
    and/or delay it."""

    status: int | None = None
    retry_after: int | None = None
    truncate: bool = False
    delay_ms: int = 0
    drop: bool = False
    replace: bool = False
    body: Any = None


def _int(raw: Mapping[str, Any], key: str, default: int | None, low: int = 0) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise FaultConfigError(f"{key} must be an integer >= {low} or null")
    return value


def _rule(raw: Any) -> FaultRule:
    if not isinstance(raw, Mapping):
        raise FaultConfigError("each rule is an object")
    try:
        pattern = re.compile(str(raw.get("path", "")))
    except re.error as exc:
        raise FaultConfigError(f"path is not a valid regex: {exc}") from exc
    mode = raw.get("mode", "status")
    if mode not in MODES:
        raise FaultConfigError(f"mode must be one of {', '.join(MODES)}")
    status = _int(raw, "status", 503, low=100) or 503
    in_batch = raw.get("inBatch")
    if in_batch is not None and not isinstance(in_batch, bool):
        raise FaultConfigError("inBatch must be true, false or null")
    body_contains = raw.get("bodyContains")
    if body_contains is not None and (not isinstance(body_contains, str) or not body_contains):
        raise FaultConfigError("bodyContains must be a non-empty string or null")
    if mode == "body" and "body" not in raw:
        raise FaultConfigError("mode body needs the body to answer with")
    # Graph always sends Retry-After with 429 and 503; default to one second.
    retry_default = 1 if status in (429, 503) else None
    return FaultRule(
        pattern=pattern,
        status=status,
        retry_after=_int(raw, "retryAfter", retry_default),
        times=_int(raw, "times", None),
        every=_int(raw, "every", None, low=1),
        in_batch=in_batch,
        mode=mode,
        delay_ms=_int(raw, "delayMs", 0) or 0,
        body_contains=body_contains,
        body=raw.get("body"),
    )


@dataclass
class FaultConfig:
    latency_ms: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    per_id: dict[str, int] = field(default_factory=dict)  # lower-cased SP id -> status
    shuffle_batch: bool = False  # Graph does not promise batch responses in request order
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def parse(cls, raw: Any) -> FaultConfig:
        if not isinstance(raw, Mapping):
            raise FaultConfigError("the fault config is a JSON object")
        rules = raw.get("rules") or []
        per_id = raw.get("perId") or {}
        if not isinstance(rules, list) or not isinstance(per_id, Mapping):
            raise FaultConfigError("rules is a list and perId an object")
        statuses: dict[str, int] = {}
        for sp_id, status in per_id.items():
            if isinstance(status, bool) or not isinstance(status, int) or status < 400:
                raise FaultConfigError("perId maps a service principal id to an HTTP error status")
            statuses[str(sp_id).lower()] = status
        return cls(
            latency_ms=_int(raw, "latencyMs", 0) or 0,
            rules=[_rule(rule) for rule in rules],
            per_id=statuses,
            shuffle_batch=bool(raw.get("shuffleBatchResponses", False)),
        )

    def evaluate(self, path: str, in_batch: bool, body: bytes = b"") -> FaultOutcome:
        """Apply the rules in order: slow rules add delay; the first failing rule decides."""
        delay = 0
        with self._lock:
            for rule in self.rules:
                if not rule.applies(path, in_batch, body) or not rule.fire():
                    continue
                delay += rule.delay_ms
                if rule.mode == "truncate":
                    return FaultOutcome(truncate=True, delay_ms=delay)
                if rule.mode == "drop" and not in_batch:
                    return FaultOutcome(drop=True, delay_ms=delay)
                if rule.mode == "body":
                    return FaultOutcome(replace=True, body=rule.body, delay_ms=delay)
                if rule.mode == "status":
                    return FaultOutcome(rule.status, rule.retry_after, delay_ms=delay)
        return FaultOutcome(delay_ms=delay)

    def status_for(self, sp_id: str) -> int | None:
        return self.per_id.get(sp_id.lower())

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latencyMs": self.latency_ms,
                "rules": [rule.to_json() for rule in self.rules],
                "perId": dict(self.per_id),
                "shuffleBatchResponses": self.shuffle_batch,
            }
