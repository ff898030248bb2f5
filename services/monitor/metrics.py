"""Prometheus metrics: counters fed by the live follower, gauges refreshed per scrape.

Each app has its own ``CollectorRegistry`` so two monitors in one process (a test
restarting one) never collide on metric names.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.monitor import models as m

CONTENT_TYPE = CONTENT_TYPE_LATEST
_RATE_WINDOW_S = 10.0


class MonitorMetrics:
    """Everything ``/metrics`` shows; names are listed in services/monitor/README.md."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.entries = Counter(
            "optbot_entries_seen_total",
            "Stream entries seen by the monitor",
            ["stream"],
            registry=r,
        )
        self.quotes = Counter("optbot_quotes_seen_total", "Quotes seen on md:ticks", registry=r)
        self.quote_rate = Gauge(
            "optbot_quotes_per_second", "Quotes/s on md:ticks over the last 10 s", registry=r
        )
        self.orders = Counter(
            "optbot_orders_total", "Order requests seen on orders:requests", ["type"], registry=r
        )
        self.order_events = Counter(
            "optbot_order_events_total",
            "Order events seen on orders:events",
            ["kind"],
            registry=r,
        )
        self.fills = Counter("optbot_fills_total", "Fills and partial fills seen", registry=r)
        self.denials = Counter(
            "optbot_denials_total", "Orders denied by the strategy's risk check", registry=r
        )
        self.gateway_reconnects = Counter(
            "optbot_gateway_reconnects_total",
            "Gateway transitions back to connected after a loss",
            registry=r,
        )
        self.redis_reconnects = Counter(
            "optbot_monitor_redis_reconnects_total",
            "Times the monitor's follower lost Redis and resumed",
            registry=r,
        )
        self.controls = Counter(
            "optbot_control_actions_total",
            "Control requests by action and result",
            ["action", "result"],
            registry=r,
        )
        self.sse_clients = Gauge(
            "optbot_sse_clients", "Dashboard clients connected over SSE", registry=r
        )
        self.sse_events = Counter(
            "optbot_sse_events_total", "Panel updates sent to SSE clients", ["panel"], registry=r
        )
        self.stream_length = Gauge(
            "optbot_stream_length", "Entries in a stream", ["stream"], registry=r
        )
        self.consumer_lag = Gauge(
            "optbot_consumer_lag",
            "Entries not yet delivered to a consumer group",
            ["stream", "group"],
            registry=r,
        )
        self.consumer_pending = Gauge(
            "optbot_consumer_pending",
            "Delivered, unacknowledged entries of a group",
            ["stream", "group"],
            registry=r,
        )
        self.dlq_size = Gauge("optbot_dlq_size", "Entries in sys:dlq", registry=r)
        self.service_up = Gauge(
            "optbot_service_up", "1 when a service's heartbeat is present", ["service"], registry=r
        )
        self.heartbeat_age = Gauge(
            "optbot_service_heartbeat_age_seconds",
            "Age of a service's heartbeat",
            ["service"],
            registry=r,
        )
        self.redis_up = Gauge("optbot_redis_up", "1 when Redis answers", registry=r)
        self._quote_times: deque[tuple[float, int]] = deque()

    def saw_quotes(self, n: int) -> None:
        self.quotes.inc(n)
        now = time.monotonic()
        self._quote_times.append((now, n))
        while self._quote_times and now - self._quote_times[0][0] > _RATE_WINDOW_S:
            self._quote_times.popleft()

    def _update_rate(self) -> None:
        now = time.monotonic()
        while self._quote_times and now - self._quote_times[0][0] > _RATE_WINDOW_S:
            self._quote_times.popleft()
        self.quote_rate.set(sum(n for _, n in self._quote_times) / _RATE_WINDOW_S)

    def observe_system(self, system: m.System, services: list[m.Service]) -> None:
        for s in system.streams:
            self.stream_length.labels(s.name).set(s.length)
            for g in s.groups:
                self.consumer_pending.labels(s.name, g.name).set(g.pending)
                if g.lag is not None:
                    self.consumer_lag.labels(s.name, g.name).set(g.lag)
        self.dlq_size.set(system.dlq.count)
        for svc in services:
            self.service_up.labels(svc.name).set(1 if svc.alive else 0)
            self.heartbeat_age.labels(svc.name).set(svc.heartbeat_age_s if svc.alive else 0)

    def render(self) -> bytes:
        self._update_rate()
        return generate_latest(self.registry)
