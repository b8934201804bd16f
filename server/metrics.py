"""The server's metrics in Prometheus' text format, through the ``prometheus_client`` library
(served as ``GET /metrics`` by server.pages).

Requests by route and status, request latency, tokens in and out, replies by finish reason,
empty replies generated again, and the queue depth in front of the model. Each app has its own
registry (several apps in one process, as in the tests, do not mix their counts). The route
sits behind the API key like every route but ``/health`` and the page.
"""
from __future__ import annotations

from typing import Callable

from flask import Response

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("twin_http_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("twin_http_request_duration_seconds", "Time to the response's status line",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("twin_tokens", "Tokens evaluated (prompt) and generated (completion)",
                              ["kind"], registry=self.registry)
        self.replies = Counter("twin_replies", "Replies produced, by finish reason", ["finish_reason"],
                               registry=self.registry)
        self.queue = Gauge("twin_queue_depth", "Requests waiting for the model", registry=self.registry)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self.queue.set_function(depth)

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def reply(self, reply) -> None:
        self.tokens.labels("prompt").inc(reply.prompt_tokens)
        self.tokens.labels("completion").inc(reply.completion_tokens)
        self.replies.labels(reply.finish_reason).inc()

    def render(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

