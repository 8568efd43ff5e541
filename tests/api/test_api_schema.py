"""Schemathesis against the API's own OpenAPI document, in process, over the demo tenant.

Every operation gets generated requests, valid (against real and made-up jobs) and invalid;
no answer may be a 5xx, and every answer must be a documented status with a documented
media type, body schema and headers; invalid input must be refused with a 4xx. Bounded in
examples and time (derandomized, so a failure reproduces).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from tests.support.api import polls_apart, seeded

EXAMPLES = 25
# A guard against a run that never ends, not a speed target (those live in bench/): on a shared
# 2-core machine the whole run took 60 s at times, so the guard leaves room.
BUDGET_SECONDS = 180.0
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
POSITIVE_CHECKS = [not_a_server_error, *CONFORMANCE, response_headers_conformance]
NEGATIVE_CHECKS = [not_a_server_error, *CONFORMANCE, negative_data_rejection]


@pytest.fixture(scope="module")
def demo_tables(azurite: AzuriteServer, emulator: EmulatorServer) -> Iterator[dict[str, str]]:
    with seeded(azurite, emulator, polls_apart(3)) as env:
        yield env


def exercise(operation: Any, mode: GenerationMode, real_ids: list[dict[str, str]]) -> None:
    checks = POSITIVE_CHECKS if mode == GenerationMode.POSITIVE else NEGATIVE_CHECKS
    targets_a_job = "{jobId}" in operation.path and mode == GenerationMode.POSITIVE

    @given(case=operation.as_strategy(generation_mode=mode), real=st.sampled_from([None, *real_ids]))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: Any, real: dict[str, str] | None) -> None:
        if targets_a_job and real is not None:
            case.path_parameters = dict(real)  # a job that exists, so 200s are generated too
        case.call_and_validate(checks=checks)

    conforms()


def test_schemathesis_finds_no_server_error_and_no_contract_violation(demo_tables: dict[str, str]) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app())
    try:
        jobs = schema["/api/v1/jobs"]["GET"].Case().call().json()["value"]
        real_ids = [{"servicePrincipalId": j["servicePrincipalId"], "jobId": j["jobId"]} for j in jobs]
        assert real_ids
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 6
        for operation in operations:
            modes = [GenerationMode.POSITIVE]
            # Only If-None-Match (any string), or no input at all: nothing can be invalid.
            if any(parameter.name != "If-None-Match" for parameter in operation.iter_parameters()):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                exercise(operation, mode, real_ids)
                assert time.monotonic() - started < BUDGET_SECONDS, f"over budget at {operation.label} ({mode})"
    finally:
        shutdown_lifespans()  # closes the app's table client in the loop schemathesis ran it on
