"""The emulator's clock and Graph's timestamp and duration spellings.

The clock is real UTC time plus an offset that tests advance, so living tenants grow new runs
both as wall time passes and when a test jumps ahead. Freezing it makes the served data stable
while a test compares it with what the app stored.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

TICKS_PER_SECOND = 10_000_000  # .NET ticks: Graph prints up to 7 fractional digits
SENTINEL_TIME = "0001-01-01T00:00:00Z"  # DateTimeOffset.MinValue: "never"
MAX_TIMESPAN = "P10675199DT2H48M5.4775807S"  # TimeSpan.MaxValue: schedule of a never-run job


class Clock:
    """Thread-safe emulator clock: `time.time()` + offset, or a frozen instant."""

    def __init__(self, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at: float | None = time.time() if frozen else None

    def now(self) -> float:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def advance(self, seconds: float) -> float:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self.now()

    def freeze(self, frozen: bool) -> float:
        with self._lock:
            if frozen and self._frozen_at is None:
                self._frozen_at = time.time() + self._offset
            elif not frozen and self._frozen_at is not None:
                # Resume from the frozen instant rather than jumping to wall time.
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None
        return self.now()


def format_time(seconds: int, ticks: int = 0, digits: int = 7) -> str:
    """`2026-11-25T10:00:00.1234567Z` with `digits` (0-7) fractional digits, as Graph varies."""
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return base + "Z"
    return f"{base}.{ticks % TICKS_PER_SECOND:07d}"[: len(base) + 1 + min(digits, 7)] + "Z"


def iso_now(now: float) -> str:
    seconds = int(now)
    return format_time(seconds, int((now - seconds) * TICKS_PER_SECOND), 7)


def error_date(now: float) -> str:
    """Graph's innerError `date`: seconds precision, no zone designator."""
    return datetime.fromtimestamp(int(now), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_duration(seconds: int) -> str:
    """ISO 8601 duration as Graph writes schedule intervals (`PT40M`, `PT2M`, `P1D`)."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    clock += f"{secs}S" if secs else ""
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"
