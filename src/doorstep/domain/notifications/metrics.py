"""Prometheus figures of the outbox and the worker (served at ``/metrics`` by the process that
runs them: the server, when the worker runs in-process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "doorstep_messages_total",
    "Outbox messages by channel and outcome (sent, retried, failed, suppressed)",
    ["channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "doorstep_message_send_seconds",
    "Time to hand one message to its SMTP server, webhook receiver or apprise service",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOB_RUNS = Counter("doorstep_worker_job_runs_total", "Worker job runs", ["job"])
JOB_ERRORS = Counter("doorstep_worker_job_errors_total", "Worker job runs that raised", ["job"])
