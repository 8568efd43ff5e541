"""Timer schedules: the longest gap between two firings, and what cannot be read."""

from __future__ import annotations

import pytest

from shared.domain.schedule import schedule_interval_seconds


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("0 */5 * * * *", 300),
        ("0 0 * * * *", 3600),
        ("30 */15 * * * *", 900),
        ("0 15,45 * * * *", 1800),
        ("0 30 3 * * *", 86_400),
        ("0 0 9 * * Mon-Fri", 3 * 86_400),
        ("0 0 12 * * 0,7", 7 * 86_400),
        ("0 0 0 1 * *", 31 * 86_400),
        ("0 0 0 1 JAN *", 366 * 86_400),
        ("00:05:00", 300),
    ],
)
def test_the_longest_gap_of_a_schedule(schedule: str, seconds: int) -> None:
    assert schedule_interval_seconds(schedule) == seconds


@pytest.mark.parametrize("schedule", ["", "* * * * *", "0 */0 * * * *", "61 * * * * *", "0 0 0 31 2 *", "x y z a b c"])
def test_an_unreadable_schedule_is_a_value_error(schedule: str) -> None:
    with pytest.raises(ValueError):
        schedule_interval_seconds(schedule)
