"""Retry-After, as Graph and webhook receivers send it: delay-seconds or an HTTP date. Pure:
no emulator, no Azurite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.timestamps import retry_after_seconds

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),  # integers by the RFC; decimals taken too
        (3, 3.0),  # a $batch item's headers may carry a number
        ("-5", -5.0),  # as given: the caller decides what it believes
        ("100000", 100_000.0),
        ("Wed, 25 Nov 2026 12:02:30 GMT", 150.0),
        ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),  # a date that has passed: at once
    ],
)
def test_delay_seconds_and_http_dates(value: object, seconds: float) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "inf", "nan", "Wed, 25 Nov 2026 12:02:30", object()])
def test_unreadable_values_are_none(value: object) -> None:
    assert retry_after_seconds(value, now=NOW) is None
