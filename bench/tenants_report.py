"""The many-tenants section of docs/benchmarks.md and its target, from bench/tenants.py's figures.

Each worker count is polled in several rounds on a shared machine: the section shows each
count's median and every run beside it, and the speed-up is one median over another, both
from the same run of the benchmark.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from bench.report import _table, num, ratio, times

GROWTH_AT_2, PLATEAU_AT_4 = 1.2, 0.9  # as the fan-out sweep's target (bench/report.py)
CPU_ROLES = ("app", "azuriteTable", "azuriteQueue", "emulator")  # bench/tenants.py's cpuSeconds


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def by_workers(tenants: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The regular polls by worker count (0: `poll` alone), in the order they ran."""
    found: dict[int, list[dict[str, Any]]] = {}
    for measured in tenants.get("regular", []):
        found.setdefault(int(measured["workers"]), []).append(measured)
    return found


def throughput(tenants: dict[str, Any]) -> dict[int, float]:
    """Median tenants per second by worker count, over the runs where every tenant's poll completed."""
    rates: dict[int, float] = {}
    for workers, runs in by_workers(tenants).items():
        median = _median([run["tenantsPerSecond"] for run in runs if run.get("tenantsPerSecond")])
        if median is not None:
            rates[workers] = median
    return rates


def target(tenants: dict[str, Any]) -> dict[str, Any]:
    """Regular-poll throughput grows with workers: 2 at least 1.2x of 1, and 4 no less than 0.9x of 2
    (on a 2-core machine more than 2 processes cannot be expected to add throughput)."""
    name = (
        f"A regular poll of {tenants['tenants']} tenants through the queue: throughput grows with workers "
        f"(2 workers ≥ {GROWTH_AT_2}x of 1; 4 workers ≥ {PLATEAU_AT_4}x of 2)"
    )
    rate = {n: r for n, r in throughput(tenants).items() if n > 0}
    if 1 not in rate or len(rate) < 2:
        return {"name": name, "measured": "not measured", "met": None}
    parts = [f"1 worker {num(rate[1])} tenants/s"] + [
        f"{n} workers {times(ratio(r, rate[1]))} of 1 ({num(r)} tenants/s)" for n, r in sorted(rate.items()) if n != 1
    ]
    met = True
    if 2 in rate:
        met = rate[2] >= GROWTH_AT_2 * rate[1]
        if 4 in rate:
            met = met and rate[4] >= PLATEAU_AT_4 * rate[2]
    else:
        met = all(r > rate[1] for n, r in rate.items() if n > 1)
    return {"name": name, "measured": f"medians of {tenants.get('repeats')} rounds: " + "; ".join(parts), "met": met}


def _label(workers: int) -> str:
    return f"{workers} worker{'s' if workers != 1 else ''}" if workers else "poll alone"


def _spread(run: dict[str, Any]) -> str:
    """The tenant polls each worker process did, e.g. 7+7+6."""
    counts: list[int] = []
    for tally in run.get("workerTallies", []):
        counts += [int(one.get("items", 0)) for one in tally.get("processes", [tally])]
    return "+".join(str(count) for count in counts) if counts else "–"


def _summary_row(workers: int, runs: list[dict[str, Any]], base: float | None) -> list[str]:
    rate = _median([run["tenantsPerSecond"] for run in runs if run.get("tenantsPerSecond")])
    tenants = runs[0]["tenants"]
    graph = _median([run["graphRequests"] for run in runs])
    return [
        _label(workers),
        str(len(runs)),
        f"{sum(run['tenantsSucceeded'] for run in runs)} / {sum(run['tenants'] for run in runs)}",
        num(_median([run["secondsFromDispatch"] for run in runs if run.get("secondsFromDispatch") is not None])),
        ", ".join(num(run.get("secondsFromDispatch")) for run in runs),
        num(_median([run["seconds"] for run in runs if run.get("seconds") is not None])),
        num(rate),
        num(_median([run["jobsPerSecond"] for run in runs if run.get("jobsPerSecond")])),
        times(ratio(rate, base)) if base and workers != 1 else "–",
        f"{num(graph)} / {num(ratio(graph, tenants))}",
        num(_median([run["tableOperations"] for run in runs])),
        num(_median([run["entitiesWritten"] for run in runs])),
        f"{sum(run['itemsFailed'] for run in runs)} ({sum(run['workRuns'] for run in runs)} runs)" if workers else "–",
        " / ".join(num(_median([(run.get("cpuSeconds") or {}).get(role, 0.0) for run in runs])) for role in CPU_ROLES),
        num(_median([(run.get("foreignLoad") or {}).get("meanCores") or 0.0 for run in runs])),
    ]


def _run_row(run: dict[str, Any]) -> list[str]:
    statuses = ", ".join(f"{status} {count}" for status, count in run["statuses"].items())
    low, high = run.get("jobsReadPerTenant") or [None, None]
    return [
        "first sweep" if run["label"] == "first sweep" else _label(int(run["workers"])),
        str(run.get("repeat", 0) + 1) if run["label"] != "first sweep" else "–",
        num(run.get("secondsFromDispatch")),
        num(run.get("seconds")),
        num(run.get("tenantsPerSecond")),
        f"{num(run['jobsRead'])} ({num(low)}–{num(high)})",
        num(run.get("jobsChanged")),
        num(run.get("runsStored")),
        f"{num(run['graphRequests'])} / {num(run.get('recordGraphRequests'))}",
        num(run.get("graphBatchItems")),
        num(run["tableOperations"]),
        _spread(run),
        str(run.get("itemsFailed", 0)),
        " / ".join(num((run.get("cpuSeconds") or {}).get(role)) for role in CPU_ROLES),
        num((run.get("foreignLoad") or {}).get("meanCores")),
        statuses,
    ]


def _cpu(runs: list[dict[str, Any]], role: str) -> float | None:
    return _median([(run.get("cpuSeconds") or {}).get(role, 0.0) for run in runs])


def _growth(
    results: dict[str, Any], tenants: dict[str, Any], rate: dict[int, float], groups: dict[int, list[dict[str, Any]]]
) -> str:
    """What the speed-up is, said plainly, and what the machine had to share (measured, not assumed)."""
    machine = results["machine"]
    run = tenants.get("run") or {}
    load = run.get("foreignLoad") or machine.get("foreignLoad") or {}
    counts = sorted(n for n in rate if n > 0)
    if 1 not in rate or len(counts) < 2:
        return ""
    growth = ", ".join(f"{n} workers {times(ratio(rate[n], rate[1]))}" for n in counts if n != 1)
    flat = [(m, n) for m, n in itertools.pairwise(counts) if rate[n] < 1.1 * rate[m]]
    if not flat:
        verdict = "It grows with every added worker."
    else:
        verdict = (
            "**It does not grow** (less than 1.1x) from "
            + " nor from ".join(f"{m} to {n} workers" for m, n in flat)
            + "."
        )
    apps = ", ".join(f"{num(_cpu(groups[n], 'app'))} CPU s with {_label(n)}" for n in counts)
    everything = {
        n: sum(_cpu(groups[n], role) or 0.0 for role in (*CPU_ROLES, "harness")) for n in counts if groups.get(n)
    }
    seconds = {n: _median([m["secondsFromDispatch"] for m in groups[n] if m["secondsFromDispatch"]]) for n in counts}
    each = ", ".join(
        f"about {num(everything[n])} CPU s for a poll of {num(seconds[n])} s with {_label(n)}" for n in counts
    )
    best = {n: min(groups[n], key=lambda m: m.get("secondsFromDispatch") or float("inf")) for n in counts}
    fastest = ", ".join(
        f"{_label(n)} {num(m['secondsFromDispatch'])} s ({num((m.get('foreignLoad') or {}).get('meanCores'))})"
        for n, m in best.items()
    )
    best_growth = ", ".join(
        f"{times(ratio(best[1]['secondsFromDispatch'], best[n]['secondsFromDispatch']))} with {_label(n)}"
        for n in counts
        if n != 1
    )
    regular = tenants.get("regular", [])
    azurite = (
        f"Azurite's Table process took {num(regular[0]['cpuSeconds']['azuriteTable'])} CPU s in the first "
        f"regular poll and {num(regular[-1]['cpuSeconds']['azuriteTable'])} s in the last, for about the same "
        "operations: it keeps its tables in memory and saves them whole to disk every 5 s (LokiJS autosave), "
        "so it costs more as the polls add rows; "
        if regular and all(m.get("cpuSeconds") for m in (regular[0], regular[-1]))
        else ""
    )
    return (
        f"\nThroughput against 1 worker, medians measured in the same run: {growth}. {verdict}\n\n"
        f"Why: the machine has {machine.get('cores')} cores, and a regular poll of these tenants needs nearly "
        f"all of them. Per poll (medians) the app's processes used {apps} (each process's start, imports, "
        f"clients and queue polling add to it), Azurite's Table process {num(_cpu(groups[1], 'azuriteTable'))} "
        f"s and the emulator {num(_cpu(groups[1], 'emulator'))} s with 1 worker: "
        + each
        + f"; other sessions' tests used {load.get('meanCores', 0):.2f} cores on average over the run "
        f"({load.get('peakCores', 0):.2f} at most). With 1 worker the app is one Python process, on CPU for "
        "most of the poll (a worker already polls several tenants at once, host.json's `batchSize`, so "
        "Graph's latency overlaps and is not what it waits on); a second process can use the second core only "
        "when nothing else does, and Azurite, the emulator and the other sessions want it too. "
        + azurite
        + "the order of the counts alternates between rounds so that this drift falls on each alike. The "
        "medians therefore follow the machine's other load more than the worker count. In the runs with the "
        f"least other load the added workers did help: the fastest run of each count (other processes' cores "
        f"in brackets) was {fastest}, so {best_growth} of 1 worker's best: about what a second core allows, "
        "and nothing more from 4 processes on 2 cores. On the platform each instance has its own CPU and "
        "Azure Table Storage is not a local Node process; these figures say that on this machine the CPU, "
        "not the number of workers, was the limit.\n"
    )


def tenants_section(results: dict[str, Any]) -> str | None:
    tenants = results.get("tenants")
    if not tenants:
        if results.get("tenantsError"):
            return f"\n## Many tenants\n\nThe many-tenants benchmark failed: `{results['tenantsError']}`\n"
        return None
    run = tenants.get("run") or {}
    options = results["options"]
    latency = run.get("latencyMs", options["latency_ms"])
    cycle = run.get("cycleSeconds", options["cycle_seconds"])
    count, jobs = tenants["tenants"], tenants["jobsPerTenant"]
    held, principals = tenants["jobs"], tenants["servicePrincipals"]
    groups = by_workers(tenants)
    rate = throughput(tenants)
    base = rate.get(1)
    out = [
        f"\n## Many tenants: {count} tenants × {jobs} jobs, a regular poll through the work queue\n",
        f"{count} tenants, each a generated tenant cut at the fewest service principals that hold {jobs} jobs "
        f"({min(held)}–{max(held)} jobs; {min(principals):,}–{max(principals):,} service principals, "
        f"{tenants['jobRatio']:.0%} of them with jobs; {sum(held):,} jobs in all), served by one Graph emulator: "
        f"the home tenant (`AZURE_TENANT_ID`) at its root, the other {count - 1} (`TENANTS`) under their own "
        f"path, each with its own clock, counters and {latency} ms of latency per request. Everything runs "
        "through the app's command line (`bench/tenants.py`): `python -m shared poll --dispatch-only` sends one "
        "`tenantPoll` message per tenant, and `python -m shared work --processes N "
        f"--idle-seconds {num(tenants.get('idleSeconds'))}`, started {num(tenants.get('warmWorkers'))} s "
        "before (its Python start and imports done, as on running instances), polls each tenant a message "
        "takes (host.json's `batchSize` messages at a time per process). *Poll alone* is "
        "`python -m shared poll` without `--dispatch-only`: it does the tenants' messages itself, in-process.\n",
        f"A first poll of every tenant (a discovery: every principal read, every job and run stored) comes "
        f"first, shown apart; then {tenants.get('repeats')} rounds, each a regular poll with every worker count "
        "in turn (the order reversed every other round) and one with poll alone, every tenant's clock moved "
        f"{cycle // 60} min before each, so each poll finds about the same number of new runs. A regular poll "
        "reads only the principals known to have jobs, 20 to a `$batch`.\n",
        "*s from dispatch* runs from the moment the dispatch made the messages (every tenant record's "
        "`startedAt`) to the last tenant record's `endedAt`: a tenant's alert step, which follows its record, "
        "is not in it; *s from spawn* also holds the dispatch command's Python start. Throughput is tenants "
        "(or jobs read) ÷ *s from dispatch*; each figure is the median of the rounds, and *vs 1 worker* is one "
        "median over the other. Graph requests: the emulator's count, summed over the tenants, and per "
        "tenant. Table operations: the counting proxy, dispatch and workers together (queue operations go "
        "straight to Azurite and are not counted). *CPU s*: CPU seconds each process used from the workers' "
        "start to their exit (their start and imports, the idle wait after the last message and the queue "
        "polling meanwhile included): *app* is the app's commands (dispatch and workers, from getrusage), the "
        "others the long-running servers (from /proc); *other processes' cores*: other sessions' CPU on the "
        "machine meanwhile, from /proc (anything above ~0.1 means the times are pessimistic).\n",
        _table(
            [
                "regular poll",
                "rounds",
                "tenant polls succeeded",
                "s from dispatch (median)",
                "each round",
                "s from spawn",
                "tenants / s",
                "jobs / s",
                "vs 1 worker",
                "Graph requests: total / per tenant",
                "Table operations",
                "entities written",
                "item tries failed (work runs)",
                "CPU s: app / Azurite Table / Azurite Queue / emulator",
                "other processes' cores",
            ],
            [_summary_row(n, groups[n], base) for n in sorted(groups, key=lambda n: (n == 0, n))],
            "lrrrlrrrrrrrrrr",
        ),
    ]
    out.append(_growth(results, tenants, rate, groups))
    out.append(
        "\nEvery run (*tenants per process*: the tenant polls each worker process did; *jobs read*: all "
        "tenants, in brackets the fewest and most of one tenant; Graph requests: the emulator's / the "
        "records' own):\n\n"
        + _table(
            [
                "poll",
                "round",
                "s from dispatch",
                "s from spawn",
                "tenants / s",
                "jobs read",
                "jobs changed",
                "runs stored",
                "Graph requests",
                "batch items",
                "Table operations",
                "tenants per process",
                "item tries failed",
                "CPU s: app / Table / Queue / emulator",
                "other processes' cores",
                "tenant polls",
            ],
            [_run_row(m) for m in [tenants["first"], *tenants.get("regular", [])]],
            "lr" + "r" * 13 + "l",
        )
    )
    if run:
        calibration = run.get("calibration") or {}
        out.append(
            f"\nThese figures come from a separate run: `{run['command']}`, {run['minutes']:.1f} min, "
            f"{run['date']}, app code at commit {run.get('commit')}; one Azurite upsert took "
            f"{num(calibration.get('tableUpsertMs'))} ms in it (see Calibration above for this page's main run).\n"
        )
    return "\n".join(out)
