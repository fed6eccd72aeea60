"""One PNG per benchmark (matplotlib, Agg), in docs/img/bench-<name>.png, drawn from the result JSON alone."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from bench.harness import REPO  # noqa: E402

IMAGES = REPO / "docs" / "img"
OURS, PARTMAN, PLAIN, OTHER, BASE = "#1f6fb4", "#d9822b", "#7a7a7a", "#9bbbd9", "#3c9d5d"


def image_path(name: str):
    return IMAGES / f"bench-{name.replace('_', '-')}.png"


def _errors(entries: list[dict], scale: float = 1.0):
    """Error bars from the min-max spread around the median."""
    return [[(e["median"] - e["min"]) * scale for e in entries], [(e["max"] - e["median"]) * scale for e in entries]]


def number(value: float) -> str:
    """Three significant digits, without exponents."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _bars(axis, labels, entries, colors, unit_scale=1.0, log=False, unit=""):
    """Horizontal bars of medians with min-max whiskers, the median written beside each bar."""
    positions = list(range(len(labels)))
    medians = [entry["median"] * unit_scale for entry in entries]
    axis.barh(positions, medians, xerr=_errors(entries, unit_scale), color=colors, capsize=3)
    axis.set_yticks(positions, labels)
    axis.invert_yaxis()
    highest = max(entry["max"] * unit_scale for entry in entries)
    if log:
        axis.set_xscale("log")
        axis.set_xlim(right=highest * 6)
    else:
        axis.set_xlim(0, highest * 1.3)
    for position, entry in zip(positions, entries):
        axis.annotate(number(entry["median"] * unit_scale) + unit, (entry["max"] * unit_scale, position),
                      xytext=(5, -3), textcoords="offset points", fontsize=8)
    axis.grid(axis="x", alpha=0.3)


def noop_maintenance(result: dict, figure) -> None:
    time_axis, trips_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    sizes = [entry["partitions"] for entry in result["sizes"]]
    series = (("ours_process", "ours: runner process", OURS, "-"),
              ("ours_engine", "ours: engine in-process", OURS, ":"),
              ("partman_process", "pg_partman: psql process", PARTMAN, "-"),
              ("partman_call", "pg_partman: run_maintenance() call", PARTMAN, ":"),
              ("ours_startup", "ours: interpreter start + imports", PLAIN, "--"))
    for key, label, color, style in series:
        entries = [entry[key] for entry in result["sizes"]]
        time_axis.errorbar(sizes, [e["median"] * 1000 for e in entries], yerr=_errors(entries, 1000), label=label,
                           color=color, linestyle=style, marker="o", capsize=3)
    time_axis.set_xscale("log")
    time_axis.set_yscale("log")
    time_axis.set_xticks(sizes, [f"{size:,}" for size in sizes])
    time_axis.set_xlabel("daily partitions in the set")
    time_axis.set_ylabel("time per pass, ms (median, min-max)")
    time_axis.legend(fontsize=7)
    time_axis.grid(alpha=0.3)
    time_axis.set_title("time", fontsize=10)
    width = 0.27
    for offset, (label, values, color) in enumerate((
            ("ours: round trips = statements", [e["ours_process"]["round_trips"][-1] for e in result["sizes"]], OURS),
            ("pg_partman: round trips", [e["partman_process"]["round_trips"][-1] for e in result["sizes"]], PARTMAN),
            ("pg_partman: statements incl. PL/pgSQL",
             [e["partman_process"]["statements"][-1] for e in result["sizes"]], OTHER))):
        positions = [index + (offset - 1) * width for index in range(len(sizes))]
        trips_axis.bar(positions, values, width, label=label, color=color)
        for position, value in zip(positions, values):
            trips_axis.annotate(str(value), (position, value), ha="center", va="bottom", fontsize=7)
    trips_axis.set_xticks(range(len(sizes)), [f"{size:,}" for size in sizes])
    trips_axis.set_xlabel("daily partitions in the set")
    trips_axis.set_ylabel("per pass (pg_stat_statements)")
    trips_axis.legend(fontsize=7, loc="upper left")
    trips_axis.set_ylim(0, max(e["partman_process"]["statements"][-1] for e in result["sizes"]) * 1.35)
    trips_axis.set_title("statements sent and executed", fontsize=10)


def create_partitions(result: dict, figure) -> None:
    axis = figure.subplots()
    labels = {"ours": "ours: runner, new set (PARTITION OF)", "ours_live": "ours: runner, live set (LIKE + ATTACH)",
              "plain_one_transaction":
              "plain SQL, one transaction (the floor)", "plain_autocommit": "plain SQL, one transaction each",
              "partman": "pg_partman create_parent"}
    colors = {"ours": OURS, "ours_live": OURS, "plain_one_transaction": PLAIN, "plain_autocommit": OTHER,
              "partman": PARTMAN}
    names = list(labels)
    entries = [result["contenders"][name] for name in names]
    _bars(axis, [labels[name] for name in names], entries, [colors[name] for name in names],
          unit=" s")
    floor = result["contenders"]["plain_one_transaction"]["median"]
    target = result["targets"][0]["limit"]
    axis.axvline(floor * target, color="black", linestyle="--", linewidth=1)
    axis.annotate(f"target: {target}x the floor", (floor * target, len(names) - 0.5), xytext=(4, 0),
                  textcoords="offset points", fontsize=8)
    axis.set_xlabel(f"seconds to create {result['partitions']:,} daily partitions (median, min-max)")
    for index, name in enumerate(names):
        axis.annotate(f"{result['ratios_to_floor'][name]['median']:.2f}x", (0, index), xytext=(4, 8),
                      textcoords="offset points", fontsize=8, color="white", fontweight="bold")


IMPACT_LABELS = {"baseline": "no DDL", "ours": "ours", "plain": "plain SQL", "partman": "pg_partman"}
IMPACT_COLORS = {"baseline": BASE, "ours": OURS, "plain": PLAIN, "partman": PARTMAN}
IMPACT_TITLES = {"create": "creating next month's partition\n(plain SQL: CREATE TABLE ... PARTITION OF)",
                 "retention": "retention: the 2 oldest months go\n"
                              "(ours: DETACH ... CONCURRENTLY; plain SQL: DROP TABLE)"}


def production_impact(result: dict, figure) -> None:
    axes = figure.subplots(2, 2, gridspec_kw={"height_ratios": [3, 2]})
    scenarios = result["scenarios"]
    for column, job in enumerate(("create", "retention")):
        names = ["baseline"] + [f"{who}_{job}" for who in ("plain", "partman", "ours")]
        timeline = axes[0][column]
        for name in names:
            who = name.split("_")[0]
            points = scenarios[name]["timeline"]
            timeline.step([p[0] for p in points], [p[1] for p in points], where="post", label=IMPACT_LABELS[who],
                          color=IMPACT_COLORS[who],
                          linewidth=1.6 if who == "ours" else 1.1)
        timeline.set_yscale("log")
        timeline.set_xlabel("seconds since the DDL started (the reader's transaction is open until about 2.5 s)")
        timeline.set_ylabel("worst insert latency per 50 ms, ms")
        timeline.set_title(IMPACT_TITLES[job], fontsize=10)
        timeline.legend(fontsize=8, loc="upper right")
        timeline.grid(alpha=0.3)
        bars = axes[1][column]
        names = ["baseline"] + [f"{who}_{job}" for who in ("ours", "plain", "partman")]
        whos = [name.split("_")[0] for name in names]
        _bars(bars, [IMPACT_LABELS[who] for who in whos], [scenarios[name]["p99_ms"] for name in names],
              [IMPACT_COLORS[who] for who in whos], log=True, unit=" ms")
        limit = scenarios["baseline"]["p99_ms"]["median"] * result["targets"][0]["limit"]
        bars.axvline(limit, color="black", linestyle="--", linewidth=1)
        bars.set_xlabel("writer p99 latency, ms (median and min-max of repetitions); dashed: 2x no DDL")


def brin_refresh(result: dict, figure) -> None:
    time_axis, stall_axis = figure.subplots(1, 2)
    operations = result["operations"]
    labels = {"ours_engine": "ours: summarize (engine)", "ours_runner": "ours: runner `run brin` process",
              "reindex": "REINDEX INDEX", "reindex_concurrently": "REINDEX INDEX CONCURRENTLY"}
    colors = {"ours_engine": OURS, "ours_runner": OTHER, "reindex": PLAIN, "reindex_concurrently": PARTMAN}
    names = list(labels)
    _bars(time_axis, [labels[n] for n in names], [operations[n]["seconds"] for n in names],
          [colors[n] for n in names], log=True, unit=" s")
    limit = operations["reindex"]["seconds"]["median"] * result["targets"][0]["limit"]
    time_axis.axvline(limit, color="black", linestyle="--", linewidth=1)
    time_axis.set_xlabel("seconds (median, min-max); dashed: 0.1x REINDEX")
    time_axis.set_title(f"time, {result['rows'] / 1e6:.0f} million rows", fontsize=10)
    names = ["baseline"] + names
    labels["baseline"] = "nothing running"
    colors["baseline"] = BASE
    _bars(stall_axis, [labels[n] for n in names], [operations[n]["max_ms"] for n in names],
          [colors[n] for n in names], log=True, unit=" ms")
    stall_axis.set_xlabel("writer max insert latency during the operation, ms")
    stall_axis.set_title("writer stall", fontsize=10)
    stall_axis.set_yticks([])


def ansible_overhead(result: dict, figure) -> None:
    task_axis, fleet_axis = figure.subplots(1, 2)
    task = result["task"]
    _bars(task_axis, ["ansible.builtin.ping", "postgres_partition (no-op)"], [task["ping"], task["partition"]],
          [PLAIN, OURS], unit=" s")
    task_axis.set_xlabel("seconds per task on one host (median, min-max)")
    task_axis.set_title(f"per task: {task['ratio']['median']:.2f}x ping", fontsize=10)
    hosts = [entry["hosts"] for entry in result["fleet"]]
    for kind, color, label in (("ping", PLAIN, "ping"), ("partition", OURS, "postgres_partition (no-op)")):
        entries = [entry[f"{kind}_per_host"] for entry in result["fleet"]]
        fleet_axis.errorbar(hosts, [e["median"] for e in entries], yerr=_errors(entries), label=label, color=color,
                            marker="o", capsize=3)
    fleet_axis.set_xscale("log")
    fleet_axis.set_xticks(hosts, [str(h) for h in hosts])
    fleet_axis.set_xlabel(f"hosts (forks {result['forks']})")
    fleet_axis.set_ylabel("playbook wall time per host, s")
    fleet_axis.set_ylim(bottom=0)
    fleet_axis.legend(fontsize=8)
    fleet_axis.grid(alpha=0.3)
    fleet_axis.set_title("fleet: one-task playbook, wall time / hosts", fontsize=10)


def _by_hosts(axis, ylabel: str, title: str) -> None:
    axis.set_xlabel("hosts (10 tables each)")
    axis.set_ylabel(ylabel)
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    axis.set_title(title, fontsize=10)


def fleet_report(result: dict, figure) -> None:
    time_axis, size_axis = figure.subplots(1, 2)
    hosts = [entry["hosts"] for entry in result["sizes"]]
    for key, color, label in (("render", OURS, "partition_report (judge + render)"),
                              ("json_dumps", PLAIN, "json.dumps of the facts (baseline)")):
        entries = [entry[key] for entry in result["sizes"]]
        time_axis.errorbar(hosts, [e["median"] for e in entries], yerr=_errors(entries), label=label, color=color,
                           marker="o", capsize=3)
    _by_hosts(time_axis, "seconds (median, min-max)", "time")
    for key, color, label in (("html_bytes", OURS, "the HTML page"), ("json_bytes", PLAIN, "the facts as JSON")):
        size_axis.plot(hosts, [entry[key] / 1e6 for entry in result["sizes"]], label=label, color=color, marker="o")
    _by_hosts(size_axis, "MB", "size")


def nightly_pass(result: dict, figure) -> None:
    time_axis, parts_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    situations = result["situations"]
    titles = {"new_day": "a new day: 55 to create", "noop": "nothing to do"}
    series = (("ours_process", "ours: runner process", OURS), ("ours_engine", "ours: engine in-process", OTHER),
              ("partman_process", "pg_partman: psql run_maintenance()", PARTMAN))
    labels, entries, colors = [], [], []
    for situation, entry in situations.items():
        for key, label, color in series:
            labels.append(f"{titles[situation]}\n{label}")
            entries.append(entry[key])
            colors.append(color)
    _bars(time_axis, labels, entries, colors, unit=" s")
    time_axis.tick_params(axis="y", labelsize=7)
    time_axis.set_xlabel("seconds per pass over 55 tables (median, min-max)")
    new_day = situations["new_day"]["ratio_process"]["median"]
    time_axis.set_title(f"time: new day {new_day:.2f}x pg_partman (target {result['targets'][0]['limit']}x)",
                        fontsize=10)
    breakdown = result["where_time_goes"]
    ours, partman = breakdown["ours_process"], breakdown["partman_process"]
    other = max(ours["wall_seconds"] - ours["client_cpu_seconds"] - ours["server_seconds"], 0)
    parts = (("process CPU", [ours["client_cpu_seconds"], partman["client_cpu_seconds"]], PLAIN),
             ("server: statements' execution", [ours["server_seconds"], partman["server_seconds"]], BASE),
             ("neither: hand-overs, connection, parse", [other, max(partman["wall_seconds"] - partman["server_seconds"]
                                                                    - partman["client_cpu_seconds"], 0)], OTHER))
    left = [0.0, 0.0]
    for label, values, color in parts:
        parts_axis.barh([0, 1], values, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, values)]
    parts_axis.set_yticks([0, 1], ["ours: runner", "pg_partman: psql"])
    parts_axis.invert_yaxis()
    parts_axis.set_xlabel("seconds of one more new-day pass")
    parts_axis.legend(fontsize=7, loc="upper right")
    parts_axis.set_title("where the time goes", fontsize=10)
    parts_axis.grid(axis="x", alpha=0.3)


def drain(result: dict, figure) -> None:
    time_axis, latency_axis = figure.subplots(1, 2)
    names = ["ours", "floor", "partman"]
    labels = {"ours": "ours (drain)", "floor": "floor (SQL per month)", "partman": "pg_partman"}
    colors = {"ours": OURS, "floor": PLAIN, "partman": PARTMAN, "baseline": BASE}
    _bars(time_axis, [labels[n] for n in names], [result["contenders"][n]["seconds"] for n in names],
          [colors[n] for n in names], unit=" s")
    time_axis.set_xlabel(f"seconds to move {result['rows']:,} rows (median, min-max)")
    names = ["baseline"] + names
    labels["baseline"] = "no drain"
    _bars(latency_axis, [labels[n] for n in names], [result["contenders"][n]["p99_ms"] for n in names],
          [colors[n] for n in names], unit=" ms", log=True)
    latency_axis.set_xlabel("writer p99 latency, ms (median, min-max; log scale)")


DRAW = {"noop_maintenance": (noop_maintenance, (11, 4.5)), "create_partitions": (create_partitions, (9, 3.6)),
        "production_impact": (production_impact, (13, 8.5)), "brin_refresh": (brin_refresh, (12, 4)),
        "ansible_overhead": (ansible_overhead, (11, 4)), "fleet_report": (fleet_report, (11, 4)),
        "nightly_pass": (nightly_pass, (12, 4.8)), "drain": (drain, (12, 3.6))}


def draw(result: dict) -> None:
    function, size = DRAW[result["name"]]
    figure = plt.figure(figsize=size, dpi=110, layout="constrained")
    function(result, figure)
    machine = result["environment"]
    figure.suptitle(f"{result['title']} ({result['repetitions']} repetitions; {machine['cpus']} CPUs, "
                    f"PostgreSQL {machine['postgresql'].split()[0]})", fontsize=11)
    IMAGES.mkdir(parents=True, exist_ok=True)
    figure.savefig(image_path(result["name"]))
    plt.close(figure)
