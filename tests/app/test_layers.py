"""The house's rules, held by its imports: each room of shared/ imports only the rooms below it
(docs/architecture.md), and nothing on the HTTP path imports the Graph SDK."""

from __future__ import annotations

import ast

import pytest

from tests.support.paths import ROOT

SHARED = ROOT / "shared"
# Which of our rooms each room may import at module level.
ALLOWED = {
    "domain": {"domain"},
    "graph": {"domain", "graph", "settings", "process_cache", "telemetry"},
    "storage": {"domain", "storage", "settings", "process_cache"},
    "alerts": {"domain", "storage", "settings", "alerts", "process_cache", "telemetry"},
    "api": {"domain", "storage", "settings", "alerts", "api", "process_cache", "actions", "tenants"},
    # graph only inside the action (the HTTP path never loads msgraph at import)
    "actions": {"domain", "storage", "settings"},
    "discovery": {"domain", "graph", "storage", "settings"},
    "poll": {
        "domain",
        "graph",
        "storage",
        "settings",
        "alerts",
        "discovery",
        "fanout",
        "provisioning_logs",
        "telemetry",
    },
    "provisioning_logs": {"domain", "graph", "storage", "settings"},
    "fanout": {"domain", "storage", "settings", "alerts", "discovery"},
    "work": {"domain", "graph", "storage", "settings", "alerts", "poll", "fanout", "tenants", "telemetry"},
    # the registry of tenants, and polling each on its own (docs/multitenant.md)
    "tenants": {"domain", "storage", "settings"},
    "tenant_polls": {"domain", "storage", "settings", "poll", "tenants", "telemetry"},
    # traces and metrics (docs/telemetry.md): the OpenTelemetry SDK only once configured
    "telemetry": {"domain"},
    "retention": {"domain", "storage", "settings"},
    "settings": {"domain", "alerts"},
}


def rooms_imported(path: str, *, module_level_only: bool) -> set[str]:
    tree = ast.parse((SHARED / path).read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    rooms: set[str] = set()
    for node in nodes:
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "shared" else [f"shared.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        rooms |= {name.split(".")[1] for name in names if name.startswith("shared.")}
    # `from shared import __version__` names the package, not a room
    return {room for room in rooms if (SHARED / room).is_dir() or (SHARED / f"{room}.py").is_file()}


def files_of(room: str) -> list[str]:
    if (SHARED / room).is_dir():
        return sorted(str(p.relative_to(SHARED)) for p in (SHARED / room).rglob("*.py"))
    return [f"{room}.py"]


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_the_rooms_below_it(room: str) -> None:
    for path in files_of(room):
        # settings builds the whole catalogue on first use (alerts' part), not at import
        extra = rooms_imported(path, module_level_only=room != "settings") - ALLOWED[room]
        assert not extra, f"shared/{path} imports {sorted(extra)}: see docs/architecture.md"


def test_settings_imports_alerts_only_when_the_catalogue_is_asked_for() -> None:
    assert "alerts" not in rooms_imported("settings.py", module_level_only=True)


@pytest.mark.parametrize("room", ["domain", "storage", "alerts", "api"])
def test_nothing_but_the_poll_imports_graph(room: str) -> None:
    for path in files_of(room):
        assert "graph" not in rooms_imported(path, module_level_only=False), path
