"""Pipeline metrics every service exposes (declared once, low-cardinality labels).

Service-specific coverage gauges live in each service's ``metrics.py``.
"""

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

EVENTS_PUBLISHED = Counter(
    "krousar_events_published_total", "Events the outbox relay published.", ["service", "topic", "type"]
)
EVENTS_CONSUMED = Counter(
    "krousar_events_consumed_total",
    "Events a consumer handled, by event type (unknown: a message that could not be decoded) and outcome"
    " (applied or dead_lettered).",
    ["service", "topic", "type", "outcome"],
)
DLQ_MESSAGES = Counter(
    "krousar_dlq_messages_total", "Messages sent to a dead-letter topic.", ["service", "topic"]
)
OUTBOX_BACKLOG = Gauge(
    "krousar_outbox_backlog", "Events not yet published (the outbox and its other sources).", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "krousar_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row.", ["service"]
)
CONSUMER_LAG = Gauge(
    "krousar_consumer_lag_messages",
    "Messages behind the end of the log, per consumed topic.",
    ["service", "topic"],
)
HTTP_REQUEST_DURATION = Histogram(
    "krousar_http_request_duration_seconds",
    "HTTP request duration by route template.",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Gauges read from the database refresh at most this share of the time: at national size a read of
# every household takes seconds, and monitors need minutes, not a core (runtime.every).
GAUGE_REFRESH_BUSY_SHARE = 0.05


class DatabaseGauges:
    """Gauges whose values are read from a service's database by a periodic job.

    The whole family is replaced on each refresh, so a label set that disappeared from the
    database disappears from /metrics too, and the numbers are right again right after a restart.
    """

    def __init__(
        self, name: str, documentation: str, labels: list[str], registry: CollectorRegistry = REGISTRY
    ):
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self._values: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def replace(self, rows: Iterable[tuple[Sequence[Any], float]]) -> None:
        self._values = {tuple(str(v) for v in labels): float(value) for labels, value in rows}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in self._values.items():
            family.add_metric(list(labels), value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
