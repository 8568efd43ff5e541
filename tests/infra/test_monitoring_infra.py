"""Holds the workbook and the monitor-silent alert (infra/app/workbook.bicep, monitor-alert.bicep).

The workbook's `serializedData` is `string()` of a Bicep object: the object is read back from the
parsed Bicep into Python (expressions ARM resolves at deployment kept as placeholders) and must make
a Notebook/1.0 workbook with the expected parameters and panels, whose queries name only the
metrics and attributes the app sends. The alert must be off unless asked for, count
`syncmon.poll.completed` points over a window that is the parameter, be scoped to the Application
Insights resource and query as its own identity with a read-only role there.

The Bicep helpers are those of test_infra.py, imported, so both modules share one parse of infra/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from tree_sitter import Node

from tests.infra.test_infra import (
    BicepFile,
    after_equals,
    bicep,
    code_children,
    declarations,
    decorators,
    literal,
    lookup,
    module_body,
    module_condition,
    properties,
    resources,
    secret_findings,
    string_guids,
    symbol,
    text,
)
from tests.support.paths import ROOT

# The contract with the app: every metric it sends and the attributes of each (shared/telemetry.py
# defines them; a query naming anything else would chart nothing).
METRICS: dict[str, frozenset[str]] = {
    "syncmon.poll.duration": frozenset({"tenant", "trigger", "status"}),
    "syncmon.poll.completed": frozenset({"tenant", "status"}),
    "syncmon.graph.requests": frozenset({"tenant"}),
    "syncmon.graph.throttled": frozenset({"tenant"}),
    "syncmon.runs.stored": frozenset({"tenant"}),
    "syncmon.jobs": frozenset({"tenant", "health"}),
    "syncmon.jobs.escrowed": frozenset({"tenant"}),
    "syncmon.alerts.open": frozenset({"tenant", "severity"}),
    "syncmon.alerts.delivery_failures": frozenset({"tenant", "target"}),
}
HEALTHS = frozenset({"healthy", "warning", "failing", "stale", "quarantined", "paused", "notRun", "unobserved"})
# customMetrics columns that the workspace's AppMetrics table keeps too (Sum, ItemCount, Max, Min);
# `value` and `valueStdDev` have no AppMetrics column.
METRIC_COLUMNS = frozenset({"valueSum", "valueCount", "valueMax", "valueMin"})

WORKBOOK = "app/workbook.bicep"
ALERT = "app/monitor-alert.bicep"
APP_INSIGHTS_TYPE = "microsoft.insights/components"
MONITORING_READER = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
TENANT_FILTER = '| where "*" in ({Tenant}) or tenant in ({Tenant})'
PANELS = {
    "jobs-now": "syncmon.jobs",
    "jobs-by-health": "syncmon.jobs",
    "quarantined": "syncmon.jobs",
    "failing": "syncmon.jobs",
    "escrow": "syncmon.jobs.escrowed",
    "polls-by-status": "syncmon.poll.completed",
    "poll-duration": "syncmon.poll.duration",
    "last-poll": "syncmon.poll.completed",
    "graph": "syncmon.graph.requests",
}
QUOTED_METRIC = re.compile(r'"(syncmon\.[^"]*)"')
DIMENSION = re.compile(r"customDimensions\.(\w+)")


@dataclass(frozen=True)
class Expression:
    """A Bicep expression ARM evaluates at deployment (a resource id, guid(...))."""

    source: str


def value(file: BicepFile, node: Node) -> Any:
    """A Bicep value as the JSON `string()` makes of it; variables followed, expressions kept."""
    if node.type == "object":
        return {key: value(file, item) for key, item in properties(node).items()}
    if node.type == "array":
        return [value(file, item) for item in code_children(node)]
    if node.type == "string":
        string = literal(node)
        return string if string is not None else Expression(text(node))
    if node.type == "number":
        return int(text(node))
    if node.type == "boolean":
        return text(node) == "true"
    if node.type == "null":
        return None
    if node.type == "identifier" and text(node) in declarations(file, "variable_declaration"):
        target = after_equals(declarations(file, "variable_declaration")[text(node)])
        assert target is not None
        return value(file, target)
    return Expression(text(node))


def workbook_resource() -> Node:
    [(_, body)] = resources(bicep(WORKBOOK), "Microsoft.Insights/workbooks@")
    return body


def serialized_workbook() -> dict[str, Any]:
    """The JSON of serializedData, as ARM's string() writes it."""
    serialized = lookup(workbook_resource(), "properties", "serializedData")
    assert serialized is not None and serialized.type == "call_expression", "build it with string(), not by hand"
    assert text(serialized.child_by_field_name("function")) == "string"
    arguments = serialized.child_by_field_name("arguments")
    assert arguments is not None
    [argument] = code_children(arguments)
    document = json.dumps(value(bicep(WORKBOOK), argument), default=lambda e: f"[{e.source}]")
    loaded: dict[str, Any] = json.loads(document)
    return loaded


def items() -> dict[str, dict[str, Any]]:
    found = {item["name"]: item for item in serialized_workbook()["items"]}
    assert len(found) == len(serialized_workbook()["items"]), "item names must be unique"
    return found


def queries() -> dict[str, str]:
    """Every KQL query of the workbook: the panels' and the tenant parameter's."""
    found = {name: item["content"]["query"] for name, item in items().items() if item["type"] == 3}
    for parameter in items()["parameters"]["content"]["parameters"]:
        if "query" in parameter:
            found[f"parameter {parameter['name']}"] = parameter["query"]
    return found


def metrics_named(query: str) -> set[str]:
    return set(QUOTED_METRIC.findall(query))


# --- The workbook ------------------------------------------------------------------------------


def test_workbook_is_a_shared_workbook_on_the_application_insights_resource() -> None:
    file = bicep(WORKBOOK)
    body = workbook_resource()
    assert literal(lookup(body, "kind")) == "shared"
    name = text(lookup(body, "name"))
    assert name.startswith("guid(") and "applicationInsights.id" in name, "a stable name keeps redeploys in place"
    assert literal(lookup(body, "properties", "category")) == "workbook"
    assert text(lookup(body, "properties", "sourceId")) == "applicationInsights.id"
    [(insights_decl, insights)] = resources(file, "Microsoft.Insights/components@")
    assert symbol(insights_decl) == "applicationInsights" and any(c.type == "existing" for c in insights_decl.children)
    assert text(lookup(insights, "name")) == "applicationInsightsName"
    outputs = declarations(file, "output_declaration")
    assert text(after_equals(outputs["workbookId"])) == "workbook.id"
    assert text(after_equals(outputs["workbookName"])) == "workbook.name"


def test_serialized_data_is_a_notebook_with_parameters_text_and_queries() -> None:
    workbook = serialized_workbook()
    assert workbook["version"] == "Notebook/1.0"
    assert workbook["fallbackResourceIds"] == ["[applicationInsights.id]"]
    assert {item["type"] for item in workbook["items"]} == {1, 3, 9}  # text, query, parameters
    assert workbook["items"][0]["type"] == 1 and workbook["items"][1]["type"] == 9  # intro, then the pickers


def test_parameters_are_a_time_range_and_the_tenants_of_the_metrics() -> None:
    content = items()["parameters"]["content"]
    parameters = {parameter["name"]: parameter for parameter in content["parameters"]}
    assert set(parameters) == {"TimeRange", "Tenant"}
    time_range = parameters["TimeRange"]
    assert time_range["type"] == 4 and time_range["isRequired"] and time_range["value"]["durationMs"] > 0
    tenant = parameters["Tenant"]
    assert tenant["type"] == 2 and tenant["multiSelect"] and tenant["quote"] == "'"
    # All is "*", which every panel's filter accepts.
    assert tenant["typeSettings"]["selectAllValue"] == "*" and tenant["defaultValue"] == "value::all"
    assert "value::all" in tenant["typeSettings"]["additionalResourceOptions"]
    assert "tostring(customDimensions.tenant)" in tenant["query"]
    assert tenant["timeContextFromParameter"] == "TimeRange"
    for parameter in parameters.values():
        assert str(parameter["id"]).startswith("[guid("), "parameter ids are GUIDs made at deployment"


def test_workbook_has_the_panels_of_the_issue() -> None:
    panels = {name: item for name, item in items().items() if item["type"] == 3}
    assert set(panels) == set(PANELS)
    for name, metric in PANELS.items():
        assert metric in metrics_named(panels[name]["content"]["query"]), name
    assert 'health == "quarantined"' in panels["quarantined"]["content"]["query"]
    assert 'health == "failing"' in panels["failing"]["content"]["query"]
    assert "syncmon.graph.throttled" in metrics_named(panels["graph"]["content"]["query"])
    duration = panels["poll-duration"]["content"]["query"]
    assert "percentilew(mean, valueCount, 50)" in duration and "percentilew(mean, valueCount, 95)" in duration
    jobs_now = panels["jobs-now"]["content"]["query"]
    assert set(re.findall(r'health == "(\w+)"', jobs_now)) == HEALTHS  # a column for every health


def test_panels_query_the_application_insights_resource_over_the_picked_range_and_tenants() -> None:
    for name, item in items().items():
        if item["type"] != 3:
            continue
        content = item["content"]
        assert content["version"] == "KqlItem/1.0" and content["queryType"] == 0, name
        assert content["resourceType"] == APP_INSIGHTS_TYPE, name
        assert TENANT_FILTER in content["query"], f"{name} ignores the Tenant parameter"
        if name == "last-poll":
            # A fixed look-back: a tenant silent for longer than the picked range must still show.
            assert "timeContextFromParameter" not in content and content["timeContext"]["durationMs"] >= 86400000
        else:
            assert content["timeContextFromParameter"] == "TimeRange", name


def test_queries_name_only_the_metrics_and_attributes_the_app_sends() -> None:
    for name, query in queries().items():
        named = metrics_named(query)
        assert named, f"{name} names no metric"
        # The tenant list reads every metric of the app by its prefix.
        unknown = named - set(METRICS) - {"syncmon."}
        assert not unknown, f"{name} queries metrics the app does not send: {unknown}"
        dimensions = set(DIMENSION.findall(query))
        sent = set().union(*(METRICS[metric] for metric in named if metric in METRICS)) or {"tenant"}
        assert dimensions <= sent, f"{name} reads attributes its metrics do not have: {dimensions - sent}"
        columns = set(re.findall(r"\bvalue\w*\b", query))
        assert columns <= METRIC_COLUMNS, f"{name} reads columns AppMetrics does not keep: {columns - METRIC_COLUMNS}"
        assert "'''" not in query


def test_health_values_in_queries_are_the_apps() -> None:
    for name, query in queries().items():
        used = set(re.findall(r'health == "(\w+)"', query))
        assert used <= HEALTHS, f"{name}: {used - HEALTHS}"


# --- Wiring in main.bicep ----------------------------------------------------------------------


def test_workbook_is_deployed_by_default_with_the_monitoring_resources() -> None:
    main = bicep("main.bicep")
    assert module_condition(main, WORKBOOK).startswith("if (deployWorkbook)")
    assert text(after_equals(declarations(main, "parameter_declaration")["deployWorkbook"])) == "true"
    params = lookup(module_body(main, WORKBOOK), "params")
    assert text(lookup(params, "applicationInsightsName")) == "monitoring.outputs.applicationInsightsName"
    outputs = declarations(main, "output_declaration")
    assert text(after_equals(outputs["MONITOR_WORKBOOK_ID"])) == "deployWorkbook ? workbook!.outputs.workbookId : ''"
    assert text(after_equals(outputs["MONITOR_WORKBOOK_NAME"])) == (
        "deployWorkbook ? workbook!.outputs.workbookName : ''"
    )


def allowed_minutes(file: BicepFile, parameter: str) -> list[int]:
    allowed = decorators(declarations(file, "parameter_declaration")[parameter]).get("allowed")
    assert allowed is not None and allowed.type == "array"
    return [int(text(item)) for item in code_children(allowed)]


def test_the_alert_is_off_unless_minutes_are_given() -> None:
    main = bicep("main.bicep")
    assert module_condition(main, ALERT).startswith("if (monitorSilentAlertMinutes > 0)")
    minutes = declarations(main, "parameter_declaration")["monitorSilentAlertMinutes"]
    assert text(after_equals(minutes)) == "0"
    # 0 turns it off; every other choice is one the module accepts as a window.
    assert allowed_minutes(main, "monitorSilentAlertMinutes") == [0, *allowed_minutes(bicep(ALERT), "silentMinutes")]
    params = lookup(module_body(main, ALERT), "params")
    assert text(lookup(params, "silentMinutes")) == "monitorSilentAlertMinutes"
    assert text(lookup(params, "actionGroupId")) == "monitorSilentAlertActionGroupId"
    assert text(lookup(params, "applicationInsightsName")) == "monitoring.outputs.applicationInsightsName"
    group = declarations(main, "parameter_declaration")["monitorSilentAlertActionGroupId"]
    assert literal(after_equals(group)) == ""


def alert_rule() -> Node:
    [(_, body)] = resources(bicep(ALERT), "Microsoft.Insights/scheduledQueryRules@")
    return body


def test_the_alert_counts_completed_polls_so_that_silence_fires_it() -> None:
    file = bicep(ALERT)
    rule = alert_rule()
    assert literal(lookup(rule, "kind")) == "LogAlert"
    criteria = lookup(rule, "properties", "criteria", "allOf")
    assert criteria is not None
    [condition_node] = code_children(criteria)
    condition = value(file, condition_node)
    query = condition["query"]
    assert metrics_named(query) == {"syncmon.poll.completed"}
    assert "valueSum > 0" in query, "only points that counted a poll are evidence of one"
    # Counting rows, not measuring a column, and with no dimension split: an empty result (the
    # monitor sends nothing at all) is a count of 0, below the threshold.
    assert condition["timeAggregation"] == "Count" and condition["operator"] == "LessThan"
    assert condition["threshold"] == 1
    assert "metricMeasureColumn" not in condition and "dimensions" not in condition
    assert condition["failingPeriods"] == {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1}
    assert text(lookup(rule, "properties", "autoMitigate")) == "true"


def iso_minutes(duration: str) -> int:
    match = re.fullmatch(r"PT(\d+)([HM])", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "H" else 1)


def test_the_window_is_the_parameter_and_evaluation_is_more_frequent() -> None:
    file = bicep(ALERT)
    rule = alert_rule()
    assert text(lookup(rule, "properties", "windowSize")) == "windowSize"
    assert text(lookup(rule, "properties", "evaluationFrequency")) == "evaluationFrequency"
    variables = declarations(file, "variable_declaration")
    window = text(after_equals(variables["windowSize"]))
    frequency = text(after_equals(variables["evaluationFrequency"]))
    assert window == "silentMinutes % 60 == 0 ? 'PT${silentMinutes / 60}H' : 'PT${silentMinutes}M'"
    assert frequency == "silentMinutes <= 60 ? 'PT5M' : 'PT15M'"
    for minutes in allowed_minutes(file, "silentMinutes"):
        window_value = f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"
        frequency_value = "PT5M" if minutes <= 60 else "PT15M"
        assert iso_minutes(window_value) == minutes
        assert iso_minutes(frequency_value) < minutes, "a poll gap must be seen before the window passes twice"
    assert min(allowed_minutes(file, "silentMinutes")) >= 15  # three default poll intervals plus latency


def test_the_alert_is_scoped_to_application_insights_and_routed_to_the_action_group() -> None:
    rule = alert_rule()
    scopes = lookup(rule, "properties", "scopes")
    assert scopes is not None and [text(s) for s in code_children(scopes)] == ["applicationInsights.id"]
    [(insights_decl, insights)] = resources(bicep(ALERT), "Microsoft.Insights/components@")
    assert symbol(insights_decl) == "applicationInsights" and any(c.type == "existing" for c in insights_decl.children)
    assert text(lookup(insights, "name")) == "applicationInsightsName"
    groups = text(lookup(rule, "properties", "actions", "actionGroups"))
    assert groups.startswith("empty(actionGroupId) ? [] : [") and "actionGroupId" in groups.split(":", 1)[1]


def test_the_alert_queries_as_its_own_identity_with_read_only_access_to_the_telemetry() -> None:
    file = bicep(ALERT)
    rule = alert_rule()
    assert literal(lookup(rule, "identity", "type")) == "SystemAssigned"
    [(_, assignment)] = resources(file, "Microsoft.Authorization/roleAssignments@")
    assert text(lookup(assignment, "scope")) == "applicationInsights"
    assert text(lookup(assignment, "name")).startswith("guid(applicationInsights.id, monitorSilent.id, ")
    assert text(lookup(assignment, "properties", "principalId")) == "monitorSilent.identity.principalId"
    assert literal(lookup(assignment, "properties", "principalType")) == "ServicePrincipal"
    definition = text(lookup(assignment, "properties", "roleDefinitionId"))
    assert definition == ("subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReaderRoleId)")
    assert string_guids(file) == {MONITORING_READER}


def test_resource_context_queries_need_only_resource_permissions() -> None:
    """The rule's identity and the workbook's readers hold roles on the Application Insights
    resource, not on the workspace: the workspace must honour resource permissions."""
    [(_, workspace)] = resources(bicep("app/monitoring.bicep"), "Microsoft.OperationalInsights/workspaces@")
    flag = lookup(workspace, "properties", "features", "enableLogAccessUsingOnlyResourcePermissions")
    assert text(flag) == "true"


@pytest.mark.parametrize("relative", [WORKBOOK, ALERT])
def test_no_keys_or_secrets(relative: str) -> None:
    source = (bicep(relative).path).read_text(encoding="utf-8")
    assert secret_findings(source) == []
    assert not re.search(r"apiKey|instrumentationKey|webHookProperties", source, re.IGNORECASE)


def test_parameters_file_lets_azd_set_the_workbook_and_the_alert() -> None:
    document = json.loads((ROOT / "infra" / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert document["deployWorkbook"]["value"] == "${DEPLOY_WORKBOOK=true}"
    assert document["monitorSilentAlertMinutes"]["value"] == "${MONITOR_SILENT_ALERT_MINUTES=0}"
    assert document["monitorSilentAlertActionGroupId"]["value"] == "${MONITOR_SILENT_ALERT_ACTION_GROUP_ID}"
