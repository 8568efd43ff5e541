"""Property-based: whatever Graph sends, normalization never raises (but for an unidentifiable
job) and keeps Graph's values. tests/storage/test_stored_properties.py stores the same jobs."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from shared.domain.model import EXECUTION_KINDS, HEALTH_VALUES
from shared.domain.normalize import is_identified
from tests.support.strategies import jobs, normalize


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs)
def test_normalization_never_raises_and_keeps_graphs_values(raw: Any) -> None:
    job = normalize(raw)
    if job is None:
        return
    json.dumps(job, allow_nan=False)  # what the API returns is always valid JSON
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    if isinstance(status.get("code"), str) and len(status["code"]) <= 2000:
        assert job["statusCode"] == status["code"]  # unknown members kept as their string
    for kind in EXECUTION_KINDS:
        execution = job[kind]
        source = status.get(kind)
        if execution is not None:
            if execution["activityIdentifier"] is not None:
                assert execution["activityIdentifier"] == source["activityIdentifier"]
            assert execution["timeBegan"] is None or not execution["timeBegan"].startswith("0001")
            if not is_identified(execution):  # partial: kept only with a real end, and noted
                assert execution["timeEnded"] is not None
                assert any("partial record" in note for note in job["anomalies"]) or len(job["anomalies"]) >= 50
            if isinstance(source.get("state"), str):
                assert execution["state"] == source["state"]
    assert job["health"] in HEALTH_VALUES
