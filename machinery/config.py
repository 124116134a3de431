"""Settings: defaults here, overridden by ``MACHINERY_*`` environment variables (``machinery --help``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinery.auth import AuthSettings
from machinery.runtime import loops
from machinery.runtime.outbound import DEFAULT_DENIED_TARGETS, OutboundPolicy, parse_rules
from machinery.runtime.retention import RetentionSettings
from machinery.runtime.webhooks import DEFAULT_ATTEMPTS
from machinery.runtime.worker import WorkerSettings

#: Every setting, its default and what it does (printed by ``machinery --help``).
SETTINGS: dict[str, tuple[Any, str]] = {
    "DATABASE_URL": ("sqlite:///machinery.db", "storage: sqlite:///path, memory://, postgresql://..."),
    "PG_POOL_MIN": (1, "PostgreSQL connections each process keeps open"),
    "PG_POOL_MAX": (10, "PostgreSQL connections each process opens at most"),
    "SYNC_WAIT": (30.0, "seconds POST /e waits for the result before answering 202"),
    "RUN_WORKER": (True, "run a worker in the server process"),
    "START_WORKER": (True, "start the worker when the app is created"),
    "RELEASE_LEASES_ON_START": (True, "SQLite only: void the leases of a killed predecessor at start"),
    "LEASE_SECONDS": (30.0, "how long a worker owns claimed work without renewing"),
    "POLL_INTERVAL": (1.0, "seconds between storage polls when idle"),
    "TIME_SCALE": (1.0, "multiplies Wait states, retry intervals and timeouts (0 = instant)"),
    "DATA_LIMIT": (262144, "maximum bytes of a state's input or output (States.DataLimitExceeded)"),
    "LAMBDA_ENDPOINT": ("", "base URL of a server speaking the Lambda Invoke API"),
    "WEBHOOK_SECRET": ("", "HMAC-SHA256 key that signs webhook deliveries"),
    "WEBHOOK_ATTEMPTS": (
        DEFAULT_ATTEMPTS,
        "webhook delivery attempts before giving up (back-off 2 s doubling to 10 min)",
    ),
    "ALLOWED_TARGETS": (
        "",
        "outbound calls only to these host names / CIDR ranges (comma-separated; empty: any)",
    ),
    "DENIED_TARGETS": (DEFAULT_DENIED_TARGETS, "outbound calls never to these host names / CIDR ranges"),
    "PUBLIC_URL": ("", "this server's URL, given to .waitForTaskToken services for callbacks"),
    "FINISH_POLL_INTERVAL": (
        0.02,
        "seconds between looks for executions another process finished while a request waits (0: never)",
    ),
    "MAX_IN_FLIGHT": (1024, "work items one worker runs at once"),
    # Limits at the door (docs/security.md): each refusal names its limit and this setting.
    "MAX_BODY_BYTES": (2097152, "maximum bytes of a request body (413, refused before it is read)"),
    "MAX_JSON_DEPTH": (128, "maximum nesting of arrays and objects in a request body (400)"),
    "MAX_DEFINITION_BYTES": (1048576, "maximum bytes of a workflow definition, AWS's 1 MiB (409)"),
    "MAX_STATES": (10000, "maximum states of a workflow definition, nested ones included (409)"),
    "REDRIVE_DAYS": (
        14.0,
        "days after its end that a failed, timed-out or aborted execution may be redriven",
    ),
    "ACTIVITY_POLL_SECONDS": (60.0, "AWS API: how long GetActivityTask waits for a task (60 on AWS)"),
    "AWS_REGION": ("us-east-1", "AWS API: the region of ARNs when a request has no SigV4 credential scope"),
    "AWS_ACCOUNT": ("000000000000", "AWS API: the account of ARNs unless the access key is a 12-digit id"),
    "CONSUME_SOURCES": (True, "consume the event sources (RabbitMQ, NATS, Redis) in this process's worker"),
    "SOURCE_REFRESH_SECONDS": (2.0, "how often a worker looks for new or changed event sources"),
    "INSECURE": (
        False,
        "admit requests without a token from any address while no token exists (serve --insecure)",
    ),
    "SECRET_KEY": (
        "",
        "server key for SigV4 secrets and console sessions (unset: generated, kept in storage)",
    ),
    "SESSION_HOURS": (12.0, "how long a console session lasts"),
    "RETENTION_DAYS": (90.0, "days after which finished executions are deleted (0 keeps them forever)"),
    "RETENTION_BATCH": (200, "executions one retention pass of a worker deletes at most"),
    "RETENTION_INTERVAL": (60.0, "seconds between a worker's retention passes (when no backlog)"),
    "METRICS_MAX_LABEL_VALUES": (
        200,
        "distinct workflow / service / event-source names with series of their own in /metrics (then _other)",
    ),
    "METRICS_HOST": ("127.0.0.1", "machinery worker: address of the /metrics listener (with METRICS_PORT)"),
    "METRICS_PORT": (0, "machinery worker: serve /metrics on this port (0: not served)"),
    "LOG_FORMAT": ("text", "log lines: text, or json (one object per line, with execution_id)"),
    "EVENT_LOOP": ("uvloop", "the worker's event loop: uvloop, or asyncio (the standard library's)"),
    "STORAGE_WRITERS": (
        0,
        "group transactions a worker writes at once on PostgreSQL or MongoDB (0: chosen by the database: "
        "on PostgreSQL 1 when it answers within 0.25 ms, else 6)",
    ),
}

DEFAULTS: dict[str, Any] = {name: default for name, (default, _help) in SETTINGS.items()}
#: The most group transactions a worker may write at once (MACHINERY_STORAGE_WRITERS).
_MOST_WRITERS = 64


def worker_settings(config: Mapping[str, Any]) -> WorkerSettings:
    """:raises ValueError: an entry of ``ALLOWED_TARGETS`` or ``DENIED_TARGETS`` that is not one."""
    return WorkerSettings(
        lease_seconds=float(config["LEASE_SECONDS"]),
        poll_interval=float(config["POLL_INTERVAL"]),
        max_in_flight=int(config["MAX_IN_FLIGHT"]),
        time_scale=float(config["TIME_SCALE"]),
        data_limit=int(config["DATA_LIMIT"]),
        lambda_endpoint=str(config["LAMBDA_ENDPOINT"]) or None,
        public_url=str(config["PUBLIC_URL"]) or None,
        webhook_secret=str(config["WEBHOOK_SECRET"]) or None,
        webhook_attempts=max(1, int(config["WEBHOOK_ATTEMPTS"])),
        outbound=outbound_policy(config),
        consume_sources=bool(config["CONSUME_SOURCES"]),
        source_refresh_seconds=float(config["SOURCE_REFRESH_SECONDS"]),
        retention=RetentionSettings(
            days=float(config["RETENTION_DAYS"]),
            batch=max(1, int(config["RETENTION_BATCH"])),
            interval=max(0.01, float(config["RETENTION_INTERVAL"])),
        ),
        finish_poll_interval=max(0.0, float(config["FINISH_POLL_INTERVAL"])),
        event_loop=event_loop(config),
        storage_writers=storage_writers(config),
    )


def storage_writers(config: Mapping[str, Any]) -> int:
    """:raises ValueError: ``MACHINERY_STORAGE_WRITERS`` is not a whole number from 0 to 64."""
    value = config["STORAGE_WRITERS"]
    try:
        writers = int(str(value).strip())
    except ValueError:
        writers = -1
    if not 0 <= writers <= _MOST_WRITERS:
        raise ValueError(
            f"MACHINERY_STORAGE_WRITERS: {value!r} is not a whole number from 0 (chosen by the database) "
            f"to {_MOST_WRITERS}"
        )
    return writers


def event_loop(config: Mapping[str, Any]) -> str:
    """:raises ValueError: ``MACHINERY_EVENT_LOOP`` is not one of :data:`machinery.runtime.loops.KINDS`."""
    kind = str(config["EVENT_LOOP"]).strip().lower()
    loops.loop_factory(kind)  # refuses an unknown one, naming the setting
    return kind


def outbound_policy(config: Mapping[str, Any]) -> OutboundPolicy:
    """The allow/deny lists of ``MACHINERY_ALLOWED_TARGETS`` and ``MACHINERY_DENIED_TARGETS``."""
    lists = {}
    for name in ("ALLOWED_TARGETS", "DENIED_TARGETS"):
        value = config[name]
        # from_prefixed_env reads JSON where it can: a list, or one bare address, may arrive parsed.
        entries = [str(v) for v in value] if isinstance(value, list) else str(value or "").split(",")
        try:
            lists[name] = parse_rules(entries)
        except ValueError as exc:
            raise ValueError(f"MACHINERY_{name}: {exc}") from None
    return OutboundPolicy(lists["ALLOWED_TARGETS"], lists["DENIED_TARGETS"])


def auth_settings(config: Mapping[str, Any]) -> AuthSettings:
    return AuthSettings(
        insecure=bool(config["INSECURE"]),
        secret_key=str(config["SECRET_KEY"] or ""),
        session_seconds=max(60, int(float(config["SESSION_HOURS"]) * 3600)),
    )
