"""Timer schedules as the Functions host reads them: how long between two firings. Pure.

A schedule is an NCRONTAB expression (six fields: second minute hour day month day-of-week;
`*`, `?`, lists, ranges, steps, month and day names, 7 for Sunday too) or a `hh:mm:ss`
TimeSpan. `schedule_interval_seconds` gives the longest gap between two firings, over every
calendar day of four years (so month lengths, weekdays and 29 February all count); the
health check (`shared.api.service_health`) allows two of them before it calls polls stale.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from functools import lru_cache

_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_TIMESPAN = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})$")
_SCAN_FROM = date(2024, 1, 1)  # a leap year: four years from it hold every calendar day
_SCAN_DAYS = 4 * 366


def _number(text: str, field: int) -> int:
    names = _MONTHS if field == 4 else _WEEKDAYS if field == 5 else ()
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if field == 4 else 0)
    if not text.isdigit():
        raise ValueError(f"not a number: {text!r}")
    return int(text)


def _field_values(text: str, field: int) -> frozenset[int]:
    low, high = _BOUNDS[field]
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        if slash and (not step_text.isdigit() or int(step_text) < 1):
            raise ValueError(f"bad step in {part!r}")
        step = int(step_text) if slash else 1
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, field), _number(last, field)
        else:
            start = _number(base, field)
            end = high if slash else start
        if not low <= start <= end <= high:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    if field == 5 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values)


@lru_cache(maxsize=32)
def schedule_interval_seconds(expression: str) -> float:
    """The longest gap between two firings of a timer schedule; ValueError if unreadable."""
    text = expression.strip()
    if match := _TIMESPAN.match(text):
        hours, minutes, seconds = (int(group) for group in match.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if total <= 0:
            raise ValueError("a TimeSpan schedule must be positive")
        return float(total)
    fields = text.split()
    if len(fields) != 6:
        raise ValueError("an NCRONTAB schedule has six fields: second minute hour day month day-of-week")
    second, minute, hour, day, month, weekday = (_field_values(text, index) for index, text in enumerate(fields))
    times = sorted(h * 3600 + m * 60 + s for h in hour for m in minute for s in second)
    days = [
        offset
        for offset in range(_SCAN_DAYS)
        if (d := _SCAN_FROM + timedelta(days=offset)).day in day
        and d.month in month
        and (d.isoweekday() % 7) in weekday
    ]
    if not times or not days:
        raise ValueError("the schedule never fires")
    if len(days) == 1:  # fires on one calendar day in four years (29 February)
        return float(_SCAN_DAYS * 86_400)
    gap = max((b - a for a, b in itertools.pairwise(times)), default=0)
    day_gap = max((b - a for a, b in itertools.pairwise(days)), default=0)
    if day_gap:
        gap = max(gap, day_gap * 86_400 - times[-1] + times[0])
    return float(gap or 86_400)
