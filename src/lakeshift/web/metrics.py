"""Prometheus ``/metrics``: every figure computed from the control DB at each scrape
(lakeshift.metrics), so any number of runs on any machines are counted once."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import lakeshift


class ControlDBCollector(Collector):
    def __init__(self, db: str) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("lakeshift_control_db_up",
                               "1 when the control DB could be read for this scrape")
        try:
            jobs = lakeshift.metrics(db=self.db)
        except lakeshift.LakeshiftError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        copied = CounterMetricFamily("lakeshift_objects_copied", "Objects copied",
                                     labels=["job"])
        nbytes = CounterMetricFamily("lakeshift_bytes_copied", "Bytes of objects copied",
                                     labels=["job"])
        in_flight = GaugeMetricFamily("lakeshift_objects_in_flight",
                                      "Objects being copied now", labels=["job"])
        running = GaugeMetricFamily("lakeshift_runs_running", "Runs going on",
                                    labels=["job"])
        parts = GaugeMetricFamily("lakeshift_partitions", "Partitions by state",
                                  labels=["job", "state"])
        retries = CounterMetricFamily("lakeshift_retries", "Requests retried, by error class",
                                      labels=["job", "error_class"])
        throttled = CounterMetricFamily("lakeshift_throttled",
                                        "Requests throttled (429/503) and retried",
                                        labels=["job"])
        errors = CounterMetricFamily("lakeshift_errors", "Objects failed, by error class",
                                     labels=["job", "error_class"])
        for j in jobs:
            copied.add_metric([j.job], j.objects_copied)
            nbytes.add_metric([j.job], j.bytes_copied)
            in_flight.add_metric([j.job], j.in_flight)
            running.add_metric([j.job], j.runs_running)
            throttled.add_metric([j.job], j.throttled)
            for state in ("pending", "running", "succeeded", "failed"):
                parts.add_metric([j.job, state], j.partitions.get(state, 0))
            for kind, n in sorted(j.retries.items()):
                retries.add_metric([j.job, kind], n)
            for kind, n in sorted(j.errors.items()):
                errors.add_metric([j.job, kind], n)
        yield from (copied, nbytes, in_flight, running, parts, retries, throttled, errors)


def exposition(db: str) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControlDBCollector(db))
    return generate_latest(registry)
