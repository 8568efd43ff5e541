"""Holds the Bicep under infra/ against the code, without a Bicep compiler or network.

Every file parses with tree-sitter-bicep; the Function app sets only settings catalogued in
`shared.settings.SETTINGS` (plus a few of the Functions platform's own) and every required one;
role assignments and Microsoft Graph grants are exactly the least-privilege set; nothing under
infra/ looks like a key or a secret; basic publishing credentials are off, and public network access,
the deployer's data roles and the alert vault's Secrets User role are parameters with safe defaults;
the opt-in multi-tenant app registration has the managed identity as its only credential and asks
for exactly the Graph permissions of the features turned on.

One module, over 400 lines, on purpose: every test shares the parsed Bicep trees (parsed once,
`bicep()` is cached) and the catalogue joins; split, each file would parse the templates again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

from shared.settings import GRAPH_AUTH_MODES, SETTINGS
from tests.support.paths import ROOT

INFRA = ROOT / "infra"

PARSER = Parser(Language(tree_sitter_bicep.language()))

# App settings the Functions platform reads that the app's own catalogue does not list.
# (FUNCTIONS_EXTENSION_VERSION and FUNCTIONS_WORKER_RUNTIME are not here: Flex Consumption
# rejects them, the runtime comes from functionAppConfig.)
PLATFORM_SETTINGS = frozenset(
    {
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        # host.json's extensions.queues.batchSize, overridden (AzureFunctionsJobHost__path__to__setting).
        "AzureFunctionsJobHost__extensions__queues__batchSize",
    }
)

BUILTIN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
# Read secret contents, on the alert webhooks' vault only (app/key-vault-rbac.bicep).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# Read the Application Insights logs, for the monitor-silent alert rule's own identity (app/monitor-alert.bicep).
MONITORING_READER = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
ROLE_ASSIGNMENT_FILES = {"app/rbac.bicep", "app/key-vault-rbac.bicep", "app/monitor-alert.bicep"}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Least privilege: read provisioning jobs, enumerate service principals (app role ids, every tenant).
GRAPH_APP_ROLES = {
    "Synchronization.Read.All": "5ba43d2f-fa88-4db2-bd1c-a67c5f0fb1ce",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
}
# Only with PROVISIONING_LOGS on (the admin's choice): what GET /auditLogs/provisioning needs.
PROVISIONING_LOG_APP_ROLES = {
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
}
# Only with ACTIONS_ENABLED (the admin's choice): what restart, pause and start need.
ACTION_APP_ROLES = {"Synchronization.ReadWrite.All": "9b50c33d-700f-43b1-b2eb-87e89b703581"}
# The multi-tenant app registration (multiTenant), its federated credential and home service principal.
MULTITENANT_APP = "app/multitenant-app.bicep"
GUID = re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b")

# --- The one allow-listed construct ------------------------------------------------------------
# tree-sitter-bicep 1.1.0 predates the `extension` statement, so `extension microsoftGraphV1` parses
# as ERROR. Exactly that statement, alone on its line in the alias form bicepconfig.json backs, is
# blanked to spaces of the same length (every other node keeps its line and column) before parsing.
EXTENSION_LINE = re.compile(r"^extension [A-Za-z_][A-Za-z0-9_]*$", re.MULTILINE)


def blank_extension_lines(source: str) -> str:
    return EXTENSION_LINE.sub(lambda match: " " * len(match.group()), source)


# --- Parsing helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BicepFile:
    path: Path
    root: Node


@cache
def bicep(relative: str) -> BicepFile:
    path = INFRA / relative
    source = blank_extension_lines(path.read_text(encoding="utf-8"))
    return BicepFile(path, PARSER.parse(source.encode()).root_node)


def bicep_files() -> list[str]:
    return sorted(p.relative_to(INFRA).as_posix() for p in INFRA.rglob("*.bicep"))


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def text(node: Node | None) -> str:
    return node.text.decode() if node is not None and node.text is not None else ""


def syntax_errors(root: Node) -> list[str]:
    return [
        f"{n.start_point.row + 1}:{n.start_point.column + 1}: {'MISSING' if n.is_missing else 'ERROR'} {text(n)[:60]!r}"
        for n in walk(root)
        if n.is_error or n.is_missing
    ]


def literal(node: Node | None) -> str | None:
    """The value of a string without interpolation; None for any other expression."""
    if node is None or node.type != "string":
        return None
    parts = []
    for child in node.named_children:
        if child.type == "string_content":
            parts.append(text(child))
        elif child.type == "escape_sequence":
            escaped = text(child)[1:]
            parts.append({"n": "\n", "r": "\r", "t": "\t"}.get(escaped, escaped))
        else:  # interpolation
            return None
    return "".join(parts)


def code_children(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type != "comment"]


def properties(obj: Node) -> dict[str, Node]:
    """An object literal's properties, by key, mapped to their value expressions."""
    assert obj.type == "object", f"expected an object, got {obj.type}: {text(obj)[:60]}"
    result = {}
    for prop in obj.named_children:
        if prop.type != "object_property":
            continue
        children = code_children(prop)
        if children[0].type == "resource_declaration":  # a nested child resource, not a property
            continue
        key_node, value = children[:2]
        key = literal(key_node) if key_node.type == "string" else text(key_node)
        assert key is not None, f"interpolated key {text(key_node)}"
        result[key] = value
    return result


def lookup(obj: Node | None, *path: str) -> Node | None:
    for key in path:
        if obj is None or obj.type != "object":
            return None
        obj = properties(obj).get(key)
    return obj


def after_equals(decl: Node) -> Node | None:
    """What follows `=` in a declaration (a default, a value, a resource body)."""
    children = decl.children
    for i, child in enumerate(children):
        if child.type == "=":
            return next((c for c in children[i + 1 :] if c.is_named and c.type != "comment"), None)
    return None


def declarations_all(file: BicepFile, kind: str) -> list[Node]:
    return [n for n in file.root.named_children if n.type == kind]


def declarations(file: BicepFile, kind: str) -> dict[str, Node]:
    """Top-level declarations of one kind (parameter_declaration, variable_declaration, ...)."""
    return {
        text(next(c for c in decl.named_children if c.type == "identifier")): decl
        for decl in declarations_all(file, kind)
    }


def decl_string(decl: Node) -> str | None:
    """The quoted type of a resource or path of a module."""
    return literal(next((c for c in decl.named_children if c.type == "string"), None))


def unwrap_body(value: Node) -> Node:
    """The object of a resource or module, through `[for ...: ...]` and `if (...)`."""
    if value.type == "for_statement":
        value = value.child_by_field_name("body") or code_children(value)[-1]
    if value.type == "if_statement":
        value = code_children(value)[-1]
    return value


def for_collection(value: Node) -> Node:
    """What a `[for x in <collection>: ...]` loops over."""
    assert value.type == "for_statement", f"expected a loop, got {text(value)[:60]}"
    children = value.children
    index = next(i for i, c in enumerate(children) if c.type == "in")
    return next(c for c in children[index + 1 :] if c.is_named)


def for_variable(value: Node) -> str:
    initializer = value.child_by_field_name("initializer")
    assert initializer is not None
    return text(initializer)


def resources(file: BicepFile, type_prefix: str) -> list[tuple[Node, Node]]:
    """(declaration, body object) of the resources whose type starts with type_prefix."""
    found = []
    for decl in declarations_all(file, "resource_declaration"):
        type_name = decl_string(decl) or ""
        if type_name.startswith(type_prefix):
            value = after_equals(decl)
            assert value is not None
            found.append((decl, unwrap_body(value)))
    return found


def module_body(file: BicepFile, path: str) -> Node:
    [decl] = [d for d in declarations_all(file, "module_declaration") if decl_string(d) == path]
    value = after_equals(decl)
    assert value is not None
    return unwrap_body(value)


def var_literal(file: BicepFile, name: str) -> str | None:
    decl = declarations(file, "variable_declaration").get(name)
    return literal(after_equals(decl)) if decl is not None else None


def resolve_string(file: BicepFile, node: Node | None) -> str | None:
    """A string literal, or a variable holding one."""
    if node is not None and node.type == "identifier":
        return var_literal(file, text(node))
    return literal(node)


def symbol(decl: Node) -> str:
    """The symbolic name of a declaration (param, var, resource, module)."""
    return text(next(c for c in decl.named_children if c.type == "identifier"))


def decorators(decl: Node) -> dict[str, Node | None]:
    """A declaration's decorators by name (description, minValue, ...), each to its first argument."""
    previous = decl.prev_named_sibling
    while previous is not None and previous.type == "comment":
        previous = previous.prev_named_sibling
    if previous is None or previous.type != "decorators":
        return {}
    found: dict[str, Node | None] = {}
    for decorator in code_children(previous):
        [call] = [c for c in decorator.named_children if c.type == "call_expression"]
        arguments = call.child_by_field_name("arguments")
        values = code_children(arguments) if arguments is not None else []
        found[text(call.child_by_field_name("function"))] = values[0] if values else None
    return found


def bounds(decl: Node) -> dict[str, int]:
    """A parameter's numeric decorators (minValue, maxValue, minLength, maxLength)."""
    return {
        name: int(text(value))
        for name, value in decorators(decl).items()
        if name in {"minValue", "maxValue", "minLength", "maxLength"} and value is not None
    }


@cache
def host_json() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    return document


def app_settings() -> dict[str, Node]:
    """The Function app's settings (name -> value expression) from its siteConfig.appSettings."""
    [(_, site)] = resources(bicep("app/api.bicep"), "Microsoft.Web/sites@")
    array = lookup(site, "properties", "siteConfig", "appSettings")
    assert array is not None and array.type == "array"
    settings: dict[str, Node] = {}
    for item in code_children(array):
        props = properties(item)
        assert set(props) == {"name", "value"}, f"app setting entry {text(item)}"
        name = literal(props["name"])
        assert name, f"app setting names must be string literals: {text(props['name'])}"
        assert name not in settings, f"{name} is set twice"
        settings[name] = props["value"]
    return settings


# --- (a) Parsing -------------------------------------------------------------------------------


def test_infra_has_the_expected_bicep_files() -> None:
    assert set(bicep_files()) >= {
        "main.bicep",
        "app/api.bicep",
        "app/rbac.bicep",
        "app/monitoring.bicep",
        "app/graph-permissions.bicep",
    }


@pytest.mark.parametrize("relative", bicep_files())
def test_bicep_file_parses_without_errors(relative: str) -> None:
    assert syntax_errors(bicep(relative).root) == []


def test_extension_allow_list_matches_only_the_extension_statement() -> None:
    assert EXTENSION_LINE.fullmatch("extension microsoftGraphV1")
    for not_allowed in [
        "extension 'br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0'",
        "extension microsoftGraphV1 with { }",
        "extension microsoftGraphV1 as graph",
        "  extension microsoftGraphV1",
        "// extension microsoftGraphV1",
        "var extension = 1",
        "extension",
        "extension microsoftGraphV1 // comment",
        "extension microsoftGraphV1\r",
    ]:
        assert not EXTENSION_LINE.search(not_allowed), not_allowed

    source = "extension microsoftGraphV1\nparam p string\n  extension bad\n"
    blanked = blank_extension_lines(source)
    assert blanked.splitlines() == [" " * 26, "param p string", "  extension bad"]
    assert len(blanked) == len(source)


def test_extension_statement_still_needs_the_allow_list() -> None:
    # Fails once the grammar learns `extension`: then drop EXTENSION_LINE and parse files as they are.
    assert syntax_errors(PARSER.parse(b"extension microsoftGraphV1\n").root_node)


@pytest.mark.parametrize("relative", bicep_files())
def test_only_extension_statements_are_blanked(relative: str) -> None:
    source = (INFRA / relative).read_text(encoding="utf-8")
    changed = [
        line
        for line, blanked in zip(source.splitlines(), blank_extension_lines(source).splitlines(), strict=True)
        if line != blanked
    ]
    aliases = set(bicepconfig()["extensions"])
    assert all(line.split()[1] in aliases for line in changed), changed
    uses_graph = any(t.startswith("'Microsoft.Graph/") for t in map(text, walk(bicep(relative).root)))
    assert bool(changed) == uses_graph, "declare `extension microsoftGraphV1` exactly where Graph is used"


def test_local_modules_exist() -> None:
    for relative in bicep_files():
        file = bicep(relative)
        for decl in declarations_all(file, "module_declaration"):
            path = decl_string(decl)
            assert path, text(decl)[:60]
            if not path.startswith("br/") and not path.startswith("br:"):
                assert (file.path.parent / path).is_file(), f"{relative}: module {path}"


# --- (b) App settings against shared.settings --------------------------------------------------


def test_app_settings_are_catalogued_or_platform() -> None:
    unknown = set(app_settings()) - set(SETTINGS) - PLATFORM_SETTINGS
    assert not unknown, f"not in shared.settings.SETTINGS nor the platform allow-list: {unknown}"


def test_required_settings_are_set() -> None:
    required = {name for name, spec in SETTINGS.items() if spec.required}
    assert required <= set(app_settings())


def test_secret_settings_are_not_set_with_values() -> None:
    for name, value in app_settings().items():
        if SETTINGS.get(name) is not None and SETTINGS[name].secret:
            # Only a Key Vault reference may carry a secret setting.
            assert text(value).startswith("'@Microsoft.KeyVault("), f"{name} = {text(value)}"
    assert "AzureWebJobsStorage" not in app_settings(), "host storage is identity-based"


def test_app_settings_are_declared_in_one_place() -> None:
    setting_blocks = [
        (relative, text(prop.named_children[0]))
        for relative in bicep_files()
        for prop in walk(bicep(relative).root)
        if prop.type == "object_property"
        and text(prop.named_children[0]) in {"appSettings", "appSettingsKeyValuePairs"}
    ]
    assert setting_blocks == [("app/api.bicep", "appSettings")]
    # A sites/config resource may configure App Service Authentication, never app settings.
    for relative in bicep_files():
        for _, body in resources(bicep(relative), "Microsoft.Web/sites/config@"):
            assert "name: 'authsettingsV2'" in text(body), relative


def test_app_service_authentication_is_optional_and_secretless() -> None:
    api = bicep("app/api.bicep")
    [(declaration, body)] = resources(api, "Microsoft.Web/sites/config@")
    assert "if (!empty(apiAuthClientId))" in text(declaration)
    assert "unauthenticatedClientAction: 'Return401'" in text(body)
    assert "'/api/health'" in text(body)
    assert "clientSecret" not in text(body)


def test_the_app_is_told_sign_in_is_on_exactly_when_the_sign_in_is_deployed() -> None:
    """The app cannot count on Flex Consumption injecting WEBSITE_AUTH_ENABLED: its deployment
    says so, under the same condition as the authsettingsV2 resource (shared/api/auth.py)."""
    settings = app_settings()
    [(declaration, _)] = resources(bicep("app/api.bicep"), "Microsoft.Web/sites/config@")
    assert "if (!empty(apiAuthClientId))" in text(declaration)
    assert text(settings["API_SIGN_IN_ENABLED"]) == "string(!empty(apiAuthClientId))"
    assert "WEBSITE_AUTH_ENABLED" not in settings  # the platform's to set, never ours
    assert text(settings["API_KEY_ONLY_WRITES"]) == "string(apiKeyOnlyWrites)"
    key_only = main_parameter_for("apiKeyOnlyWrites")
    assert key_only is not None and text(key_only).endswith("bool = false")  # writes need a role unless asked


def test_setting_values_match_what_the_code_expects() -> None:
    settings = app_settings()
    # Graph as the identity, or as the multi-tenant app (the many-tenants tests below).
    assert text(settings["GRAPH_AUTH"]) == "signsInAsApp ? 'workload_identity' : 'managed_identity'"
    assert {"workload_identity", "managed_identity"} <= set(GRAPH_AUTH_MODES)
    assert literal(settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert text(settings["AZURE_TENANT_ID"]) == "tenant().tenantId"
    identity_client_id = "identityClientId"
    assert text(settings["AzureWebJobsStorage__clientId"]) == identity_client_id
    assert (
        text(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
        == f"'ClientId=${{{identity_client_id}}};Authorization=AAD'"
    )
    for service in ("blob", "queue", "table"):
        assert (
            text(settings[f"AzureWebJobsStorage__{service}ServiceUri"])
            == f"storage.properties.primaryEndpoints.{service}"
        )


def api_parameter(value: Node) -> str | None:
    """The api.bicep parameter a setting's value is, as `name` or `string(name)` (an int parameter)."""
    if value.type == "call_expression" and text(value.child_by_field_name("function")) == "string":
        arguments = value.child_by_field_name("arguments")
        [value] = code_children(arguments) if arguments is not None else [value]
    if value.type != "identifier":
        return None
    name = text(value)
    return name if name in declarations(bicep("app/api.bicep"), "parameter_declaration") else None


def main_parameter_for(api_name: str) -> Node | None:
    """The main.bicep parameter declaration passed to api.bicep's parameter api_name."""
    main = bicep("main.bicep")
    passed = lookup(module_body(main, "app/api.bicep"), "params", api_name)
    assert passed is not None, f"main.bicep does not pass {api_name} to app/api.bicep"
    return declarations(main, "parameter_declaration").get(text(passed))


def default_text(decl: Node | None) -> str | None:
    """A parameter's default as an app setting would carry it: a string literal, or an integer."""
    default = after_equals(decl) if decl is not None else None
    if default is not None and default.type == "number":
        return text(default)
    return literal(default)


def default_through_main(value: Node) -> str | None:
    """The default a setting gets when its value is an api.bicep parameter fed by a main.bicep one."""
    name = api_parameter(value)
    return default_text(main_parameter_for(name)) if name is not None else None


def test_parameter_defaults_match_the_catalogue() -> None:
    checked = set()
    for name, value in app_settings().items():
        default = default_through_main(value)
        if default is not None and name in SETTINGS:
            assert default == (SETTINGS[name].default or ""), name
            checked.add(name)
    assert checked >= {"GRAPH_BASE_URL", "POLL_SCHEDULE", "SERVICE_PRINCIPAL_IDS"}


# --- The app, its storage and its telemetry ----------------------------------------------------


def test_function_app_runs_python_311_on_flex_consumption() -> None:
    api = bicep("app/api.bicep")
    [(_, plan)] = resources(api, "Microsoft.Web/serverfarms@")
    assert literal(lookup(plan, "sku", "name")) == "FC1"
    assert literal(lookup(plan, "sku", "tier")) == "FlexConsumption"
    [(_, site)] = resources(api, "Microsoft.Web/sites@")
    config = lookup(site, "properties", "functionAppConfig")
    assert literal(lookup(config, "runtime", "name")) == "python"
    assert literal(lookup(config, "runtime", "version")) == "3.11"
    scale = lookup(config, "scaleAndConcurrency")
    params = declarations(api, "parameter_declaration")
    for key in ("instanceMemoryMB", "maximumInstanceCount"):
        assert text(lookup(scale, key)) == key and key in params
    deployment = lookup(config, "deployment", "storage")
    assert literal(lookup(deployment, "type")) == "blobContainer"
    assert literal(lookup(deployment, "authentication", "type")) == "UserAssignedIdentity"
    assert literal(lookup(site, "identity", "type")) == "UserAssigned"


def test_storage_is_keyless_and_hardened() -> None:
    [storage] = [
        decl
        for decl in declarations_all(bicep("main.bicep"), "module_declaration")
        if (decl_string(decl) or "").startswith("br/public:avm/res/storage/storage-account:")
    ]
    params = lookup(after_equals(storage), "params")
    assert text(lookup(params, "allowSharedKeyAccess")) == "false"
    assert text(lookup(params, "allowBlobPublicAccess")) == "false"
    assert literal(lookup(params, "minimumTlsVersion")) == "TLS1_2"


def test_application_insights_takes_entra_auth_only() -> None:
    [(_, insights)] = resources(bicep("app/monitoring.bicep"), "Microsoft.Insights/components@")
    assert text(lookup(insights, "properties", "DisableLocalAuth")) == "true"


# --- The work queue and scale ------------------------------------------------------------------

POISON_SUFFIX = "-poison"  # the Functions host's name for a queue's poison queue: <queue>-poison
QUEUE_NAME = re.compile(r"[a-z0-9](?:-?[a-z0-9])+")  # Storage: lowercase, digits, single inner hyphens
QUEUE_NAME_MAX = 63

# app setting: (parameter of main.bicep and api.bicep, its decorator bounds)
WORK_QUEUE_SETTINGS = {
    # The poison queue's own trigger falls back to <name>-poison-poison, which must be a valid name too.
    "WORK_QUEUE_NAME": ("workQueueName", {"minLength": 3, "maxLength": QUEUE_NAME_MAX - 2 * len(POISON_SUFFIX)}),
    "WORK_INLINE_MAX_PRINCIPALS": ("workInlineMaxPrincipals", {"minValue": 0, "maxValue": 100000}),
    "WORK_ITEM_PRINCIPALS": ("workItemPrincipals", {"minValue": 1, "maxValue": 200}),
}


def test_work_queue_settings_are_bounded_parameters() -> None:
    settings = app_settings()
    for setting, (parameter, expected_bounds) in WORK_QUEUE_SETTINGS.items():
        assert api_parameter(settings[setting]) == parameter, f"{setting} = {text(settings[setting])}"
        decl = main_parameter_for(parameter)
        assert decl is not None and symbol(decl) == parameter
        description = literal(decorators(decl).get("description"))
        assert description is not None and description.startswith(f"{setting}: "), description
        assert bounds(decl) == expected_bounds, setting
        default = default_text(decl)
        assert default is not None, f"{parameter} needs a default"
        low, high = (
            (expected_bounds["minLength"], expected_bounds["maxLength"])
            if "minLength" in expected_bounds
            else (expected_bounds["minValue"], expected_bounds["maxValue"])
        )
        assert low <= (len(default) if "minLength" in expected_bounds else int(default)) <= high, setting


def test_work_queue_default_name_and_its_poison_queues_are_valid_queue_names() -> None:
    name = default_text(main_parameter_for("workQueueName"))
    assert name is not None
    for queue in (name, name + POISON_SUFFIX, name + POISON_SUFFIX * 2):
        assert QUEUE_NAME.fullmatch(queue) and 3 <= len(queue) <= QUEUE_NAME_MAX, queue
    assert QUEUE_NAME.fullmatch("syncmon-work") and not QUEUE_NAME.fullmatch("Sync--work")


def test_http_per_instance_concurrency_is_a_parameter() -> None:
    api = bicep("app/api.bicep")
    [(_, site)] = resources(api, "Microsoft.Web/sites@")
    scale = lookup(site, "properties", "functionAppConfig", "scaleAndConcurrency")
    value = lookup(scale, "triggers", "http", "perInstanceConcurrency")
    assert value is not None and api_parameter(value) == "httpPerInstanceConcurrency"
    api_decl = declarations(api, "parameter_declaration")["httpPerInstanceConcurrency"]
    main_decl = main_parameter_for("httpPerInstanceConcurrency")
    assert main_decl is not None
    # 1: what Flex Consumption gives a Python app that sets none, so deploying it changes nothing.
    assert default_text(main_decl) == default_text(api_decl) == "1"
    assert bounds(main_decl) == bounds(api_decl) == {"minValue": 1, "maxValue": 1000}


def test_queue_batch_size_parameter_defaults_to_host_json() -> None:
    """Flex Consumption scales the queue trigger on extensions.queues.batchSize (per-instance concurrency)."""
    batch_size = host_json()["extensions"]["queues"]["batchSize"]
    value = app_settings()["AzureFunctionsJobHost__extensions__queues__batchSize"]
    assert api_parameter(value) == "queueBatchSize" and text(value) == "string(queueBatchSize)"
    api_decl = declarations(bicep("app/api.bicep"), "parameter_declaration")["queueBatchSize"]
    main_decl = main_parameter_for("queueBatchSize")
    assert main_decl is not None
    assert default_text(main_decl) == default_text(api_decl) == str(batch_size)
    # 32: the largest batch the queue trigger takes.
    assert bounds(main_decl) == bounds(api_decl) == {"minValue": 1, "maxValue": 32}


def test_host_json_overrides_name_host_json_settings() -> None:
    """An AzureFunctionsJobHost__a__b setting overrides host.json's a.b: that path must exist there."""
    overrides = [name for name in app_settings() if name.startswith("AzureFunctionsJobHost__")]
    assert overrides
    for name in overrides:
        node: Any = host_json()
        for key in name.split("__")[1:]:
            assert isinstance(node, dict) and key in node, f"{name}: host.json has no {key!r} there"
            node = node[key]
        assert not isinstance(node, (dict, list)), name


def test_every_binding_expression_is_a_deployed_setting() -> None:
    """The host resolves %NAME% in trigger arguments (schedules, queue names) from app settings."""
    names = set(re.findall(r"%([A-Z][A-Z0-9_]*)%", (ROOT / "function_app.py").read_text(encoding="utf-8")))
    assert names >= {"POLL_SCHEDULE", "DISCOVERY_SCHEDULE", "RETENTION_SCHEDULE"}
    assert names <= set(app_settings()), f"not deployed by app/api.bicep: {names - set(app_settings())}"


# --- (c) Role assignments ----------------------------------------------------------------------


def string_guids(file: BicepFile) -> set[str]:
    return {
        guid.lower() for node in walk(file.root) if node.type == "string_content" for guid in GUID.findall(text(node))
    }


def test_role_assignments_are_the_builtin_roles_only() -> None:
    rbac = bicep("app/rbac.bicep")
    assert string_guids(rbac) == set(BUILTIN_ROLES)
    graph_ids = {GRAPH_APP_ID, *GRAPH_APP_ROLES.values()}
    assert string_guids(bicep("app/graph-permissions.bicep")) == graph_ids
    log_ids = {GRAPH_APP_ID, *PROVISIONING_LOG_APP_ROLES.values()}
    assert string_guids(bicep("app/provisioning-log-permissions.bicep")) == log_ids
    assert string_guids(bicep("app/key-vault-rbac.bicep")) == {KEY_VAULT_SECRETS_USER}
    assert string_guids(bicep("app/monitor-alert.bicep")) == {MONITORING_READER}
    action_ids = {GRAPH_APP_ID, *ACTION_APP_ROLES.values()}
    assert string_guids(bicep("app/action-permissions.bicep")) == action_ids
    others = set().union(*(string_guids(bicep(r)) for r in bicep_files() if r not in ROLE_ASSIGNMENT_FILES))
    allowed = graph_ids | log_ids | action_ids
    assert others <= allowed, f"unexpected ids outside the role files: {others - allowed}"
    for relative in bicep_files():
        if relative not in ROLE_ASSIGNMENT_FILES:
            assert not resources(bicep(relative), "Microsoft.Authorization/roleAssignments@")


def test_role_assignments_are_guid_named_builtin_definitions() -> None:
    assignments = resources(bicep("app/rbac.bicep"), "Microsoft.Authorization/roleAssignments@")
    assert len(assignments) == 4  # storage and telemetry, for the identity and the deployer
    for decl, body in assignments:
        name = lookup(body, "name")
        assert name is not None and text(name).startswith("guid("), text(decl)[:80]
        definition = text(lookup(body, "properties", "roleDefinitionId"))
        assert definition.startswith("subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "), definition


def test_host_storage_identity_holds_the_queue_role() -> None:
    """The identity AzureWebJobsStorage signs in as has Storage Queue Data Contributor on that account.

    The work queue's trigger, the poison queue the host moves failed items to, and the timer runs
    that enqueue items all reach the queue service as that identity.
    """
    settings = app_settings()
    assert literal(settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert text(settings["AzureWebJobsStorage__clientId"]) == "identityClientId"
    assert text(settings["AzureWebJobsStorage__queueServiceUri"]) == "storage.properties.primaryEndpoints.queue"
    api = bicep("app/api.bicep")
    [(api_storage, api_storage_body)] = resources(api, "Microsoft.Storage/storageAccounts@")
    assert symbol(api_storage) == "storage" and any(c.type == "existing" for c in api_storage.children)
    assert text(lookup(api_storage_body, "name")) == "storageAccountName"
    [(_, site)] = resources(api, "Microsoft.Web/sites@")
    assert "'${identityId}'" in text(lookup(site, "identity", "userAssignedIdentities"))

    # main.bicep hands api.bicep and rbac.bicep the same identity and the same storage account.
    main = bicep("main.bicep")
    [identity] = [
        d
        for d in declarations_all(main, "module_declaration")
        if (decl_string(d) or "").startswith("br/public:avm/res/managed-identity/user-assigned-identity:")
    ]
    api_params = lookup(module_body(main, "app/api.bicep"), "params")
    rbac_params = lookup(module_body(main, "app/rbac.bicep"), "params")
    assert text(lookup(api_params, "identityClientId")) == f"{symbol(identity)}.outputs.clientId"
    assert text(lookup(api_params, "identityId")) == f"{symbol(identity)}.outputs.resourceId"
    assert text(lookup(rbac_params, "managedIdentityPrincipalId")) == f"{symbol(identity)}.outputs.principalId"
    assert text(lookup(api_params, "storageAccountName")) == "storage.outputs.name"
    assert text(lookup(rbac_params, "storageAccountName")) == "storage.outputs.name"

    # rbac.bicep grants that principal the queue role, scoped to that account.
    rbac = bicep("app/rbac.bicep")
    [(account, account_body)] = resources(rbac, "Microsoft.Storage/storageAccounts@")
    assert any(c.type == "existing" for c in account.children)
    assert text(lookup(account_body, "name")) == "storageAccountName"
    granted = set()
    for decl, body in resources(rbac, "Microsoft.Authorization/roleAssignments@"):
        if text(lookup(body, "properties", "principalId")) != "managedIdentityPrincipalId":
            continue
        if text(lookup(body, "scope")) != symbol(account):
            continue
        definition = text(lookup(body, "properties", "roleDefinitionId"))
        value = after_equals(decl)
        assert value is not None
        if value.type == "for_statement":
            assert definition.endswith(f", {for_variable(value)})"), definition
            array = after_equals(declarations(rbac, "variable_declaration")[text(for_collection(value))])
            assert array is not None and array.type == "array"
            granted |= {resolve_string(rbac, item) for item in code_children(array)}
        else:
            granted |= set(GUID.findall(definition))
    assert "Storage Queue Data Contributor" in {BUILTIN_ROLES.get(role or "") for role in granted}


# --- (d) No secrets ----------------------------------------------------------------------------

SECRET_PATTERNS = {
    "storage account key": re.compile(r"AccountKey\s*=", re.IGNORECASE),
    "shared access key or signature": re.compile(r"SharedAccess(Key|Signature)", re.IGNORECASE),
    "storage connection string": re.compile(r"DefaultEndpointsProtocol\s*=", re.IGNORECASE),
    "instrumentation key connection string": re.compile(r"InstrumentationKey\s*=", re.IGNORECASE),
    "list* key function": re.compile(r"\blist[A-Z]\w*\s*\("),
    "password literal": re.compile(r"password\w*['\"]?\s*[:=]\s*['\"][^'\"]", re.IGNORECASE),
    "client secret": re.compile(
        r"client_?secret|AZURE_CLIENT_SECRET|passwordCredentials|keyCredentials", re.IGNORECASE
    ),
    "secure parameter": re.compile(r"@secure\(\)"),
    "shared key access on": re.compile(r"allowSharedKeyAccess\s*:\s*true", re.IGNORECASE),
    "local auth on": re.compile(r"disableLocalAuth\s*:\s*false", re.IGNORECASE),
}


def secret_findings(content: str) -> list[str]:
    return [what for what, pattern in SECRET_PATTERNS.items() if pattern.search(content)]


def test_secret_scanner_catches_known_shapes() -> None:
    for bad in [
        "value: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc=='",
        "value: stg.listKeys().keys[0].value",
        "value: listAccountSas(stg.id, '2023-01-01', {})",
        "administratorLoginPassword: 'P@ssw0rd!'",
        "{ name: 'AZURE_CLIENT_SECRET', value: x }",
        "'InstrumentationKey=00000000-0000-0000-0000-000000000000'",
        "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b",
        "@secure()\nparam p string",
        "allowSharedKeyAccess: true",
    ]:
        assert secret_findings(bad), bad


@pytest.mark.parametrize("relative", sorted(p.relative_to(INFRA).as_posix() for p in INFRA.rglob("*") if p.is_file()))
def test_no_secret_looking_content(relative: str) -> None:
    assert secret_findings((INFRA / relative).read_text(encoding="utf-8")) == []


# --- (e) Microsoft Graph -----------------------------------------------------------------------


@cache
def bicepconfig() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    return config


def test_bicepconfig_pins_the_graph_extension() -> None:
    reference = bicepconfig()["extensions"]["microsoftGraphV1"]
    assert re.fullmatch(
        r"br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:\d+\.\d+\.\d+(-[\w.]+)?",
        reference,
    ), reference


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("app/graph-permissions.bicep", GRAPH_APP_ROLES),
        ("app/provisioning-log-permissions.bicep", PROVISIONING_LOG_APP_ROLES),
        ("app/action-permissions.bicep", ACTION_APP_ROLES),
    ],
)
def test_graph_grants_are_exactly_the_least_privilege_roles(relative: str, expected: dict[str, str]) -> None:
    graph_file = bicep(relative)
    # Only the grant modules grant; only the multi-tenant module creates an app (section h).
    graph_types = {
        (decl_string(decl) or "").split("@")[0]
        for relative in bicep_files()
        if relative != MULTITENANT_APP
        for decl in declarations_all(bicep(relative), "resource_declaration")
        if (decl_string(decl) or "").startswith("Microsoft.Graph/")
    }
    assert graph_types == {"Microsoft.Graph/servicePrincipals", "Microsoft.Graph/appRoleAssignedTo"}

    [(sp_decl, sp)] = resources(graph_file, "Microsoft.Graph/servicePrincipals@")
    assert any(c.type == "existing" for c in sp_decl.children), "look Graph up, never create it"
    assert resolve_string(graph_file, lookup(sp, "appId")) == GRAPH_APP_ID
    sp_name = text(next(c for c in sp_decl.named_children if c.type == "identifier"))

    [(grant_decl, grant)] = resources(graph_file, "Microsoft.Graph/appRoleAssignedTo@")
    loop = after_equals(grant_decl)
    assert loop is not None
    collection = for_collection(loop)  # items(<roles object>)
    assert text(collection.child_by_field_name("function")) == "items", text(collection)
    arguments = collection.child_by_field_name("arguments")
    assert arguments is not None
    [roles_var] = code_children(arguments)
    roles_node = after_equals(declarations(graph_file, "variable_declaration")[text(roles_var)])
    assert roles_node is not None
    roles = {name: resolve_string(graph_file, value) for name, value in properties(roles_node).items()}
    assert roles == expected

    # Each role is granted on Graph's own service principal.
    assert text(lookup(grant, "appRoleId")) == f"{for_variable(loop)}.value"
    assert text(lookup(grant, "resourceId")) == f"{sp_name}.id"


def module_condition(main: BicepFile, path: str) -> str:
    """The `if (...)` that deploys the one module of `path` in `main` (it must have one)."""
    [decl] = [d for d in declarations_all(main, "module_declaration") if decl_string(d) == path]
    gate = after_equals(decl)
    assert gate is not None and gate.type == "if_statement", f"{path} is deployed unconditionally"
    return text(gate)


def test_graph_grant_is_gated_by_a_parameter_defaulting_to_true() -> None:
    main = bicep("main.bicep")
    assert module_condition(main, "app/graph-permissions.bicep").startswith("if (grantGraphPermissions)")
    param = declarations(main, "parameter_declaration")["grantGraphPermissions"]
    assert text(after_equals(param)) == "true"


def test_provisioning_log_permissions_are_granted_only_when_the_admin_turns_them_on() -> None:
    main = bicep("main.bicep")
    gate = module_condition(main, "app/provisioning-log-permissions.bicep")
    assert gate.startswith("if (grantGraphPermissions && provisioningLogs != 'off')")
    param = declarations(main, "parameter_declaration")["provisioningLogs"]
    assert text(after_equals(param)) == "'off'"


def test_the_write_permission_is_granted_only_when_the_admin_turns_actions_on() -> None:
    main = bicep("main.bicep")
    gate = module_condition(main, "app/action-permissions.bicep")
    assert gate.startswith("if (grantGraphPermissions && actionsEnabled)")
    param = declarations(main, "parameter_declaration")["actionsEnabled"]
    assert text(after_equals(param)) == "false"
    assert text(app_settings()["ACTIONS_ENABLED"]) == "string(actionsEnabled)"  # the app and the grant agree


# --- (f) Parameters and outputs ----------------------------------------------------------------


def test_parameters_file_sets_declared_parameters_and_every_required_one() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    given = set(document["parameters"])
    params = declarations(bicep("main.bicep"), "parameter_declaration")
    assert given <= set(params), f"not parameters of main.bicep: {given - set(params)}"
    without_default = {name for name, decl in params.items() if after_equals(decl) is None}
    assert without_default <= given, f"azd would have to prompt for {without_default - given}"
    assert document["parameters"]["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert document["parameters"]["location"]["value"] == "${AZURE_LOCATION}"
    assert document["parameters"]["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_outputs_give_azd_what_it_needs() -> None:
    main = bicep("main.bicep")
    assert literal(after_equals(next(iter(declarations_all(main, "target_scope_assignment"))))) == ("subscription")
    outputs = declarations(main, "output_declaration")
    assert set(outputs) >= {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_FUNCTION_APP_NAME",
        "SERVICE_API_NAME",
        "RESOURCE_GROUP",
        "AZURE_RESOURCE_GROUP",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    }
    # The connection string, not the component's name (the quickstart's bug).
    connection = text(after_equals(outputs["APPLICATIONINSIGHTS_CONNECTION_STRING"]))
    assert connection == "monitoring.outputs.connectionString"
    monitoring_outputs = declarations(bicep("app/monitoring.bicep"), "output_declaration")
    assert (
        text(after_equals(monitoring_outputs["connectionString"])) == "applicationInsights.properties.ConnectionString"
    )


def test_azure_yaml_deploys_the_api_service_to_the_tagged_app() -> None:
    content = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    match = re.search(r"^services:\n((?:[ \t]+.*\n?|\n)*)", content, re.MULTILINE)
    assert match, "azure.yaml has no services"
    api_block = re.search(r"^  api:\n((?:    .*\n?)*)", match.group(1), re.MULTILINE)
    assert api_block, "azure.yaml has no `api` service"
    fields = dict(re.findall(r"^    (\w+):\s*(\S+)", api_block.group(1), re.MULTILINE))
    assert fields == {"project": ".", "language": "python", "host": "function"}
    service_name = declarations(bicep("app/api.bicep"), "parameter_declaration")["serviceName"]
    assert literal(after_equals(service_name)) == "api"


def test_every_timer_schedule_setting_is_deployed_and_in_the_sample() -> None:
    """The Functions host resolves %NAME% from app settings: a missing one breaks indexing."""
    source = (ROOT / "function_app.py").read_text()
    schedules = set(re.findall(r'schedule="%([A-Z_]+)%"', source))
    assert schedules == {"POLL_SCHEDULE", "DISCOVERY_SCHEDULE", "RETENTION_SCHEDULE"}
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    api = (ROOT / "infra" / "app" / "api.bicep").read_text()
    for name in schedules:
        assert name in SETTINGS and SETTINGS[name].default
        assert sample[name] == SETTINGS[name].default
        assert f"name: '{name}'" in api


# --- (g) Hardening: publishing credentials, network exposure, opt-in access ---------------------


def function_app_site() -> Node:
    [(_, site)] = resources(bicep("app/api.bicep"), "Microsoft.Web/sites@")
    return site


def allowed_values(decl: Node) -> list[str | None]:
    allowed = decorators(decl).get("allowed")
    assert allowed is not None and allowed.type == "array", f"{symbol(decl)} has no @allowed list"
    return [literal(item) for item in code_children(allowed)]


def test_basic_publishing_credentials_are_off_for_ftp_and_scm() -> None:
    api = bicep("app/api.bicep")
    policies = resources(api, "Microsoft.Web/sites/basicPublishingCredentialsPolicies@")
    by_name = {literal(lookup(body, "name")): (decl, body) for decl, body in policies}
    assert set(by_name) == {"ftp", "scm"} and len(policies) == 2
    [(site_decl, _)] = resources(api, "Microsoft.Web/sites@")
    for name, (decl, body) in by_name.items():
        value = after_equals(decl)
        assert value is not None and value.type == "object", f"{name}: the policy must not be conditional"
        assert text(lookup(body, "parent")) == symbol(site_decl), name
        assert text(lookup(body, "properties", "allow")) == "false", name


def test_ftps_state_is_not_set_because_flex_consumption_rejects_it() -> None:
    """ARM answers "site configuration properties (Site.SiteConfig.FtpsState, ...) for Flex Consumption

    sites is invalid" on the stamps that validate it, so FTP is closed by the ftp policy instead.
    """
    site_config = lookup(function_app_site(), "properties", "siteConfig")
    assert site_config is not None
    assert "ftpsState" not in properties(site_config)
    assert literal(lookup(site_config, "minTlsVersion")) == "1.2"


@pytest.mark.parametrize("parameter", ["storagePublicNetworkAccess", "appPublicNetworkAccess"])
def test_public_network_access_is_a_parameter_that_keeps_public_access_by_default(parameter: str) -> None:
    decl = declarations(bicep("main.bicep"), "parameter_declaration")[parameter]
    assert literal(after_equals(decl)) == "Enabled"
    assert allowed_values(decl) == ["Enabled", "Disabled"]
    assert literal(decorators(decl).get("description"))


def test_storage_account_takes_its_public_network_access_from_the_parameter() -> None:
    [storage] = [
        decl
        for decl in declarations_all(bicep("main.bicep"), "module_declaration")
        if (decl_string(decl) or "").startswith("br/public:avm/res/storage/storage-account:")
    ]
    params = lookup(after_equals(storage), "params")
    assert text(lookup(params, "publicNetworkAccess")) == "storagePublicNetworkAccess"
    # Closed to the public, the firewall denies by default too; open, it stays as it was.
    assert (
        text(lookup(params, "networkAcls", "defaultAction"))
        == "storagePublicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'"
    )


def test_function_app_takes_its_public_network_access_from_the_parameter() -> None:
    assert text(lookup(function_app_site(), "properties", "publicNetworkAccess")) == "publicNetworkAccess"
    api_decl = declarations(bicep("app/api.bicep"), "parameter_declaration")["publicNetworkAccess"]
    assert literal(after_equals(api_decl)) == "Enabled"
    assert allowed_values(api_decl) == ["Enabled", "Disabled"]
    main_decl = main_parameter_for("publicNetworkAccess")
    assert main_decl is not None and symbol(main_decl) == "appPublicNetworkAccess"


def test_deployer_data_roles_are_opt_in() -> None:
    main = bicep("main.bicep")
    param = declarations(main, "parameter_declaration")["grantDeployerDataRoles"]
    assert text(after_equals(param)) == "false"
    rbac_params = lookup(module_body(main, "app/rbac.bicep"), "params")
    assert text(lookup(rbac_params, "grantUserRoles")) == "grantDeployerDataRoles"
    assert text(lookup(rbac_params, "userPrincipalId")) == "principalId"

    rbac = bicep("app/rbac.bicep")
    assert text(after_equals(declarations(rbac, "parameter_declaration")["grantUserRoles"])) == "false"
    gate = text(after_equals(declarations(rbac, "variable_declaration")["grantsUser"]))
    assert gate == "grantUserRoles && !empty(userPrincipalId)"
    for decl, body in resources(rbac, "Microsoft.Authorization/roleAssignments@"):
        value = after_equals(decl)
        assert value is not None
        conditional = "if (grantsUser)" in text(value)
        if text(lookup(body, "properties", "principalId")) == "userPrincipalId":
            assert conditional, f"{symbol(decl)} must wait for grantDeployerDataRoles"
        else:
            assert not conditional and value.type != "if_statement", f"{symbol(decl)}: the app always needs it"


def test_parameters_file_maps_the_hardening_switches_to_safe_defaults() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    values = {name: entry["value"] for name, entry in document["parameters"].items()}
    assert values["grantDeployerDataRoles"] == "${GRANT_DEPLOYER_DATA_ROLES=false}"
    assert values["storagePublicNetworkAccess"] == "${STORAGE_PUBLIC_NETWORK_ACCESS=Enabled}"
    assert values["appPublicNetworkAccess"] == "${APP_PUBLIC_NETWORK_ACCESS=Enabled}"
    assert values["alertKeyVaultResourceId"] == "${ALERT_KEY_VAULT_RESOURCE_ID}"


def test_alert_key_vault_gets_secrets_user_for_the_app_identity_only_when_named() -> None:
    main = bicep("main.bicep")
    param = declarations(main, "parameter_declaration")["alertKeyVaultResourceId"]
    assert literal(after_equals(param)) == ""
    variables = declarations(main, "variable_declaration")
    assert text(after_equals(variables["grantsAlertKeyVault"])) == "!empty(alertKeyVaultResourceId)"
    # An empty ID is never split, so leaving it out cannot fail the deployment.
    assert text(after_equals(variables["alertKeyVaultSegments"])).startswith("grantsAlertKeyVault ? split(")

    [decl] = [d for d in declarations_all(main, "module_declaration") if decl_string(d) == "app/key-vault-rbac.bicep"]
    gate = after_equals(decl)
    assert gate is not None and gate.type == "if_statement"
    assert text(gate).startswith("if (grantsAlertKeyVault)")
    body = unwrap_body(gate)
    scope = text(lookup(body, "scope"))
    assert (
        scope.startswith("resourceGroup(")
        and "alertKeyVaultSegments[2]" in scope
        and "alertKeyVaultSegments[4]" in scope
    )
    [identity] = [
        d
        for d in declarations_all(main, "module_declaration")
        if (decl_string(d) or "").startswith("br/public:avm/res/managed-identity/user-assigned-identity:")
    ]
    assert text(lookup(body, "params", "principalId")) == f"{symbol(identity)}.outputs.principalId"

    vault_rbac = bicep("app/key-vault-rbac.bicep")
    [(vault, vault_body)] = resources(vault_rbac, "Microsoft.KeyVault/vaults@")
    assert any(c.type == "existing" for c in vault.children), "look the vault up, never create it"
    assert text(lookup(vault_body, "name")) == "keyVaultName"
    [(_, assignment)] = resources(vault_rbac, "Microsoft.Authorization/roleAssignments@")
    assert text(lookup(assignment, "scope")) == symbol(vault)
    assert text(lookup(assignment, "name")).startswith("guid(")
    definition = text(lookup(assignment, "properties", "roleDefinitionId"))
    assert definition == "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)"
    assert var_literal(vault_rbac, "keyVaultSecretsUserRoleId") == KEY_VAULT_SECRETS_USER
    assert text(lookup(assignment, "properties", "principalId")) == "principalId"
    assert literal(lookup(assignment, "properties", "principalType")) == "ServicePrincipal"


# --- (h) Many tenants: the multi-tenant app registration (docs/multitenant.md) ------------------

FIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,119}")  # Entra: 3-120, URL friendly, alphanumeric first


def nested_resources(body: Node, type_name: str) -> list[tuple[Node, Node]]:
    """(declaration, body) of the child resources declared inside a resource's body."""
    found = []
    for prop in body.named_children:
        children = code_children(prop) if prop.type == "object_property" else []
        if children and children[0].type == "resource_declaration" and decl_string(children[0]) == type_name:
            value = after_equals(children[0])
            assert value is not None
            found.append((children[0], unwrap_body(value)))
    return found


def multitenant_app() -> tuple[BicepFile, Node, Node]:
    """The module, the app registration's declaration and its body."""
    module = bicep(MULTITENANT_APP)
    [(decl, body)] = resources(module, "Microsoft.Graph/applications@")
    return module, decl, body


def main_identity() -> Node:
    [identity] = [
        d
        for d in declarations_all(bicep("main.bicep"), "module_declaration")
        if (decl_string(d) or "").startswith("br/public:avm/res/managed-identity/user-assigned-identity:")
    ]
    return identity


def test_multitenant_app_is_deployed_only_when_the_admin_asks() -> None:
    main = bicep("main.bicep")
    assert module_condition(main, MULTITENANT_APP).startswith("if (multiTenant)")
    param = declarations(main, "parameter_declaration")["multiTenant"]
    assert text(after_equals(param)) == "false"
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert document["parameters"]["multiTenant"]["value"] == "${MULTI_TENANT=false}"


def test_multitenant_app_accepts_every_organization_and_keeps_a_stable_unique_name() -> None:
    module, _, app = multitenant_app()
    assert literal(lookup(app, "signInAudience")) == "AzureADMultipleOrgs"
    assert text(lookup(app, "uniqueName")) == "appUniqueName"
    assert "appUniqueName" in declarations(module, "parameter_declaration")
    # Derived from the deployment's resource token only: the same app on every re-deployment.
    unique_name = text(lookup(module_body(bicep("main.bicep"), MULTITENANT_APP), "params", "appUniqueName"))
    assert unique_name == "'entra-sync-monitor-${resourceToken}'"


def test_federated_credential_is_the_apps_user_assigned_identity() -> None:
    module, app_decl, app = multitenant_app()
    [(_, fic)] = nested_resources(app, "federatedIdentityCredentials@v1.0")
    # Graph Bicep names a child by its full name: <app uniqueName>/<credential name>.
    name = text(lookup(fic, "name"))
    prefix = f"'${{{symbol(app_decl)}.uniqueName}}/"
    assert name.startswith(prefix) and name.endswith("'"), name
    assert FIC_NAME.fullmatch(name[len(prefix) : -1]), name

    audiences = lookup(fic, "audiences")
    assert audiences is not None and audiences.type == "array"
    [audience] = [resolve_string(module, item) for item in code_children(audiences)]
    assert audience == "api://AzureADTokenExchange"
    # The audience the code asks the managed identity's token for (GRAPH_AUTH=workload_identity).
    credentials = (ROOT / "shared" / "graph" / "credentials.py").read_text(encoding="utf-8")
    assert f'"{audience}/.default"' in credentials

    # Issued by the home tenant, in whatever cloud the deployment runs (never a hard-coded host).
    assert text(lookup(fic, "issuer")) == "'${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'"
    assert text(lookup(fic, "subject")) == "managedIdentityPrincipalId"
    # ...and that principal is the user-assigned identity the Function app runs as.
    params = lookup(module_body(bicep("main.bicep"), MULTITENANT_APP), "params")
    identity = symbol(main_identity())
    assert text(lookup(params, "managedIdentityPrincipalId")) == f"{identity}.outputs.principalId"
    api_params = lookup(module_body(bicep("main.bicep"), "app/api.bicep"), "params")
    assert text(lookup(api_params, "identityId")) == f"{identity}.outputs.resourceId"


def test_multitenant_app_asks_for_exactly_the_permissions_of_the_features_on() -> None:
    module, _, app = multitenant_app()
    variables = declarations(module, "variable_declaration")

    def role_map(name: str) -> dict[str, str | None]:
        node = after_equals(variables[name])
        assert node is not None
        return {key: resolve_string(module, value) for key, value in properties(node).items()}

    poll, logs, actions = role_map("pollAppRoles"), role_map("logAppRoles"), role_map("actionAppRoles")
    assert (poll, logs, actions) == (GRAPH_APP_ROLES, PROVISIONING_LOG_APP_ROLES, ACTION_APP_ROLES)
    assert (
        text(after_equals(variables["requiredAppRoles"]))
        == "union(pollAppRoles, provisioningLogs ? logAppRoles : {}, actionsEnabled ? actionAppRoles : {})"
    )
    for logs_on in (False, True):
        for actions_on in (False, True):
            required = {**poll, **(logs if logs_on else {}), **(actions if actions_on else {})}
            assert any("ReadWrite" in role for role in required) == actions_on
            assert ("AuditLog.Read.All" in required) == logs_on

    required_access = lookup(app, "requiredResourceAccess")
    assert required_access is not None and required_access.type == "array"
    [access] = code_children(required_access)
    assert resolve_string(module, lookup(access, "resourceAppId")) == GRAPH_APP_ID
    loop = lookup(access, "resourceAccess")
    assert loop is not None and text(for_collection(loop)) == "items(requiredAppRoles)"
    entry = unwrap_body(loop)
    assert text(lookup(entry, "id")) == f"{for_variable(loop)}.value"
    assert literal(lookup(entry, "type")) == "Role"  # application permissions, never delegated scopes

    # The features are the same parameters the app settings and the home grants follow.
    params = lookup(module_body(bicep("main.bicep"), MULTITENANT_APP), "params")
    assert text(lookup(params, "provisioningLogs")) == "provisioningLogs != 'off'"
    assert text(lookup(params, "actionsEnabled")) == "actionsEnabled"


def test_home_tenant_grants_go_to_the_apps_service_principal_when_multi_tenant() -> None:
    module, app_decl, _ = multitenant_app()
    [(sp_decl, sp)] = resources(module, "Microsoft.Graph/servicePrincipals@")
    assert not any(c.type == "existing" for c in sp_decl.children), "the app's own service principal is created"
    assert properties(sp).keys() == {"appId"} and text(lookup(sp, "appId")) == f"{symbol(app_decl)}.appId"
    outputs = declarations(module, "output_declaration")
    assert text(after_equals(outputs["servicePrincipalId"])) == f"{symbol(sp_decl)}.id"
    assert not resources(module, "Microsoft.Graph/appRoleAssignedTo@"), "grants stay in the grant modules"

    main = bicep("main.bicep")
    principal = text(after_equals(declarations(main, "variable_declaration")["graphPrincipalId"]))
    identity = symbol(main_identity())
    assert principal == f"multiTenant ? multiTenantApp!.outputs.servicePrincipalId : {identity}.outputs.principalId"
    for path in (
        "app/graph-permissions.bicep",
        "app/provisioning-log-permissions.bicep",
        "app/action-permissions.bicep",
    ):
        assert text(lookup(module_body(main, path), "params", "principalId")) == "graphPrincipalId", path


def test_app_settings_sign_in_as_the_multitenant_app_when_it_is_deployed() -> None:
    settings = app_settings()
    api = bicep("app/api.bicep")
    gate = text(after_equals(declarations(api, "variable_declaration")["signsInAsApp"]))
    assert gate == "!empty(multiTenantAppClientId)"
    assert text(settings["GRAPH_AUTH"]) == "signsInAsApp ? 'workload_identity' : 'managed_identity'"
    assert text(settings["AZURE_CLIENT_ID"]) == "signsInAsApp ? multiTenantAppClientId : identityClientId"
    assert text(settings["MANAGED_IDENTITY_CLIENT_ID"]) == "signsInAsApp ? identityClientId : ''"
    assert literal(after_equals(declarations(api, "parameter_declaration")["multiTenantAppClientId"])) == ""

    passed = lookup(module_body(bicep("main.bicep"), "app/api.bicep"), "params", "multiTenantAppClientId")
    assert text(passed) == "multiTenant ? multiTenantApp!.outputs.appId : ''"
    module, app_decl, _ = multitenant_app()
    outputs = declarations(module, "output_declaration")
    assert text(after_equals(outputs["appId"])) == f"{symbol(app_decl)}.appId"


@pytest.mark.parametrize(("setting", "parameter"), [("TENANTS", "tenants"), ("API_TENANT_ROLES", "apiTenantRoles")])
def test_tenant_settings_come_from_parameters_that_default_to_unset(setting: str, parameter: str) -> None:
    assert api_parameter(app_settings()[setting]) == parameter
    decl = main_parameter_for(parameter)
    assert decl is not None and symbol(decl) == parameter
    assert literal(after_equals(decl)) == ""  # empty: the app reads it as unset
    description = literal(decorators(decl).get("description"))
    assert description is not None and description.startswith(f"{setting}: "), description


def test_multitenant_app_has_no_secret_and_no_certificate() -> None:
    module, _, app = multitenant_app()
    # The federated credential is its only credential: no password or key credential property,
    # no other child resource, and nothing else created.
    assert set(properties(app)) == {"uniqueName", "displayName", "signInAudience", "requiredResourceAccess"}
    children = [decl_string(c) for p in app.named_children for c in code_children(p)[:1] if p.type == "object_property"]
    assert [c for c in children if c and "@" in c] == ["federatedIdentityCredentials@v1.0"]
    created = sorted(decl_string(d) or "" for d in declarations_all(module, "resource_declaration"))
    assert created == ["Microsoft.Graph/applications@v1.0", "Microsoft.Graph/servicePrincipals@v1.0"]
    assert not declarations_all(module, "module_declaration")


def test_outputs_give_the_client_id_and_the_admin_consent_url() -> None:
    module, app_decl, _ = multitenant_app()
    template = text(after_equals(declarations(module, "output_declaration")["adminConsentUrlTemplate"]))
    assert template == (
        "'${environment().authentication.loginEndpoint}{customer-tenant-id}/adminconsent?client_id="
        f"${{{symbol(app_decl)}.appId}}'"
    )
    outputs = declarations(bicep("main.bicep"), "output_declaration")
    assert (
        text(after_equals(outputs["MULTI_TENANT_APP_CLIENT_ID"])) == "multiTenant ? multiTenantApp!.outputs.appId : ''"
    )
    assert (
        text(after_equals(outputs["MULTI_TENANT_ADMIN_CONSENT_URL"]))
        == "multiTenant ? multiTenantApp!.outputs.adminConsentUrlTemplate : ''"
    )


@pytest.mark.parametrize("relative", bicep_files())
def test_no_sign_in_host_is_hard_coded(relative: str) -> None:
    """National clouds have their own Entra hosts: Bicep takes them from environment()."""
    strings = [text(n) for n in walk(bicep(relative).root) if n.type == "string_content"]
    assert not [s for s in strings if re.search(r"login\.(microsoftonline|chinacloudapi|partner)", s)]
