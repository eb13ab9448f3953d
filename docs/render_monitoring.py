"""
Draw ``docs/monitoring-overview.png`` from series a real Prometheus recorded.

The series come from ``tests/test_monitoring_prometheus.py`` run with
``ASPECTS_MONITORING_DUMP=<file.json>``: Prometheus scraped the test LMS's endpoint every
second while a real worker drained varying load, was stopped (the backlog grows, the
no-consumer alert goes pending) and came back. Each panel is one of the overview
dashboard's queries, read through Prometheus's ``query_range`` API. Needs matplotlib
(not a dependency of the package)::

    ASPECTS_MONITORING_DUMP=/tmp/monitoring.json PYTHONPATH=. python -m pytest tests/test_monitoring_prometheus.py
    python docs/render_monitoring.py /tmp/monitoring.json docs/monitoring-overview.png
"""

from __future__ import annotations

import json
import sys

PANELS = (
    ("Tasks per second", (("published", "published"), ("finished", "finished"), ("failed", "failed")), ""),
    ("Queue wait and run time, p95", (("wait_p95", "queue wait"), ("runtime_p95", "run time")), "s"),
    ("Queue depth", (("depth", "Aspects queue"),), "tasks"),
    ("Lag", (("xapi_lag", "newest xAPI event in ClickHouse"), ("bus_lag", "event-bus group (entries)")), ""),
)


def _points(result):
    if not result:
        return [], []
    values = result[0]["values"]
    return [float(t) for t, _ in values], [float(v) for _, v in values]


def render(dump_path: str, png_path: str) -> None:
    """One figure, four panels, time in seconds since the load started."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    with open(dump_path, encoding="utf-8") as handle:
        dump = json.load(handle)
    start = dump["start"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.2), sharex=True)
    for ax, (title, series, unit) in zip(axes.flat, PANELS):
        for key, label in series:
            times, values = _points(dump["series"][key])
            if times:
                ax.plot([t - start for t in times], values, label=label, linewidth=1.6)
        ax.set_title(title, fontsize=11)
        if unit:
            ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    for ax in axes[1]:
        ax.set_xlabel("seconds since the load started")
    fig.suptitle("Aspects pipeline, as Prometheus recorded it (worker stopped mid-run, then restarted)", fontsize=12)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    render(sys.argv[1], sys.argv[2])
