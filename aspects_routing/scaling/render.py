"""
Renderers of the scaling report: ``text`` (aligned tables for a terminal),
``markdown`` (for a ticket) and ``json`` (the stable schema documented in
docs/readme/report.md).

Text and markdown share one layout: the report is first turned into blocks
(headings, key/value lists, tables, lines), one function per section, and each
format writes the blocks its own way. Long tuples of numbers (per-minute counts)
become sparklines. JSON serialises the section dataclasses themselves.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from aspects_routing.scaling.report import SECTIONS, Report

FORMATS = ("text", "json", "markdown")
#: Version of the JSON schema; bumped only on an incompatible change.
SCHEMA_VERSION = 1

_SPARK = "▁▂▃▄▅▆▇█"
SECTION_TITLES = {
    "routing": "Routing",
    "throughput": "Throughput",
    "queues": "Backlog",
    "event_bus": "Event bus",
    "clickhouse": "ClickHouse",
    "services": "Ralph and Superset",
}


# ---------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses become objects, non-finite floats null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def as_dict(report: Report) -> dict[str, Any]:
    """The report as the documented JSON object."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": report.status,
        "generated_at": report.generated_at.isoformat(),
        "window_minutes": report.window_minutes,
        "elapsed_seconds": report.elapsed_seconds,
    }
    for name in SECTIONS:
        section = report.section(name)
        out[name] = {
            "status": section.status,
            "reason": section.reason,
            "elapsed_seconds": section.elapsed_seconds,
            "data": jsonable(section.data),
        }
    out["sizing"] = {
        "status": "ok" if report.sizing is not None else "unavailable",
        "reason": report.sizing_error,
        "data": jsonable(report.sizing),
    }
    out["recommendations"] = [jsonable(r) for r in report.recommendations]
    return out


def render_json(report: Report) -> str:
    """The report as indented JSON."""
    return json.dumps(as_dict(report), indent=2, sort_keys=False)


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Heading:
    text: str
    level: int  # 1: title, 2: section, 3: sub-part


@dataclass(frozen=True)
class Pairs:
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Lines:
    lines: tuple[str, ...]


def sparkline(values: Iterable[float]) -> str:
    """One block character per value, scaled between the smallest and largest."""
    values = [v or 0 for v in values]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        return _SPARK[0 if high == 0 else 3] * len(values)
    return "".join(_SPARK[min(len(_SPARK) - 1, int((v - low) / span * (len(_SPARK) - 1) + 0.5))] for v in values)


def fmt(value: Any) -> str:
    """A value as a short human string."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "never" if value > 0 else "-"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and len(value) > 8:
            return f"{sparkline(value)}  (min {fmt(min(value))}, max {fmt(max(value))})"
        return ", ".join(fmt(v) for v in value) or "-"
    return str(value)


def _section_blocks(report: Report, name: str) -> list:
    section = report.section(name)
    title = SECTION_TITLES[name]
    if section.status != "ok":
        return [Heading(title, 2), Lines((f"{section.status}: {section.reason}",))]
    return [Heading(title, 2), *_SECTION_BLOCKS[name](section.data)]


def _routing_blocks(routing) -> list:
    worker_names = {w.name: w for w in routing.workers or ()}
    blocks = [
        Pairs(
            (
                ("transport", routing.transport),
                ("configured queue", f"{fmt(routing.configured_queue)} (from {routing.configured_queue_source})"),
                ("broker", fmt(routing.broker) + (f" UNREACHABLE ({routing.broker_error})" if routing.broker_error else "")),
                ("patterns matching no task", fmt(routing.unmatched_patterns) if routing.unmatched_patterns else "none"),
            )
        ),
        Table(("task", "queue"), tuple((t.task, t.queue) for t in routing.tasks)),
    ]
    rows = []
    for queue in routing.queues:
        if queue.workers is None:
            consumers = f"unknown ({routing.workers_error})"
        elif not queue.workers:
            consumers = "NONE" + (" (critical)" if queue.unconsumed else "")
        else:
            consumers = ", ".join(
                f"{w} ({worker_names[w].concurrency} slots)" if worker_names[w].concurrency else w
                for w in queue.workers
            )
        rows.append((queue.queue, str(len(queue.tasks)), consumers))
    blocks.append(Table(("queue", "aspects tasks", "live consumers"), tuple(rows)))
    if routing.workers:
        blocks.append(
            Table(
                ("live worker", "slots", "queues"),
                tuple((w.name, fmt(w.concurrency), ", ".join(w.queues)) for w in routing.workers),
            )
        )
    elif routing.workers is not None:
        blocks.append(Lines(("no live worker answered the broadcast",)))
    return blocks


def _services_blocks(services) -> list:
    blocks: list = [
        Table(
            ("service", "url", "state", "status", "health body", "latency median ms", "latency max ms", "error"),
            tuple(
                (s.service, s.url, s.state, fmt(s.status_code), fmt(s.body), fmt(s.latency_ms_median),
                 fmt(s.latency_ms_max), fmt(s.error))
                for s in services.services
            ),
        )
    ]
    notes = [s.note for s in services.services if s.note]
    for s in services.services:
        if s.backend is not None:
            workers = ", ".join(s.backend.workers) or "none"
            notes.append(
                f"superset broker {s.backend.broker}: redis {'reachable' if s.backend.redis_reachable else 'unreachable'}"
                f", Celery workers answering: {workers}" + (f" ({s.backend.error})" if s.backend.error else "")
            )
    if notes:
        blocks.append(Lines(tuple(notes)))
    return blocks


def human_bytes(value: float | None) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover - unreachable, TiB is the last unit


def _measurement(measured, show) -> str:
    """A ClickHouse measurement: its shown value, or why it is unavailable."""
    if not measured.ok:
        return f"unavailable: {measured.unavailable}"
    return show(measured.value)


def _clickhouse_blocks(ch) -> list:
    def lag(value):
        shown = (
            "no xAPI event yet" if value.latest_event is None
            else f"{fmt(value.lag_seconds)} s (newest event {fmt(value.latest_event)})"
        )
        if value.future_rows:
            shown += (
                f"; {value.future_rows:,} row(s) dated in the future, up to {fmt(value.skew_seconds)} s ahead "
                f"(clock skew: left out of the lag)"
            )
        return shown

    def storage(value):
        return (
            f"{human_bytes(value.bytes_on_disk)} on disk, {value.rows:,} rows, {value.active_parts} active parts "
            f"in {value.partitions} partition(s), {value.replicas} replica(s)"
        )

    def projection(value):
        return (
            f"{human_bytes(value.projected_bytes)} per replica = {human_bytes(value.growth_bytes_per_day)}/day "
            f"({value.growth_rows_per_day:,.0f} rows/day over {value.days_measured} complete day(s)) "
            f"x {value.retention_days} days x {value.headroom:g} headroom; bytes from the {value.bytes_basis}"
        )

    def superset(value):
        p95 = "no queries" if value.p95_seconds is None else f"{fmt(value.p95_seconds)} s"
        return f"p95 {p95} over {value.queries} queries in the last {value.window_minutes} min"

    blocks = [
        Pairs(
            (
                ("server", f"{ch.dsn} (from {ch.source})"),
                ("xAPI table", f"{ch.database}.{ch.table}" + (f" on cluster {ch.cluster}" if ch.cluster else "")),
                ("version", _measurement(ch.server_version, str)),
                ("xAPI lag", _measurement(ch.lag, lag)),
                ("storage", _measurement(ch.storage, storage)),
                ("projected at retention", _measurement(ch.projection, projection)),
                ("max parts per partition", _measurement(ch.max_parts_per_partition, fmt)),
                ("delayed inserts", _measurement(ch.delayed_inserts, fmt)),
                ("pending distributed files", _measurement(ch.pending_distributed_files, fmt)),
                ("stuck replication tasks", _measurement(ch.stuck_replication_tasks, fmt)),
                ("Superset queries", _measurement(ch.superset_queries, superset)),
                ("measured in", f"{ch.seconds:.2f} s"),
            )
        ),
        Heading("rows per day (last 30 days, UTC)", 3),
    ]
    if ch.daily.ok:
        days = ch.daily.value
        blocks.append(Lines((f"{sparkline(d.rows for d in days)}  {days[0].day} .. {days[-1].day}",)))
        blocks.append(
            Table(("day", "rows", "compressed"), tuple((str(d.day), f"{d.rows:,}", human_bytes(d.compressed_bytes)) for d in days))
        )
    else:
        blocks.append(Lines((f"unavailable: {ch.daily.unavailable}",)))
    blocks.append(Heading("disks", 3))
    if ch.disks.ok:
        blocks.append(
            Table(
                ("host", "disk", "free", "total", "free %"),
                tuple(
                    (d.host, d.name, human_bytes(d.free_bytes), human_bytes(d.total_bytes),
                     "-" if d.free_ratio is None else f"{d.free_ratio * 100:.0f}")
                    for d in ch.disks.value
                ),
            )
        )
    else:
        blocks.append(Lines((f"unavailable: {ch.disks.unavailable}",)))
    return blocks


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{fmt(value)} s"


def _latency(lat) -> str:
    if not lat.count:
        return "-"
    return f"{fmt(lat.p50)} / {fmt(lat.p95)} / {fmt(lat.p99)}"


def _throughput_blocks(metrics) -> list:
    blocks = [
        Pairs(
            (
                ("metrics store", metrics.source),
                ("totals since the store was created",
                 f"published {metrics.totals.published:,}, finished {metrics.totals.finished:,}, "
                 f"failed {metrics.totals.failed:,}, retried {metrics.totals.retried:,}"),
                ("metric events dropped", fmt(metrics.dropped)),
                ("finished per minute, last hour", fmt(metrics.finished_per_minute)),
            )
        ),
        Table(
            ("window", "published/s", "started/s", "finished/s", "failed/s", "retried/s",
             "wait p50/p95/p99 s", "run p50/p95/p99 s", "run mean s"),
            tuple(
                (f"{w.minutes} min", fmt(w.rates.published), fmt(w.rates.started), fmt(w.rates.finished),
                 fmt(w.rates.failed), fmt(w.rates.retried), _latency(w.queue_wait), _latency(w.runtime),
                 fmt(w.runtime.mean))
                for w in metrics.windows
            ),
        ),
    ]
    longest = max(metrics.windows, key=lambda w: w.minutes)
    blocks.append(Heading(f"per task, last {longest.minutes} min", 3))
    blocks.append(
        Table(
            ("task", "queue", "published", "finished", "failed", "failure %", "retried", "wait p95 s",
             "run p95 s", "run mean s"),
            tuple(
                (t.task, t.queue, fmt(t.counts.published), fmt(t.counts.finished), fmt(t.counts.failed),
                 "-" if not t.counts.finished else f"{100 * t.counts.failed / t.counts.finished:.1f}",
                 fmt(t.counts.retried), fmt(t.queue_wait.p95), fmt(t.runtime.p95), fmt(t.runtime.mean))
                for t in longest.per_task
            ),
        )
    )
    return blocks


def _drain(value: float | None) -> str:
    if value is None:
        return "unknown"
    if math.isinf(value):
        return "never"
    if value == 0:
        return "empty"
    return f"{fmt(value)} s"


def _queues_blocks(backlog) -> list:
    rates = backlog.rates_source or f"unavailable ({backlog.rates_error})"
    return [
        Pairs(((f"rates over the last {backlog.trend_minutes} min from", rates),)),
        Table(
            ("queue", "aspects", "depth", "arrivals/s", "finishes/s", "trend/s", "time to drain"),
            tuple(
                (q.queue, fmt(q.aspects), fmt(q.depth) if q.depth is not None else f"unavailable: {q.error}",
                 fmt(q.arrival_per_second), fmt(q.finish_per_second),
                 "-" if q.trend_per_second is None else f"{q.trend_per_second:+.3g}", _drain(q.drain_seconds))
                for q in backlog.queues
            ),
        ),
    ]


def _event_bus_blocks(bus) -> list:
    lag = bus.lag
    blocks = [
        Pairs(
            (
                ("backend", f"{lag.backend} at {fmt(lag.location)}"),
                ("stream", f"{lag.stream} (topic {lag.topic})"),
                ("length", fmt(lag.length)),
                ("entries added", fmt(lag.entries_added)),
                ("xAPI consumer group", bus.consumer_group + ("" if bus.group_lag else " (does not exist yet)")),
            )
        ),
        Table(
            ("group", "lag", "pending", "consumers", "max idle ms", "skip-on-restart risk"),
            tuple(
                (g.name, fmt(g.lag) if g.lag is not None else "unknown",
                 fmt(g.pending) if g.pending is not None else "n/a", str(len(g.consumers)),
                 fmt(max((c.idle_ms for c in g.consumers), default=None)), ", ".join(g.skip_risks) or "none")
                for g in lag.groups
            ),
        ),
    ]
    if bus.producer:
        blocks.append(Heading("producer (tracking events sent to the bus)", 3))
        blocks.append(
            Table(
                ("window", "sent", "failed", "sent/s", "failed/s"),
                tuple((f"{p.minutes} min", fmt(p.sent), fmt(p.failed), fmt(p.sent_per_second),
                       fmt(p.failed_per_second)) for p in bus.producer),
            )
        )
    else:
        blocks.append(Lines((f"producer rates unavailable: {bus.producer_error}",)))
    return blocks


#: The layout of each section's data.
_SECTION_BLOCKS = {
    "routing": _routing_blocks,
    "throughput": _throughput_blocks,
    "queues": _queues_blocks,
    "event_bus": _event_bus_blocks,
    "clickhouse": _clickhouse_blocks,
    "services": _services_blocks,
}


def _sizing_blocks(report: Report) -> list:
    blocks: list = [Heading("Sizing model", 2)]
    if report.sizing is None:
        return blocks + [Lines((f"unavailable: {report.sizing_error}",))]
    sizing = report.sizing
    blocks.append(Pairs((("profile", f"{sizing.profile} ({sizing.profile_reason})"),)))
    blocks.append(Table(("input", "value", "unit", "source"), tuple(
        (i.name, fmt(i.value), i.unit, i.source) for i in sizing.inputs
    )))
    blocks.append(Table(("part", "how it was sized"), (
        ("workers", sizing.workers.explanation),
        ("ralph", sizing.ralph.explanation),
        ("clickhouse", sizing.clickhouse.explanation),
        ("superset", sizing.superset.explanation),
        ("batching", sizing.batching.reason),
    )))
    return blocks


def _recommendation_blocks(report: Report) -> list:
    blocks: list = [Heading("Recommendations", 2)]
    if not report.recommendations:
        return blocks + [Lines(("none: every measured stage keeps up.",))]
    for number, rec in enumerate(report.recommendations, 1):
        blocks.append(Heading(f"{number}. [{rec.severity.upper()}] {rec.area}: {rec.title}", 3))
        lines = [f"why: {rec.reasoning}"]
        lines += [f"input: {i.name} = {fmt(i.value)}{' ' + i.unit if i.unit else ''} ({i.source})" for i in rec.inputs]
        lines += [f"change ({c.kind}) {c.target}: {c.value}" for c in rec.changes]
        blocks.append(Lines(tuple(lines)))
    return blocks


def blocks(report: Report) -> list:
    """The whole report as blocks, in reading order."""
    out: list = [
        Heading("Aspects scaling report", 1),
        Pairs(
            (
                ("status", report.status.upper()),
                ("generated at", fmt(report.generated_at)),
                ("window", f"{report.window_minutes} min"),
                ("took", f"{report.elapsed_seconds:.2f} s"),
            )
        ),
    ]
    for name in SECTIONS:
        out.extend(_section_blocks(report, name))
    out.extend(_sizing_blocks(report))
    out.extend(_recommendation_blocks(report))
    return out


# ---------------------------------------------------------------- text


def _text_table(table: Table, indent: str) -> list[str]:
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    def line(cells):
        return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths))).rstrip()
    out = [line(table.headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in table.rows)
    return out


def render_text(report: Report) -> str:
    """The report as aligned plain text for a terminal."""
    out: list[str] = []
    for block in blocks(report):
        if isinstance(block, Heading):
            if block.level == 1:
                out += [block.text, "=" * len(block.text)]
            elif block.level == 2:
                out += ["", block.text.upper(), "-" * len(block.text)]
            else:
                out += ["", f"  {block.text}"]
        elif isinstance(block, Pairs):
            width = max(len(k) for k, _v in block.items)
            out += [f"  {k.ljust(width)}  {v}" for k, v in block.items]
        elif isinstance(block, Table):
            out += _text_table(block, "    ") if block.rows else ["    (none)"]
        else:
            out += [f"    {line}" for line in block.lines]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured markdown."""
    out: list[str] = []
    for block in blocks(report):
        if isinstance(block, Heading):
            out += ["", f"{'#' * min(block.level, 4)} {block.text}", ""]
        elif isinstance(block, Pairs):
            out += [f"- **{_md_cell(k)}**: {_md_cell(v)}" for k, v in block.items] + [""]
        elif isinstance(block, Table):
            if not block.rows:
                out.append("_none_")
                continue
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "---|" * len(block.headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        else:
            out += [f"- {_md_cell(line)}" for line in block.lines]
    return "\n".join(out).lstrip() + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}


def render(report: Report, fmt_name: str) -> str:
    """
    Render ``report`` as ``fmt_name`` (one of :data:`FORMATS`).

    Sections hold only redacted URLs and reasons mapped by :mod:`aspects_routing.redaction`,
    so the output is not scrubbed as a whole (that would change queue names and JSON keys
    that happen to contain a password or a user name).
    """
    return RENDERERS[fmt_name](report)
