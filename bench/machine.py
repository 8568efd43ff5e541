"""The machine and software a benchmark ran on, read locally (no network)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _output(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _package_version(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def machine_info() -> dict[str, Any]:
    commit = _output(["git", "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no", "--", "shared", "function_app.py"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memoryGiB": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "node": _output(["node", "--version"]),
        "azurite": _package_version(ROOT / "node_modules" / "azurite" / "package.json"),
        "commit": commit,
        "appCodeModified": bool(dirty) if dirty is not None else None,
    }


def _cpu_times() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far), for every process readable in /proc."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    found: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) "
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return found


class ForeignLoad:
    """CPU used by processes outside this one's tree while the benchmark runs (other work on the machine
    skews its timings): sampled every `interval` seconds in a background thread."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.root = os.getpid()
        self.cpu_seconds = 0.0
        self.peak_cores = 0.0
        self.wall_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)

    def _ours(self, snapshot: dict[int, tuple[int, float]]) -> set[int]:
        ours = {self.root}
        grew = True
        while grew:
            grew = False
            for pid, (parent, _) in snapshot.items():
                if parent in ours and pid not in ours:
                    ours.add(pid)
                    grew = True
        return ours

    def _run(self) -> None:
        previous = _cpu_times()
        last = time.monotonic()
        while not self._stop.wait(self.interval):
            current = _cpu_times()
            now = time.monotonic()
            ours = self._ours(current)
            used = sum(
                max(0.0, cpu - previous.get(pid, (0, 0.0))[1]) for pid, (_, cpu) in current.items() if pid not in ours
            )
            self.cpu_seconds += used
            self.wall_seconds += now - last
            self.peak_cores = max(self.peak_cores, used / max(1e-9, now - last))
            previous, last = current, now

    def start(self) -> ForeignLoad:
        if Path("/proc/self/stat").exists():
            self._thread.start()
        return self

    def stop(self) -> dict[str, float | None]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if not self.wall_seconds:
            return {"meanCores": None, "peakCores": None}
        return {"meanCores": self.cpu_seconds / self.wall_seconds, "peakCores": self.peak_cores}


class CpuUse:
    """CPU seconds this process's tree uses between two snapshots, by role: each long-running child
    found by a piece of its command line (Azurite, the emulator), `app` for the children waited for
    meanwhile (the app's commands and their own children: getrusage's RUSAGE_CHILDREN), `harness`
    for this process (the counting proxy, control calls)."""

    def __init__(self, roles: dict[str, str]) -> None:
        self.roles = roles
        self._start: dict[str, float] = {}

    def _children(self) -> dict[str, float]:
        found = dict.fromkeys(self.roles, 0.0)
        me = os.getpid()
        for pid, (parent, cpu) in _cpu_times().items():
            if parent != me:
                continue
            try:
                command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            role = next((role for role, part in self.roles.items() if part in command), None)
            if role is not None:
                found[role] += cpu
        return found

    def _snapshot(self) -> dict[str, float]:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            **self._children(),
            "app": children.ru_utime + children.ru_stime,
            "harness": own.ru_utime + own.ru_stime,
        }

    def start(self) -> CpuUse:
        self._start = self._snapshot()
        return self

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        return {role: round(end[role] - self._start.get(role, 0.0), 2) for role in end}
