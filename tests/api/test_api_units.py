"""The API's pure parts: tokens, content negotiation, CSV, times, principals, settings."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st

from shared.api.auth import AccessDenied, AccessPolicy, Caller, authorize, read_principal
from shared.api.http import cell, etag_matches, executions_csv, wants_csv
from shared.api.paging import ContinuationError, issue, redeem
from shared.api.params import instant_text, parse_instant
from shared.domain.timestamps import datetime_ticks, isoformat_utc, timestamp_ticks
from shared.settings import SettingsError, load_settings
from shared.storage.keys import run_filter

KEY = b"k" * 32
BASE = {"AZURE_TENANT_ID": "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


# ------------------------------------------------------------ continuation tokens


@given(
    position=st.recursive(st.text() | st.none() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c))
)
def test_a_token_gives_back_its_position(position: object) -> None:
    query = {"jobId": "scim.a", "state": ["Failed"]}
    assert redeem(KEY, "jobExecutions", query, issue(KEY, "jobExecutions", query, position)) == position


def test_a_token_is_bound_to_key_endpoint_and_query() -> None:
    token = issue(KEY, "jobExecutions", {"jobId": "a"}, "0001|x")
    for key, endpoint, query in (
        (b"other key", "jobExecutions", {"jobId": "a"}),
        (KEY, "executions", {"jobId": "a"}),
        (KEY, "jobExecutions", {"jobId": "b"}),
        (KEY, "jobExecutions", {"jobId": "a", "state": []}),
    ):
        with pytest.raises(ContinuationError):
            redeem(key, endpoint, query, token)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", ".abc", "a b.c", "é.é", "abc.def.ghi", "eyJ2IjoyfQ.AAAA"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ContinuationError):
        redeem(KEY, "jobs", {}, token)


# ------------------------------------------------------------ HTTP details


@pytest.mark.parametrize(
    ("header", "matches"),
    [('"a"', True), ('W/"a"', True), ('"b", "a"', True), ("*", True), ('"b"', False), ("a", False), ("", False)],
)
def test_if_none_match_uses_weak_comparison(header: str, matches: bool) -> None:
    assert etag_matches(header, '"a"') is matches


@pytest.mark.parametrize(
    ("format_", "accept", "csv_wanted"),
    [
        (None, None, False),
        (None, "*/*", False),
        (None, "text/csv", True),
        (None, "text/csv, */*", True),
        (None, "application/json, text/csv", False),
        (None, "text/csv;q=0.9, application/json;q=0.5", True),
        (None, "text/csv;q=0", False),
        ("json", "text/csv", False),
        ("csv", "application/json", True),
    ],
)
def test_csv_is_chosen_by_format_or_accept(format_: str | None, accept: str | None, csv_wanted: bool) -> None:
    assert wants_csv(format_, accept) is csv_wanted


def test_csv_flattens_errors_and_defuses_formulas() -> None:
    row = {
        "servicePrincipalId": "sp",
        "servicePrincipalName": '=HYPERLINK("http://evil")',
        "jobId": "j",
        "activityIdentifier": "r1",
        "state": "Failed",
        "escrowDelta": -3,
        "error": {"code": "@SUM(1)", "message": 'a, "quoted"\nline', "tenantActionable": True},
    }
    [parsed] = list(csv.DictReader(io.StringIO(executions_csv([row], with_job=True))))
    assert parsed["servicePrincipalName"] == '\'=HYPERLINK("http://evil")'
    assert parsed["errorCode"] == "'@SUM(1)"
    assert parsed["errorMessage"] == 'a, "quoted"\nline'
    assert (parsed["errorTenantActionable"], parsed["escrowDelta"], parsed["timeEnded"]) == ("true", "-3", "")


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(1)",
        "\t=1",
        "\r=1",
        "\n=1",
        " =1",
        "\u00a0=1",
        "\u3000=1",
        "\u200b=1",
        "\uff1d1+1",  # full-width =
        "\uff0b1",  # full-width +
        "\uff0d1",  # full-width -
        "\uff20SUM(1)",  # full-width @
        "\ufe661",  # small =
        "\u22121",  # minus sign
    ],
)
def test_every_formula_lead_is_defused(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize("text", ["", "plain", "Failed", "1+1", "ｆｕｌｌ", "é=1", "'quoted"])
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert cell(text) == text


def test_numbers_are_not_text_to_defuse() -> None:
    assert (cell(-3), cell(0.5), cell(True), cell(None)) == ("-3", "0.5", "true", "")


# ------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25", "2026-11-25T00:00:00Z"),
        ("2026-11-25T08:30:00Z", "2026-11-25T08:30:00Z"),
        ("2026-11-25t08:30:00.1234567z", "2026-11-25T08:30:00.123456Z"),
        ("2026-11-25T08:30:00+02:00", "2026-11-25T06:30:00Z"),
        ("2026-11-25T23:30:00-01:30", "2026-11-26T01:00:00Z"),
        ("0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"),
    ],
)
def test_instants_are_read_to_utc(text: str, expected: str) -> None:
    assert instant_text(parse_instant("from", text)) == expected


@pytest.mark.parametrize(
    "text", ["", "today", "2026-02-30", "2026-11-25T25:00:00Z", "2026-11-25T08:30:00", "1732521600"]
)
def test_unreadable_instants_are_a_400(text: str) -> None:
    with pytest.raises(HTTPException) as caught:
        parse_instant("from", text)
    assert caught.value.status_code == 400 and "from" in str(caught.value.detail)


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))  # as Graph sends them
def test_ticks_of_a_datetime_agree_with_stored_keys(instant: datetime) -> None:
    assert datetime_ticks(instant) == timestamp_ticks(isoformat_utc(instant))


def test_run_filters_keep_user_text_in_parameters() -> None:
    hostile = "x' or PartitionKey ne '"
    filter_, parameters = run_filter(
        since=datetime(2026, 1, 1, tzinfo=UTC), until=None, states=[hostile, "Failed"], after_row_key=hostile
    )
    assert hostile not in filter_ and "'" not in filter_
    assert parameters["state0"] == hostile and parameters["after"] == hostile


# ------------------------------------------------------------ principals


def encoded(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_roles_come_from_role_claims_only() -> None:
    claims = [
        {"typ": "roles", "val": "A"},
        {"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": "B"},
        {"typ": "custom_role", "val": "C"},
        {"typ": "groups", "val": "D"},
        {"typ": "roles", "val": 5},
    ]
    principal = read_principal(encoded({"auth_typ": "aad", "claims": claims, "role_typ": "custom_role"}))
    assert principal is not None and principal.roles == {"A", "B", "C"}


@pytest.mark.parametrize("header", ["", "!!", encoded([]), encoded({"claims": "x"}), "e30" * 30000])
def test_unreadable_principals_are_none(header: str) -> None:
    assert read_principal(header) is None


def test_the_principal_is_trusted_only_with_auth_on() -> None:
    forged = encoded({"claims": [{"typ": "roles", "val": "R"}]})
    assert authorize(AccessPolicy(sign_in=False), forged) == Caller()  # the key alone; the header ignored
    with pytest.raises(AccessDenied) as caught:
        authorize(AccessPolicy(sign_in=True, read_role="R"), encoded({"claims": []}))
    assert caught.value.status == 403


def denied(policy: AccessPolicy, header: str | None, *, write: bool = False) -> tuple[int, str]:
    with pytest.raises(AccessDenied) as caught:
        authorize(policy, header, write=write)
    return caught.value.status, caught.value.detail


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        (AccessPolicy(sign_in=False, read_role="R"), ["API_REQUIRED_ROLE"]),
        (AccessPolicy(sign_in=False, write_role="W"), ["API_WRITE_ROLE"]),
        (
            AccessPolicy(sign_in=False, read_role="R", write_role="W", key_only_writes=True),
            ["API_REQUIRED_ROLE", "API_WRITE_ROLE"],
        ),
    ],
)
def test_a_role_set_without_sign_in_fails_closed(policy: AccessPolicy, named: list[str]) -> None:
    forged = encoded({"claims": [{"typ": "roles", "val": "R"}, {"typ": "roles", "val": "W"}]})
    for header in (None, forged):
        for write in (False, True):
            status, detail = denied(policy, header, write=write)
            assert status == 503 and all(name in detail for name in named) and "API_SIGN_IN_ENABLED" in detail


def test_writes_without_sign_in_need_the_key_only_switch() -> None:
    status, detail = denied(AccessPolicy(sign_in=False), None, write=True)
    assert status == 403 and "API_KEY_ONLY_WRITES" in detail
    caller = authorize(AccessPolicy(sign_in=False, key_only_writes=True), None, write=True)
    assert caller.audit() == {"name": "function key", "objectId": None, "via": "functionKey"}


def test_with_sign_in_writes_need_the_write_role_and_reads_the_read_role() -> None:
    oid = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"

    def signed_in(*roles: str) -> str:
        claims = [
            {"typ": "name", "val": "Ada Lovelace"},
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        ]
        return encoded({"auth_typ": "aad", "claims": claims + [{"typ": "roles", "val": r} for r in roles]})

    both = AccessPolicy(sign_in=True, read_role="R", write_role="W")
    assert authorize(both, signed_in("R")).principal is not None  # reads
    assert denied(both, signed_in("R"), write=True)[0] == 403  # a reader cannot write
    assert "API_WRITE_ROLE" in denied(both, signed_in("R"), write=True)[1]
    assert denied(both, signed_in("W"), write=True)[0] == 403  # writing needs reading too
    writer = authorize(both, signed_in("R", "W"), write=True)
    assert writer.audit() == {"name": "Ada Lovelace", "objectId": oid, "via": "signIn"}
    # No write role set: nobody writes, whatever roles they hold.
    status, detail = denied(AccessPolicy(sign_in=True), signed_in("R", "W"), write=True)
    assert status == 403 and "API_WRITE_ROLE" in detail
    assert denied(AccessPolicy(sign_in=True, write_role="W"), None, write=True)[0] == 401


# ------------------------------------------------------------ settings


def test_api_settings_defaults() -> None:
    settings = load_settings(BASE)
    assert (settings.auth_enabled, settings.api_required_role, settings.cors_allowed_origins) == (False, None, ())
    assert settings.health_max_age_seconds is None and settings.poll_schedule == "0 */5 * * * *"


def test_api_settings_are_read() -> None:
    settings = load_settings(
        {
            **BASE,
            "WEBSITE_AUTH_ENABLED": "True",
            "API_REQUIRED_ROLE": "Monitor.Read",
            "CORS_ALLOWED_ORIGINS": "https://a.contoso.com, http://localhost:3000, https://a.contoso.com/",
            "HEALTH_MAX_AGE_SECONDS": "900",
        }
    )
    assert settings.auth_enabled and settings.api_required_role == "Monitor.Read"
    assert settings.cors_allowed_origins == ("https://a.contoso.com", "http://localhost:3000")
    assert settings.health_max_age_seconds == 900


def test_sign_in_is_on_when_the_platform_or_the_deployment_says_so() -> None:
    assert load_settings({**BASE, "API_SIGN_IN_ENABLED": "true"}).auth_enabled
    assert load_settings({**BASE, "WEBSITE_AUTH_ENABLED": "True"}).auth_enabled
    assert not load_settings({**BASE, "API_SIGN_IN_ENABLED": "false"}).auth_enabled
    with pytest.raises(SettingsError) as caught:  # they disagree: fail closed, naming both
        load_settings({**BASE, "WEBSITE_AUTH_ENABLED": "false", "API_SIGN_IN_ENABLED": "true"})
    assert "API_SIGN_IN_ENABLED" in str(caught.value) and "WEBSITE_AUTH_ENABLED" in str(caught.value)
    settings = load_settings({**BASE, "API_WRITE_ROLE": "Monitor.Write", "API_KEY_ONLY_WRITES": "TRUE"})
    assert (settings.api_write_role, settings.api_key_only_writes) == ("Monitor.Write", True)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"WEBSITE_AUTH_ENABLED": "yes"}, "WEBSITE_AUTH_ENABLED"),
        ({"API_SIGN_IN_ENABLED": "on"}, "API_SIGN_IN_ENABLED"),
        ({"API_KEY_ONLY_WRITES": "1"}, "API_KEY_ONLY_WRITES"),
        ({"CORS_ALLOWED_ORIGINS": "contoso.com"}, "CORS_ALLOWED_ORIGINS"),
        ({"CORS_ALLOWED_ORIGINS": "https://a.contoso.com/app"}, "CORS_ALLOWED_ORIGINS"),
        ({"HEALTH_MAX_AGE_SECONDS": "10"}, "HEALTH_MAX_AGE_SECONDS"),
        ({"HEALTH_MAX_AGE_SECONDS": "soon"}, "HEALTH_MAX_AGE_SECONDS"),
    ],
)
def test_a_bad_api_setting_is_named(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **overrides})
    assert str(caught.value).startswith(named)
