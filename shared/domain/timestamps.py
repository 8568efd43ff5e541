"""Reading Graph's times and durations, which come in more shapes than ISO 8601 suggests.

Graph sends 0-7 fractional digits, uses `0001-01-01T00:00:00Z` (.NET DateTime.MinValue) for
"never" and `P10675199DT2H48M5.4775807S` (.NET TimeSpan.MaxValue) for "no schedule".
Timestamps are kept as canonical UTC text with up to 7 fractional digits, so no precision
Graph sent is lost; `parse_timestamp` gives a datetime for arithmetic.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7})\d*)?(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)
_NO_SCHEDULE_SECONDS = 10_675_199 * 86_400
_TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


class Notes:
    """Collects what could not be read, so one odd field never costs a whole record."""

    LIMIT = 50  # a pathological payload must not bloat the stored record

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        if len(self.items) < self.LIMIT:
            self.items.append(f"{where}: {what}")


def format_timestamp(value: object, notes: Notes | None = None, where: str = "") -> str | None:
    """Canonical ISO 8601 UTC (`...Z`) keeping up to 7 fractional digits; None means never."""
    if value is None or value == "":
        return None
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if not match:
        if notes is not None:
            notes.add(where, f"unreadable timestamp {str(value)[:60]!r}")
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if year == "0001":  # .NET DateTime.MinValue: Graph's "never"
        return None
    try:
        instant = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        if offset and offset.upper() != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            instant -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    except (ValueError, OverflowError):
        if notes is not None:
            notes.add(where, f"impossible timestamp {str(value)[:60]!r}")
        return None
    digits = (fraction or "").rstrip("0")
    base = instant.strftime("%Y-%m-%dT%H:%M:%S")
    if len(base) != 19:  # years before 1000 print short on some platforms
        base = f"{instant.year:04d}{base[base.index('-') :]}"
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def parse_timestamp(value: object) -> datetime | None:
    """A Graph DateTimeOffset as an aware UTC datetime; None for null, garbage or `0001-01-01`."""
    text = format_timestamp(value)
    if text is None:
        return None
    base, _, fraction = text[:-1].partition(".")
    instant = datetime.fromisoformat(base).replace(tzinfo=UTC)
    return instant + timedelta(microseconds=int(fraction[:6].ljust(6, "0"))) if fraction else instant


def datetime_ticks(instant: datetime) -> int:
    """100 ns ticks since 0001-01-01 of an aware datetime (exact: no float arithmetic)."""
    delta = instant.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _TICKS_PER_SECOND + delta.microseconds * 10


def timestamp_ticks(text: str) -> int:
    """100 ns ticks of a canonical timestamp, keeping all 7 fractional digits Graph may send."""
    base, _, fraction = text[:-1].partition(".")
    return datetime_ticks(datetime.fromisoformat(base).replace(tzinfo=UTC)) + int(fraction.ljust(7, "0")[:7] or 0)


def isoformat_utc(instant: datetime) -> str:
    """Canonical text of a datetime (naive ones are taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    text = format_timestamp(instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z")
    assert text is not None
    return text


def parse_duration_seconds(value: object, notes: Notes | None = None, where: str = "") -> float | None:
    """ISO 8601 duration in seconds; None for null, unreadable or .NET's maximum span."""
    if value is None or value == "":
        return None
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or match.group(0).upper().rstrip("T") in ("P", "-P"):
        if notes is not None:
            notes.add(where, f"unreadable duration {str(value)[:60]!r}")
        return None
    negative, days, hours, minutes, seconds = match.groups()
    total = int(days or 0) * 86_400 + int(hours or 0) * 3_600 + int(minutes or 0) * 60
    total_seconds = total + float(seconds or 0)
    if total_seconds >= _NO_SCHEDULE_SECONDS:
        return None
    if negative:
        if notes is not None:
            notes.add(where, f"negative duration {value!r}")
        return None
    return total_seconds


def retry_after_seconds(value: object, *, now: datetime) -> float | None:
    """An HTTP `Retry-After` value in seconds from `now`: delay-seconds as given (decimals and
    signs taken, the caller decides what it believes), or an HTTP date (RFC 9110), 0 once it
    has passed. None when absent or unreadable: not a finite number, nor a date with a zone."""
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            seconds = float(value.strip())
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max((when - now).total_seconds(), 0.0) if when.tzinfo else None
    else:
        return None
    return seconds if math.isfinite(seconds) else None
