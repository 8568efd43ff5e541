"""Hypothesis strategies: whatever Graph might send as a synchronizationJob, and the
normalizer's answer to it (None where it rightly refuses)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from shared.domain.normalize import PayloadError, normalize_job

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SP = {"id": "sp/1#?", "appId": "app", "displayName": "Odd \u0000 name"}

text = st.text(max_size=40)
timestamps = st.one_of(
    st.none(),
    text,
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.1234567Z",
            "2026-11-25T10:00:00.1+02:00",
            "9999-12-31T23:59:59.9999999Z",
            "2026-13-01T00:00:00Z",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
)
numbers = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), text.map(str))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
states = st.one_of(st.sampled_from(["Succeeded", "Failed", "EntryLevelErrors", "unknownFutureValue"]), numbers)
errors = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {
            "code": st.one_of(st.none(), text),
            "message": st.one_of(st.none(), st.text(max_size=5000)),
            "tenantActionable": st.one_of(st.none(), st.booleans(), text),
        }
    ),
)
executions = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {
            "activityIdentifier": st.one_of(st.none(), text, st.text(min_size=1, max_size=300)),
            "timeBegan": timestamps,
            "timeEnded": timestamps,
            "state": states,
            "error": errors,
            "countEscrowed": numbers,
            "countEntitled": numbers,
            "countExported": numbers,
            "countExports": numbers,
            "countImported": st.one_of(st.integers(min_value=0, max_value=2**63 - 1), numbers),
        },
    ),
)
statuses = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "code": st.one_of(st.sampled_from(["Active", "Quarantine", "Paused", "NotRun", "NotConfigured"]), numbers),
            "countSuccessiveCompleteFailures": numbers,
            "escrowsPruned": st.one_of(st.booleans(), numbers),
            "lastExecution": executions,
            "lastSuccessfulExecution": executions,
            "lastSuccessfulExecutionWithExports": executions,
            "quarantine": st.one_of(
                st.none(),
                json_values,
                st.fixed_dictionaries(
                    {
                        "reason": st.one_of(text, numbers),
                        "currentBegan": timestamps,
                        "nextAttempt": timestamps,
                        "seriesBegan": timestamps,
                        "seriesCount": numbers,
                        "error": errors,
                    }
                ),
            ),
            "progress": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "completedUnits": numbers,
                            "totalUnits": numbers,
                            "units": text,
                            "progressObservationDateTime": timestamps,
                        }
                    ),
                    max_size=3,
                ),
            ),
            "synchronizedEntryCountByType": st.one_of(
                json_values,
                st.lists(st.fixed_dictionaries({"key": st.one_of(text, numbers), "value": numbers}), max_size=3),
            ),
            "steadyStateFirstAchievedTime": timestamps,
            "troubleshootingUrl": st.one_of(text, numbers),
        },
    ),
)
jobs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.text(min_size=1, max_size=300), numbers),
            "templateId": st.one_of(text, numbers),
            "schedule": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {
                        "interval": st.one_of(text, st.sampled_from(["PT40M", "P10675199DT2H48M5.4775807S", "-PT5M"])),
                        "state": st.one_of(text, numbers),
                        "expiration": timestamps,
                    }
                ),
            ),
            "status": statuses,
            "synchronizationJobSettings": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["QuarantineTooManyDeletesThreshold", "Other"]), "value": json_values}
                    ),
                    max_size=3,
                ),
            ),
        },
    ),
)


def normalize(raw: Any) -> Any:
    try:
        return normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)  # type: ignore[arg-type]
    except PayloadError:
        assert (
            not isinstance(raw, dict)
            or not isinstance(raw.get("id"), str)
            or not raw["id"].strip()
            or len(raw["id"]) > 400
        )
        return None
