"""The API's response models are derived from the domain's shapes: one declaration each."""

from __future__ import annotations

from typing import NotRequired, get_origin, get_type_hints

import pytest

from shared.api import models
from shared.domain import model, provisioning_logs

SHAPES = [
    model.SyncError,
    model.Execution,
    model.Quarantine,
    model.Progress,
    model.Job,
    model.Event,
    provisioning_logs.ObjectSample,
    provisioning_logs.ErrorGroup,
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_each_api_model_has_the_domain_shapes_fields_in_order(shape: type) -> None:
    derived = getattr(models, shape.__name__)
    hints = get_type_hints(shape, include_extras=True)
    assert list(derived.model_fields) == list(hints)
    for name, hint in hints.items():
        field = derived.model_fields[name]
        # Absent from older stored records: the API answers null instead of failing.
        assert field.is_required() == (get_origin(hint) is not NotRequired), name


def test_descriptions_and_nested_shapes_come_from_the_domain() -> None:
    schema = models.JobDetail.model_json_schema()
    job = schema["$defs"]["Job"]
    assert job["description"] == model.Job.__doc__
    assert job["properties"]["observedAt"]["description"] == "when this state was first observed"
    assert "firstObservedAt" not in job["required"]
    assert job["additionalProperties"] is False
    last = job["properties"]["lastExecution"]["anyOf"]
    assert {"$ref": "#/$defs/Execution"} in last
    assert schema["$defs"]["Event"]["properties"]["kind"]["description"] == (
        "jobAppeared, statusCodeChanged, quarantineEntered, quarantineReasonChanged, quarantineLeft, "
        "healthChanged, jobRemoved, alertsMuted, alertsUnmuted, jobRestarted, jobPaused or jobStarted"
    )


def test_a_field_the_contract_does_not_list_is_dropped_not_served() -> None:
    progress = {"completedUnits": 1, "totalUnits": 2, "units": "u", "progressObservationDateTime": None, "new": 1}
    assert "new" not in models.Progress.model_validate(progress).model_dump()


def test_an_example_stored_before_its_systems_were_kept_answers_them_null() -> None:
    old = {
        "eventId": "e1",
        "activityDateTime": "2026-11-30T09:10:00Z",
        "sourceId": "a",
        "sourceDisplayName": "A",
        "targetId": None,
        "targetDisplayName": None,
        "identityType": "User",
    }
    served = models.ObjectSample.model_validate(old).model_dump()
    assert (served["sourceSystem"], served["targetSystem"]) == (None, None)
    sample = models.ErrorGroupPage.model_json_schema()["$defs"]["ObjectSample"]
    assert sample["properties"]["targetSystem"]["description"].startswith("the system the object was provisioned to")
    assert "sourceSystem" not in sample["required"]
