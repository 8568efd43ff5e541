"""Targets and the Markdown report, computed from the harness's results (a JSON-ready dict)."""

from __future__ import annotations

import itertools
import re
import statistics
from typing import Any

SCENARIOS: dict[str, str] = {
    "first": "First poll (empty tables)",
    "regular": "Regular poll (one cycle later: some runs are new)",
    "noChange": "Poll that sees no change (clock not moved)",
    "discovery": "Discovery poll (app only: every service principal read, nothing changed)",
    "throttledFirst": "First poll, throttling on",
    "throttledRegular": "Regular poll, throttling on",
}
ENDPOINTS = {
    "summary": "`/api/v1/summary`",
    "jobs": "`/api/v1/jobs`",
    "executions": "`/api/v1/jobs/{sp}/{job}/executions`",
}


# ---------------------------------------------------------------- formatting


def num(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def times(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"


def _sizes(results: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return sorted(((int(n), size) for n, size in results["sizes"].items()), key=lambda item: item[0])


def _pair(size: dict[str, Any], scenario: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    entry = size["scenarios"].get(scenario) or {}
    return entry.get("app"), entry.get("baseline")


# ---------------------------------------------------------------- targets


def _target(name: str, measured: str, met: bool | None) -> dict[str, Any]:
    return {"name": name, "measured": measured, "met": met}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = _sizes(results)
    found: list[dict[str, Any]] = []

    def per_size(scenario: str, key: str, minimum: float, label: str) -> None:
        values = []
        for n, size in sizes:
            app, base = _pair(size, scenario)
            if app and base:
                values.append((n, ratio(base[key], app[key])))
        met = bool(values) and all(v is not None and v >= minimum for _, v in values)
        found.append(
            _target(
                label,
                ", ".join(f"{times(v)} at {n:,} SPs" for n, v in values) or "not measured",
                met if values else None,
            )
        )

    per_size("regular", "graphRequests", 15, "A regular poll makes at least 15x fewer Graph requests than the baseline")
    per_size("regular", "pollSeconds", 10, "A regular poll runs at least 10x faster than the baseline")

    writes = [(n, app["dataEntitiesWritten"]) for n, size in sizes if (app := _pair(size, "noChange")[0])]
    found.append(
        _target(
            "A poll that sees no change writes no data entity",
            ", ".join(f"{w} at {n:,} SPs" for n, w in writes) or "not measured",
            all(w == 0 for _, w in writes) if writes else None,
        )
    )

    latency = []
    for n, size in sizes:
        api = size.get("api") or {}
        if api.get("Nx"):
            one, many = api["1x"]["endpoints"]["summary"], api["Nx"]["endpoints"]["summary"]
            latency.append((n, ratio(many["p50ms"], one["p50ms"]), _history_multiple(api)))
    found.append(
        _target(
            f"Summary latency (p50) at {results['options']['history_multiplier']}x stored history is within 1.5x of 1x",
            ", ".join(f"{times(r)} at {n:,} SPs ({times(h)} history)" for n, r, h in latency) or "not measured",
            all(r is not None and r <= 1.5 for _, r, _ in latency) if latency else None,
        )
    )

    cold = results.get("coldStart") or {}
    answers = [run["firstAnswerSeconds"] for run in cold.get("runs", [])]
    if answers:
        median = statistics.median(answers)
        found.append(
            _target(
                "The first HTTP answer after importing function_app comes within 1 s",
                f"{median:.3f} s (median of {len(answers)}, worst {max(answers):.3f} s)",
                median <= 1.0,
            )
        )
    else:
        found.append(
            _target("The first HTTP answer after importing function_app comes within 1 s", "not measured", None)
        )

    growth = []
    for scenario in ("first", "regular"):
        for (n1, small), (n2, large) in itertools.pairwise(sizes):
            a1, a2 = _pair(small, scenario)[0], _pair(large, scenario)[0]
            if a1 and a2:
                growth.append((scenario, n1, n2, ratio(a2["peakRssMB"], a1["peakRssMB"]), n2 / n1))
    found.append(
        _target(
            "Peak memory of a poll grows less than linearly with the tenant's size",
            "; ".join(
                f"{scenario} poll {n1:,}→{n2:,} SPs ({times(k)}): {times(r)}" for scenario, n1, n2, r, k in growth
            )
            or "needs two sizes",
            all(r is not None and r < k for *_, r, k in growth) if growth else None,
        )
    )
    fan = results.get("fanout")
    if fan:
        found.append(_fanout_target(fan))
    if results.get("tenants"):
        from bench.tenants_report import target  # it builds on this module's formatting

        found.append(target(results["tenants"]))
    return found


SWEEP_GROWTH_AT_2, SWEEP_PLATEAU_AT_4 = 1.2, 0.9
FANOUT_DEFAULT_PRINCIPALS = 50_000  # bench.run.FANOUT_PRINCIPALS


def _fanout_throughput(fan: dict[str, Any]) -> dict[int, float]:
    return {
        s["workers"]: s["principalsPerSecond"]
        for s in fan.get("sweeps", [])
        if s.get("principalsPerSecond") and s.get("status") in ("succeeded", "partial")
    }


def _fanout_target(fan: dict[str, Any]) -> dict[str, Any]:
    """Sweep throughput grows with workers: 2 workers at least 1.2x of 1, and 4 no less than 0.9x of 2
    (on a 2-core machine more than 2 processes cannot be expected to add throughput)."""
    name = (
        "Discovery sweep throughput grows with workers (2 workers ≥ "
        f"{SWEEP_GROWTH_AT_2}x of 1; 4 workers ≥ {SWEEP_PLATEAU_AT_4}x of 2)"
    )
    rate = _fanout_throughput(fan)
    if 1 not in rate or len(rate) < 2:
        return _target(name, "not measured", None)
    parts = [f"{n} workers {times(ratio(r, rate[1]))} of 1 ({num(r)} SPs/s)" for n, r in sorted(rate.items()) if n != 1]
    met = True
    if 2 in rate:
        met = rate[2] >= SWEEP_GROWTH_AT_2 * rate[1]
        if 4 in rate:
            met = met and rate[4] >= SWEEP_PLATEAU_AT_4 * rate[2]
    else:
        met = all(r > rate[1] for n, r in rate.items() if n > 1)
    return _target(name, f"{fan['servicePrincipals']:,} SPs: " + "; ".join(parts), met)


def _fanout_row(m: dict[str, Any], base: float | None, jobs: bool = False) -> list[str]:
    work = m.get("work") or {}
    row = [
        m["label"],
        str(m["status"]) + ("" if m.get("fannedOut") else " (not fanned out)"),
        f"{num(work.get('itemsDone'))} / {num(work.get('items'))}"
        + (f", {work['itemsPoisoned']} poisoned" if work.get("itemsPoisoned") else "")
        + (f", {work['itemsLost']} lost" if work.get("itemsLost") else ""),
        num(m.get("principals")),
        num(m.get("seconds")),
        num(m.get("durationSeconds")),
        f"{m.get('itemsFailed', 0)} ({m.get('workRuns', 0)} runs)" if m.get("workers") else "–",
    ]
    if jobs:
        row += [
            num(m.get("jobsRead")),
            f"{num(m['graphRequests'])} / {num(m.get('recordGraphRequests'))}",
            num(m.get("graphRequestsPerJob")),
            num(m.get("graphBatchItems")),
            num(m["tableOperations"]),
            num(m["entitiesWritten"]),
            num(m.get("runsStored")),
        ]
    else:
        rate = m.get("principalsPerSecond")
        row += [
            num(rate),
            times(ratio(rate, base)) if base and m["label"] != "first sweep" else "–",
            f"{num(m['graphRequests'])} / {num(m.get('recordGraphRequests'))}",
            num(m.get("graphBatchItems")),
            num(m["tableOperations"]),
            num(m["entitiesWritten"]),
        ]
    return row


def fanout_section(results: dict[str, Any]) -> str | None:
    fan = results.get("fanout")
    if not fan:
        return None
    options = results["options"]
    inline = fan.get("inlineMaxPrincipals")
    inline_text = f"`WORK_INLINE_MAX_PRINCIPALS={inline}`" if inline is not None else "the default settings"
    base = _fanout_throughput(fan).get(1)
    sweeps = [fan["first"], *fan.get("sweeps", [])]
    out = [
        "\n## Large tenants: work queue fan-out\n",
        f"A tenant of {fan['servicePrincipals']:,} service principals, {fan['jobRatio']:.0%} of them with jobs, "
        f"behind {options['latency_ms']} ms of Graph latency, with {inline_text}: a poll that must read more "
        "service principals than `WORK_INLINE_MAX_PRINCIPALS` is cut into work items (`WORK_ITEM_PRINCIPALS` "
        "each) on a Storage queue and done by workers. Everything runs through the app's command line "
        "(`bench/fanout.py`): `python -m shared poll --discover --dispatch-only`, then "
        f"`python -m shared work --processes N --idle-seconds {num(fan.get('idleSeconds'))}` (each process does "
        "host.json's `batchSize` items at a time, fetching more at `newBatchThreshold`"
        + (
            "; the workers are started before the dispatch, so their Python start and imports are done when "
            "the items arrive, as on running instances"
            if fan.get("warmWorkers")
            else ""
        )
        + "); the emulator clock is frozen, so every sweep after the "
        "first reads the same tenant state and does the same work. The first sweep (empty tables: it stores "
        "every principal, job and run) is shown apart from the measured ones."
        + (
            ""
            if fan["servicePrincipals"] == FANOUT_DEFAULT_PRINCIPALS
            else f" `--fanout` alone runs {FANOUT_DEFAULT_PRINCIPALS:,} service principals; this run used "
            f"`--fanout-principals {fan['servicePrincipals']}`."
        )
        + "\n",
        "*Sweep s* runs from the dispatch command's spawn to the poll record's completion (its `endedAt`: "
        "Python start and imports of the dispatch included, the workers' idle wait after the last item not); "
        "*record s* is the record's own `durationSeconds` (from its `startedAt`, after the dispatch's imports). "
        + (
            "Throughput is principals swept ÷ record s. "
            if fan.get("warmWorkers")
            else "Throughput is principals swept ÷ sweep s. "
        )
        + "Graph requests: the emulator's count / the record's "
        "own (summed over its items; both include the listing). Table operations: the counting proxy, "
        "dispatch and workers together (queue operations go straight to Azurite and are not counted).\n",
        _table(
            [
                "sweep",
                "status",
                "items done / items",
                "SPs swept",
                "sweep s",
                "record s",
                "item tries failed (work runs)",
                "SPs / s",
                "vs 1 worker",
                "Graph requests: emulator / record",
                "batch items",
                "Table operations",
                "entities written",
            ],
            [_fanout_row(m, base) for m in sweeps],
            "llrrrrrrrrrrr",
        ),
    ]
    rate = _fanout_throughput(fan)
    cores = results["machine"].get("cores")
    if rate.get(1):
        growth = ", ".join(f"{n} workers {times(ratio(r, rate[1]))}" for n, r in sorted(rate.items()) if n != 1)
        out.append(
            f"\nThroughput against 1 worker, measured in the same run: {growth}. The machine has {cores} cores, "
            "shared by the workers, Azurite (Table and Queue, Node) and the Graph emulator (one Python process "
            "that also serves the 40 ms latency as sleeps), so past as many worker processes as cores the "
            "machine's CPU, not Graph's latency, is what limits the growth here (on the platform each instance "
            "has its own CPU).\n"
        )
    regular = fan.get("regular") or []
    if regular:
        jobs = regular[0].get("jobsRead")
        out.append(
            f"\n### Regular poll through the queue ({num(jobs)} jobs)\n\n"
            f"The emulator clock moved {options['cycle_seconds'] // 60} min before each (so each finds about "
            "the same number of new runs); a regular poll reads only the principals known to have jobs, 20 "
            "to a `$batch`, so about one Graph request per 20 such principals is the floor. *poll alone*: "
            "`python -m shared poll` without `--dispatch-only`, which does its own items in-process.\n\n"
            + _table(
                [
                    "poll",
                    "status",
                    "items done / items",
                    "SPs read",
                    "poll s",
                    "record s",
                    "item tries failed (work runs)",
                    "jobs read",
                    "Graph requests: emulator / record",
                    "Graph requests per job",
                    "batch items",
                    "Table operations",
                    "entities written",
                    "runs stored",
                ],
                [_fanout_row(m, None, jobs=True) for m in regular],
                "llrrrrrrrrrrrr",
            )
        )
    out.append(
        "\nA failed item try is retried by the queue after host.json's `visibilityTimeout` (30 s), and that wait "
        "is in *sweep s*: `python -m shared work` stays while a message it cannot see yet is still counted. "
        "Should the workers exit with the poll still incomplete, the harness starts the same N workers again "
        "(*work runs*).\n"
    )
    if fan.get("run"):
        run = fan["run"]
        load = run.get("foreignLoad") or {}
        out.append(
            f"\nThese fan-out figures come from a separate run: `{run['command']}`, {run['minutes']:.1f} min, "
            f"{run['date']}; other processes used {load.get('meanCores', 0):.2f} cores on average during it.\n"
        )
    return "\n".join(out)


def inline_table(results: dict[str, Any]) -> str | None:
    """Each size's polls fanned out (the app's default) against the same polls in one run."""
    rows = []
    for n, size in _sizes(results):
        for scenario in ("first", "regular", "noChange", "discovery"):
            entry = size["scenarios"].get(scenario) or {}
            app, one = entry.get("app"), entry.get("appInline")
            if not app or not one:
                continue
            rows.append(
                [
                    f"{n:,}",
                    scenario,
                    ("fanned out, " + f"{app.get('workItems')} items") if app.get("fannedOut") else "one run",
                    f"{num(app['pollSeconds'])} / {num(one['pollSeconds'])}",
                    f"{num(app['graphRequests'])} / {num(one['graphRequests'])}",
                    f"{num(app['tableOperations'])} / {num(one['tableOperations'])}",
                    f"{num(app['entitiesWritten'])} / {num(one['entitiesWritten'])}",
                    f"{num(app['peakRssMB'])} / {num(one['peakRssMB'])}",
                ]
            )
    if not rows:
        return None
    header = [
        "SPs",
        "poll",
        "default path",
        "poll s: default / one run",
        "Graph requests: default / one run",
        "Table operations: default / one run",
        "entities written: default / one run",
        "peak RSS MB: default / one run",
    ]
    return _table(header, rows, "lllrrrrr")


def _history_multiple(api: dict[str, Any]) -> float | None:
    if not api.get("Nx"):
        return None
    return ratio(api["Nx"]["executionsStored"], api["1x"]["executionsStored"])


# ---------------------------------------------------------------- tables


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_WORSE = {"fewer": "more", "faster": "slower"}


def _cell(app: float | None, base: float | None, better: str | None = None) -> str:
    """`app / baseline (Nx fewer)`, or `(Nx more)` when the app is the costlier one."""
    text = f"{num(app)} / {num(base)}" if base is not None else num(app)
    factor = ratio(base, app)
    if better and factor is not None:
        text += f" ({times(factor)} {better})" if factor >= 1 else f" ({times(1 / factor)} {_WORSE[better]})"
    elif better and base is not None and app == 0:
        text += " (app: none)"
    return text


def _size_label(n: int, size: dict[str, Any]) -> str:
    return f"{n:,} ({num(size.get('servicePrincipalsWithJobs'))} / {num(size.get('jobs'))})"


def poll_table(results: dict[str, Any], scenario: str) -> str | None:
    rows = []
    throttled = scenario.startswith("throttled")
    for n, size in _sizes(results):
        app, base = _pair(size, scenario)
        if app is None:
            continue
        b = base or {}
        row = [
            _size_label(n, size),
            _cell(app["graphRequests"], b.get("graphRequests"), "fewer"),
            _cell(app["tableOperations"], b.get("tableOperations"), "fewer"),
            _cell(app["entitiesWritten"], b.get("entitiesWritten"), "fewer"),
            _cell(app["pollSeconds"], b.get("pollSeconds"), "faster"),
            _cell(app["peakRssMB"], b.get("peakRssMB")),
        ]
        if throttled:
            row.insert(2, _cell(app["throttledResponses"], b.get("throttledResponses")))
        status = {app["status"], b.get("status", app["status"])}
        if status != {"succeeded"}:
            row[0] += " ⚠ " + "/".join(sorted(str(s) for s in status))
        rows.append(row)
    if not rows:
        return None
    header = [
        "SPs (with jobs / jobs)",
        "Graph requests: app / naive",
        "Table operations: app / naive",
        "Entities written: app / naive",
        "Poll time s: app / naive",
        "Peak RSS MB: app / naive",
    ]
    if throttled:
        header.insert(2, "429s served: app / naive")
    return _table(header, rows)


def growth_table(results: dict[str, Any]) -> str | None:
    sizes = _sizes(results)
    rows = []
    for scenario in ("first", "regular", "noChange", "throttledRegular"):
        for which in ("app", "baseline"):
            for (n1, small), (n2, large) in itertools.pairwise(sizes):
                a = (small["scenarios"].get(scenario) or {}).get(which)
                b = (large["scenarios"].get(scenario) or {}).get(which)
                if not a or not b:
                    continue
                rows.append(
                    [
                        SCENARIOS[scenario].split(" (")[0],
                        "app" if which == "app" else "naive",
                        f"{n1:,} → {n2:,} ({times(n2 / n1)})",
                        times(ratio(b["graphRequests"], a["graphRequests"])),
                        times(ratio(b["tableOperations"], a["tableOperations"])),
                        times(ratio(b["entitiesWritten"], a["entitiesWritten"])),
                        times(ratio(b["pollSeconds"], a["pollSeconds"])),
                        times(ratio(b["peakRssMB"], a["peakRssMB"])),
                        times(ratio(b["pollRssIncrementMB"], a["pollRssIncrementMB"])),
                    ]
                )
    if not rows:
        return None
    header = [
        "poll",
        "",
        "SPs",
        "Graph requests",
        "Table operations",
        "Entities written",
        "Poll time",
        "Peak RSS",
        "RSS growth during the poll",
    ]
    return _table(header, rows, "llr" + "r" * 6)


def no_change_table(results: dict[str, Any]) -> str | None:
    rows = []
    for n, size in _sizes(results):
        app, base = _pair(size, "noChange")
        if app is None:
            continue
        writes = app["tables"]["byTable"].get("write", {})
        rows.append(
            [
                _size_label(n, size),
                num(app["dataEntitiesWritten"]),
                ", ".join(f"{table} {count}" for table, count in writes.items()) or "none",
                num(base["dataEntitiesWritten"]) if base else "not run",
                _cell(app["tableOperations"], base["tableOperations"] if base else None, "fewer"),
                _cell(app["graphRequests"], base["graphRequests"] if base else None, "fewer"),
            ]
        )
    if not rows:
        return None
    header = [
        "SPs (with jobs / jobs)",
        "Data entities written: app",
        "App writes by table",
        "Data entities: naive",
        "Table operations: app / naive",
        "Graph requests: app / naive",
    ]
    return _table(header, rows, "lrlrrr")


def discovery_table(results: dict[str, Any]) -> str | None:
    rows = []
    for n, size in _sizes(results):
        app = _pair(size, "discovery")[0]
        if app is None:
            continue
        naive = _pair(size, "regular")[1]
        writes = app["tables"]["byTable"].get("write", {})
        rows.append(
            [
                _size_label(n, size),
                _cell(app["graphRequests"], naive["graphRequests"] if naive else None, "fewer"),
                num(app["graphBatchItems"]),
                num(app["tableOperations"]),
                ", ".join(f"{table} {count}" for table, count in writes.items()) or "none",
                _cell(app["pollSeconds"], naive["pollSeconds"] if naive else None, "faster"),
                num(app["peakRssMB"]),
            ]
        )
    if not rows:
        return None
    header = [
        "SPs (with jobs / jobs)",
        "Graph requests: app / naive regular poll",
        "Batch items",
        "Table operations",
        "Writes by table",
        "Poll time s: app / naive regular poll",
        "Peak RSS MB",
    ]
    return _table(header, rows, "lrrrlrr")


def latency_table(results: dict[str, Any]) -> str | None:
    rows = []
    for n, size in _sizes(results):
        api = size.get("api")
        if not api:
            continue
        one, many = api["1x"], api.get("Nx")
        for key, label in ENDPOINTS.items():
            a = one["endpoints"].get(key)
            if a is None:
                continue
            b = many["endpoints"].get(key) if many else None
            stored_1 = one["jobExecutionsStored"] if key == "executions" else one["executionsStored"]
            stored_n = (
                (many["jobExecutionsStored"] if key == "executions" else many["executionsStored"]) if many else None
            )
            rows.append(
                [
                    f"{n:,}",
                    label,
                    num(stored_1),
                    f"{num(a['p50ms'])} / {num(a['p95ms'])}",
                    num(stored_n),
                    f"{num(b['p50ms'])} / {num(b['p95ms'])}" if b else "not measured",
                    times(ratio(b["p50ms"], a["p50ms"])) if b else "–",
                    times(ratio(b["p95ms"], a["p95ms"])) if b else "–",
                    f"{num(a['bytes'])} / {num(b['bytes'])}" if b else num(a["bytes"]),
                ]
            )
    if not rows:
        return None
    header = [
        "SPs",
        "endpoint",
        "runs stored (1x)",
        "1x p50 / p95 ms",
        "runs stored (Nx)",
        "Nx p50 / p95 ms",
        "p50 Nx/1x",
        "p95 Nx/1x",
        "body bytes 1x / Nx",
    ]
    return _table(header, rows, "llrrrrrrr")


def cold_table(results: dict[str, Any]) -> str | None:
    cold = results.get("coldStart")
    if not cold:
        return None
    rows = []
    for i, run in enumerate(cold["runs"], start=1):
        rows.append(
            [
                str(i),
                num(run["importSeconds"]),
                num(run["firstAnswerSeconds"]),
                str(run["status"]),
                num((run.get("rssAfterImportKB") or 0) / 1024),
                num((run.get("peakRssKB") or 0) / 1024),
                "yes" if run["msgraphAfterImport"] else "no",
                "yes" if run["msgraphAfterAnswer"] else "no",
                num(run["processSeconds"]),
            ]
        )
    runs = cold["runs"]
    rows.append(
        [
            "median",
            num(statistics.median(r["importSeconds"] for r in runs)),
            num(statistics.median(r["firstAnswerSeconds"] for r in runs)),
            "",
            num(statistics.median((r.get("rssAfterImportKB") or 0) / 1024 for r in runs)),
            num(statistics.median((r.get("peakRssKB") or 0) / 1024 for r in runs)),
            "",
            "",
            num(statistics.median(r["processSeconds"] for r in runs)),
        ]
    )
    header = [
        "run",
        "import function_app s",
        "first answer after import s",
        "status",
        "RSS after import MB",
        "peak RSS MB",
        "msgraph after import",
        "msgraph after answer",
        "process s (spawn → exit)",
    ]
    text = _table(header, rows, "lrrrrrllr")
    serve = cold.get("serve") or []
    if serve:
        text += "\n" + _table(
            ["`python -m shared serve`", "spawn → first 200 of /api/v1/summary s", "server peak RSS MB"],
            [[str(i), num(s["seconds"]), num((s.get("peakRssKB") or 0) / 1024)] for i, s in enumerate(serve, 1)],
        )
    return text


def details_table(results: dict[str, Any]) -> str:
    rows = []
    for n, size in _sizes(results):
        for scenario in SCENARIOS:
            for which in ("app", "baseline"):
                m = (size["scenarios"].get(scenario) or {}).get(which)
                if not m:
                    continue
                writes = m["tables"]["byTable"].get("write", {})
                rows.append(
                    [
                        f"{n:,}",
                        scenario,
                        "app" if which == "app" else "naive",
                        str(m["status"]),
                        num(m["graphRequests"]),
                        num(m["graphBatchItems"]),
                        num(m["throttledResponses"]),
                        num(m["tableRequests"]),
                        num(m["tableOperations"]),
                        ", ".join(f"{t} {c}" for t, c in writes.items()) or "none",
                        num(m["pollSeconds"]),
                        num(m["processSeconds"]),
                        num(m["peakRssMB"]),
                        num(m["pollRssIncrementMB"]),
                    ]
                )
    header = [
        "SPs",
        "poll",
        "",
        "status",
        "Graph req",
        "batch items",
        "429s",
        "Table HTTP req",
        "Table ops",
        "writes by table",
        "poll s",
        "process s (with warm-up)",
        "peak RSS MB",
        "RSS growth MB",
    ]
    return _table(header, rows, "lllllrrrrlrrrr".replace("lllll", "llllr"))


# ---------------------------------------------------------------- the document


def _calibration(calibration: dict[str, Any] | None) -> str:
    if not calibration:
        return "not measured"
    return (
        f"one Azurite upsert (1 kB, through the counting proxy) takes {num(calibration['tableUpsertMs'])} ms in "
        f"sequence and {num(calibration['tableUpsertMsAt8Concurrent'])} ms of wall time each with 8 in flight; "
        f"one Graph emulator round trip, with the configured latency, {num(calibration['graphRoundTripMs'])} ms"
    )


def _foreign(machine: dict[str, Any]) -> str:
    load = machine.get("foreignLoad") or {}
    if load.get("meanCores") is None:
        return "not measured"
    return (
        f"{load['meanCores']:.2f} cores on average, {load['peakCores']:.2f} at most (2 s samples of /proc; "
        "anything above ~0.1 means other work shared the machine and times are pessimistic)"
    )


# ---------------------------------------------------------------- provisioning logs (bench/provisioning_logs.py)

_ERROR_TABLES = ("ProvisioningErrors", "ProvisioningErrorDays")


def _plog_writes(row: dict[str, Any]) -> str:
    """Entities written: the error tables' (cursor included) + the rest."""
    written = ((row.get("tables") or {}).get("byTable") or {}).get("write") or {}
    errors = sum(count for table, count in written.items() if table in _ERROR_TABLES)
    other = sum(count for table, count in written.items() if table not in _ERROR_TABLES)
    return f"{num(errors)} + {num(other)}"


def _plog_row(mode: str, row: dict[str, Any], off_seconds: float | None) -> list[str]:
    section = row.get("provisioningLogs") or {}
    seconds = row.get("pollSeconds")
    return [
        mode,
        row["label"],
        num(seconds),
        times(ratio(seconds, off_seconds)),
        f"{num(row.get('graphRequests'))} ({num(row.get('logRequests'))})",
        num(section.get("pagesRead")),
        num(section.get("eventsRead")),
        num(section.get("rowsWritten")),
        num(row.get("tableOperations")),
        _plog_writes(row),
        num(section.get("behindHours")),
        str(section.get("status") or row.get("status")),
    ]


def provisioning_logs_section(results: dict[str, Any]) -> str | None:
    plog = results.get("provisioningLogs")
    if not plog:
        return None
    truth = plog.get("groundTruth") or {}
    off_seconds = plog.get("offMedianPollSeconds")
    modes = plog.get("modes") or {}
    rows: list[list[str]] = [_plog_row("off", row, off_seconds) for row in (modes.get("off") or {}).get("polls", [])]
    summary: list[list[str]] = []
    for mode, entry in modes.items():
        if mode == "off":
            continue
        catch_up = entry.get("catchUp") or []
        rows += [_plog_row(mode, row, off_seconds) for row in catch_up]
        for key in ("steadySameHour", "steadyHourTurn"):
            if entry.get(key):
                rows.append(_plog_row(mode, entry[key], off_seconds))
        last = (catch_up[-1].get("provisioningLogs") or {}) if catch_up else {}
        pages = sum((r.get("provisioningLogs") or {}).get("pagesRead") or 0 for r in catch_up)
        over = ratio(pages, truth.get("pagesNeeded"))
        summary.append(
            [
                mode,
                num(len(catch_up)),
                "yes" if last.get("status") == "ok" and not last.get("behindHours") else "**no**",
                num(sum(r.get("logRequests") or 0 for r in catch_up)),
                f"{num(pages)} ({over:.2f}x)" if over is not None else num(pages),
                num(sum((r.get("provisioningLogs") or {}).get("eventsRead") or 0 for r in catch_up)),
                num(sum(r.get("pollSeconds") or 0 for r in catch_up)),
                num(sum(r.get("entitiesWritten") or 0 for r in catch_up)),
            ]
        )
    run = plog.get("run") or {}
    load = run.get("foreignLoad") or {}
    head = (
        "\n## Provisioning logs: a job with 10,000 failure events\n\n"
        f"`bench/provisioning_logs.py` (`{run.get('command', 'python -m bench.provisioning_logs')}`"
        + (f", {run['minutes']:.1f} min, {run['date']}" if run.get("minutes") is not None else "")
        + (
            f"; other processes used {load['meanCores']:.2f} cores on average, {load['peakCores']:.2f} at most"
            if load.get("meanCores") is not None
            else ""
        )
        + "): a generated tenant of "
        f'{num(plog["servicePrincipals"])} service principals plus the emulator\'s "Benchmark Failing SCIM App" '
        f"(`failure_events={plog['failureEvents']:,}`), Graph latency {plog['latencyMs']} ms, "
        f"`PROVISIONING_LOG_PAGES` {plog.get('pages') or 'default (20)'}. Each mode polls into its own tables "
        "after a setup poll with the logs off stored the jobs, so every poll below is a no-change poll for the "
        "jobs and differs only in the log collection; *off* is the baseline, the same poll with "
        "`PROVISIONING_LOGS=off` (its median is the x off denominator; ratios, not absolute times, are "
        "the figure to read on a shared machine).\n\n"
        "Harness steps: the emulator clock (frozen) is set 3 h behind the wall clock before the tenant is "
        "built, because the collector windows on the wall clock (`datetime.now`) and reads only up to 15 minutes "
        "before it, while the emulator stamps the log's day in its own time; then the collector's cursor is "
        f"seeded (`save_log_cursor`) at {plog['seededCursor']}, the hour of the log's first event (a first poll "
        "would start a day back from the wall clock, 3 h later). "
        f"Ground truth in that window (emulator control API): {num(truth.get('nonSuccessInWindow'))} non-success "
        f"events of {num(truth.get('jobsWithNonSuccess'))} jobs, {num(truth.get('failingJobFailures'))} of them "
        f"failures of the failing job; at 500 a page at least {num(truth.get('pagesNeeded'))} pages (the "
        "minimum the *x minimum* column divides by).\n\n"
    )
    catch = _table(
        [
            "mode",
            "catch-up polls",
            "caught up",
            "log requests",
            "pages read (x minimum)",
            "events read",
            "poll s (sum)",
            "entities written",
        ],
        summary,
    )
    detail = _table(
        [
            "mode",
            "poll",
            "poll s",
            "x off",
            "Graph req (log)",
            "pages",
            "events",
            "rows",
            "table ops",
            "entities written (error tables + other)",
            "behind h",
            "status",
        ],
        rows,
        "ll" + "r" * 9 + "l",
    )
    notes = (
        "\n*Steady, same hour*: one more poll right after the catch-up; the cursor is at the wall clock's last "
        "safe hour, so nothing is read unless the hour turned. *Steady, hour turned*: the cursor set one hour "
        "back (what the top of each hour looks like), the emulator still frozen, so that hour is quiet: the "
        "hourly cost of a quiet log. *Rows* is the collector's `rowsWritten`; *entities written* counts every "
        "upsert through the proxy, the error tables' cursor and both tables' rows included, then the rest "
        "(`Polls` record and the like). Graph requests are the emulator's counters (log requests: those on "
        "`/auditLogs/provisioning`).\n"
    )
    return head + catch + "\n" + detail + notes


def render(results: dict[str, Any]) -> str:
    options, machine = results["options"], results["machine"]
    sizes = [n for n, _ in _sizes(results)]
    out: list[str] = []
    add = out.append
    add("# Benchmarks\n")
    add(
        "Generated by the benchmark command; do not edit by hand, re-run it:\n\n"
        "```bash\n"
        "bench/run.sh                 # the full run: sizes 500 and 2000, Graph latency 40 ms\n"
        "bench/run.sh --quick         # about 5 minutes: sizes 100 and 400\n"
        "bench/run.sh --sizes 500,2000,10000 --latency-ms 40   # any sizes / latency; --help lists every option\n"
        "bench/run.sh --tenants-only  # many tenants: 20 × 150 jobs polled through the queue by 1, 2 and 4 workers\n"
        "```\n\n"
        "`bench/run.sh` installs what is missing (`scripts/setup.sh`) and runs `.venv/bin/python -m bench`; "
        "it writes this file and every figure as JSON (`--json`, default `bench/results/latest.json`). "
        "CI runs only a tiny smoke size (`tests/devtools/test_bench_smoke.py`).\n"
    )
    add(f"This run: `{options['command']}`, {results['totalSeconds'] / 60:.1f} min, {machine['date']}.\n")
    for note in results.get("notes", []):
        add(f"{note}\n")
    add("## Machine and settings\n")
    add(
        _table(
            ["", ""],
            [
                ["CPU", f"{machine['cpu']}, {machine['cores']} cores"],
                ["Memory", f"{machine['memoryGiB']} GiB"],
                ["OS", str(machine["os"])],
                ["Python / Node / Azurite", f"{machine['python']} / {machine['node']} / {machine['azurite']}"],
                ["Other processes' CPU during the run", _foreign(machine)],
                ["Calibration", _calibration(results.get("calibration"))],
                [
                    "App code",
                    f"commit {machine['commit']}"
                    + (" with uncommitted changes in shared/" if machine.get("appCodeModified") else ""),
                ],
                ["Tenant sizes (service principals)", ", ".join(f"{n:,}" for n in sizes)],
                ["Share with jobs, seed", f"{options['job_ratio']:.0%}, {options['seed']}"],
                ["Graph latency", f"{options['latency_ms']} ms per HTTP request (a `$batch` is one request)"],
                ["Cycle between first and regular poll", f"{options['cycle_seconds'] // 60} min of emulator time"],
                [
                    "Throttling on",
                    f"every {options['throttle_every']}th Graph read under `/servicePrincipals` (page or job "
                    "read, standalone or in a batch) answered 429 with "
                    f"`Retry-After: {options['throttle_retry_after']}`",
                ],
                ["API samples", f"{options['api_samples']} per endpoint after 3 warm-up requests"],
            ],
            "ll",
        )
    )
    if sizes and max(sizes) < 10_000:
        add(
            "\nThe 10,000-SP size is supported (`--sizes 500,2000,10000`) but not part of the default run: the "
            "naive baseline alone needs about 7.5 minutes a poll at that size (10,000 reads in sequence at "
            f"{options['latency_ms']} ms), which takes the run far past 25 minutes on this machine.\n"
        )
    skipped = [n for n in sizes if n > options["baseline_full_max_sps"]]
    if skipped:
        add(
            f"\nAbove {options['baseline_full_max_sps']:,} service principals the baseline runs only its first and "
            "regular polls (it has no change detection, so its no-change poll costs what its regular poll "
            "costs); `--baseline-full-max-sps` changes that.\n"
        )
    add("\n## Targets\n")
    add(
        _table(
            ["target", "measured", "met"],
            [
                [
                    t["name"],
                    t["measured"],
                    "not measured" if t["met"] is None else ("**yes**" if t["met"] else "**no**"),
                ]
                for t in results["targets"]
            ],
            "lll",
        )
    )
    add(
        "\nEach cell below reads `app / naive`; the factor in brackets is naive ÷ app (how many times fewer "
        "or faster the app is). *Naive* is the baseline in `bench/baseline.py`. The first column gives the "
        "tenant's service principals (those with jobs / jobs).\n"
    )
    add("\n## Polls\n")
    for scenario, title in SCENARIOS.items():
        if scenario == "discovery":
            table = discovery_table(results)
        elif scenario == "noChange":
            table = no_change_table(results)
        else:
            table = poll_table(results, scenario)
        if table:
            add(f"\n### {title}\n\n{table}")
    inline = inline_table(results)
    if inline:
        add(
            "\n### Fanned out or in one run (`WORK_INLINE_MAX_PRINCIPALS`)\n\n"
            "With the default `WORK_INLINE_MAX_PRINCIPALS` (400) a poll that must read more service principals "
            "is fanned out through the work queue. The polls above run with the default; when one fanned out, "
            "the poll's child process did its items itself before the clock stopped (as `python -m shared poll` "
            "does with no worker running: `shared.work.drain_own_poll`), so its time is the whole poll. Here the "
            "same polls of the same tenant state run again with `WORK_INLINE_MAX_PRINCIPALS` set high (the "
            "one-run path), app only, into their own tables.\n\n"
            "The two paths do not end at the same step. The harness polls through `shared.poll.poll_tenant`, "
            "which in one run leaves the alert step to its caller (`run_poll`, the timers' and the CLI's entry "
            "point), so one-run figures never include it; a fanned-out poll's last work item completes the record "
            "and runs the alert step itself (`shared/fanout.py`, `complete`), so fanned-out figures include it: "
            "its writes to `Alerts` (a lease and the evaluation) and its queries. Fanned-out polls also write "
            "their items' parts (`WorkItems`) and, when a discovery finds new principals (a first poll), each new "
            "principal twice (listed at dispatch, then with its job count by its item). Those writes are why a "
            "fanned-out poll that sees no change writes entities other than its `Polls` record.\n\n" + inline
        )
    fan = fanout_section(results)
    if fan:
        add(fan)
    elif results.get("fanoutError"):
        add(f"\n## Large tenants: work queue fan-out\n\nThe fan-out benchmark failed: `{results['fanoutError']}`\n")
    from bench.tenants_report import tenants_section  # it builds on this module's formatting

    many = tenants_section(results)
    if many:
        add(many)
    plog = provisioning_logs_section(results)
    if plog:
        add(plog)
    growth = growth_table(results)
    if growth:
        add(
            "\n## Growth with the tenant (each size against the next smaller one)\n\n"
            "A factor below the size factor grows less than linearly.\n\n" + growth
        )
    latency = latency_table(results)
    if latency:
        mult = options["history_multiplier"]
        add(
            f"\n## API latency, 1x and {mult}x stored history (N = {mult})\n\n"
            "Over real HTTP to `python -m shared serve` (uvicorn) on loopback, one request at a time on a keep-alive "
            "connection, whole body read. 1x is the history the first and regular polls stored; the Nx history "
            f"is grown by further polls ({3 * options['cycle_seconds'] // 60} min of emulator time apart) until the "
            f"stored runs reach {mult}x. The executions endpoint reads the job with the shortest schedule "
            "(default `top`, 100).\n\n" + latency
        )
        for n, size in _sizes(results):
            history = (size.get("api") or {}).get("history")
            if history:
                add(
                    f"\nAt {n:,} SPs the history took {history['polls']} polls ({num(history['seconds'])} s), "
                    f"storing {history['runsStored']:,} runs."
                )
        not_grown = [n for n, size in _sizes(results) if size.get("api") and not size["api"].get("Nx")]
        if not_grown and mult > 1:
            add(
                f"\nHistory is grown only at sizes up to `--history-max-sps` ({options['history_max_sps']:,}), "
                f"so not at {', '.join(f'{n:,}' for n in not_grown)} SPs: every stored run is several Table writes, "
                "and Azurite takes them one at a time (see Calibration), so growing 2,000 SPs to 10x takes about "
                "12 minutes on this machine. `--history-max-sps 2000` includes it."
            )
        add("\n")
    cold = cold_table(results)
    if cold:
        add(
            "\n## Cold start\n\n"
            "A fresh process times `import function_app`, then hands `GET /api/v1/summary` to the app's HTTP "
            "function (`http_app_func`) the way the Functions host does (an `azure.functions.HttpRequest` "
            "through its ASGI middleware), against the tables of the "
            f"{results['coldStart'].get('servicePrincipals', 0):,}-SP run; `bench/coldstart.py`. The second table "
            "times the same over real HTTP from spawning `python -m shared serve`.\n\n" + cold
        )
    add(
        "\n## How each figure is measured\n\n"
        "- **Graph requests**: the emulator's own counters (`stats()['requests']`, reset before each poll): "
        "top-level HTTP requests, retries included, a `$batch` counting once (its items are in *batch items*). "
        "Independent of the app's own counters.\n"
        "- **Table operations**: a counting TCP proxy in front of Azurite (`bench/table_counter.py`) parses "
        "every request the poll sends; each operation inside a `$batch` counts once (so *operations* ≥ *Table HTTP "
        "requests*). *Entities written* are upserts, inserts and merges; *data entities* exclude the poll record "
        "(`Polls`). The API server and the history-growing polls bypass the proxy.\n"
        "- **Poll time**: wall time around the poll call inside the poll's own process (`bench/child.py`), "
        "warm, as in a Functions worker that has polled before: the app's child first polls one pinned service "
        "principal into other tables (loading msgraph and every lazily imported module and code path), then "
        "waits while the harness resets its counters. The baseline's child imports its modules likewise. "
        "*process s* (details) is the whole child, spawn to exit, with Python start, imports and warm-up; "
        "the cold cost of the app's imports is under Cold start.\n"
        "- **Peak RSS**: the poll process's own high-water mark (VmHWM in `/proc/self/status`, read as it ends; "
        "not `wait4`'s `ru_maxrss`, which on Linux starts from the forking parent's RSS). *RSS growth during the "
        "poll* is that VmHWM minus its VmRSS just before the poll started (after the warm-up): what the poll "
        "itself added.\n"
        "- **Regular poll**: the emulator clock (frozen otherwise) is moved one cycle after the first poll, so "
        "runs finished in that cycle are new. **No-change poll**: the same poll again with the clock unmoved. "
        "Both implementations poll the same tenant state, each into its own tables (`TABLE_PREFIX`).\n"
        "- **Naive baseline** (`bench/baseline.py`): `httpx` straight to Graph, the service principals "
        "enumerated 999 a page, then one GET of `/synchronization/jobs` per service principal in sequence; "
        "`azure-data-tables` with one `upsert_entity` per job and per distinct run; a 429 waits its "
        "Retry-After; no change detection.\n"
    )
    add("\n## Every poll\n\n" + details_table(results))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(part.rstrip("\n") + "\n" for part in out))
