"""Event sources: broker subscriptions that start one execution per message.

A source binds a RabbitMQ queue (AMQP 0-9-1), a NATS JetStream durable consumer or a Redis Streams
consumer group to a workflow. Every process that runs a worker consumes every enabled source
(:mod:`machinery.runtime.sources.manager`); the broker balances messages between them, as each of the
three does for competing consumers. Each message becomes one execution whose id derives from the source
and the message's id (:mod:`machinery.runtime.sources.intake`), and the message is acknowledged only
once that execution is committed: delivery is at least once, the start exactly once.

The broker libraries are optional extras; :func:`missing_library` names the one a source needs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

#: The resource kinds of sources, their processes' status reports and their rejected messages.
SOURCE_KIND = "source"
STATUS_KIND = "source-status"
REJECTION_KIND = "source-rejection"


def status_key(source_id: str, owner: str) -> str:
    """The key of one process's status of one source (``STATUS_KIND``; listed by ``<source id>/``)."""
    return f"{source_id}/{owner}"


@dataclass(frozen=True)
class BrokerType:
    """A kind of source: the library it needs (a module to import) and the extra that installs it."""

    name: str
    module: str
    library: str
    extra: str
    default_url: str


BROKERS: dict[str, BrokerType] = {
    "rabbitmq": BrokerType(
        "rabbitmq", "aio_pika", "aio-pika", "rabbitmq", "amqp://guest:guest@127.0.0.1:5672/"
    ),
    "nats": BrokerType("nats", "nats", "nats-py", "nats", "nats://127.0.0.1:4222"),
    "redis": BrokerType("redis", "redis", "redis", "redis", "redis://127.0.0.1:6379/0"),
}


def missing_library(broker: str) -> str | None:
    """Why a source of this type cannot run in this process (its library is missing), or None."""
    found = BROKERS[broker]
    if importlib.util.find_spec(found.module) is None:
        return (
            f"{found.name} sources need the {found.library} library, which is not installed: "
            f"pip install 'machinery[{found.extra}]'"
        )
    return None


@dataclass(frozen=True)
class Source:
    """A source as stored (resource ``source/<name>``); ``options`` are its type's settings."""

    source_id: str
    name: str
    workflow: str
    type: str
    url: str
    options: dict[str, Any]
    enabled: bool
    revision: int
    created_at: float
    updated_at: float
    callback_url: str | None = None
    description: str = ""

    def option(self, name: str) -> Any:
        return self.options.get(name, OPTION_DEFAULTS[self.type].get(name))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Source:
        return cls(**body)


#: Every option of each type and its default (None: required or unset).
OPTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "rabbitmq": {"queue": None, "prefetch": 64, "declare": True},
    "nats": {"stream": None, "subject": None, "durable": None, "batch": 64, "ack_wait_seconds": 30},
    "redis": {
        "stream": None,
        "group": "machinery",
        "field": "body",
        "batch": 64,
        "start": "earliest",
        "claim_idle_seconds": 30,
        "dead_letter_stream": None,
    },
}


@dataclass
class SourceStatus:
    """What one process knows of one source it consumes (reported as ``source-status/<id>/<owner>``).

    The counters count since this process started consuming it.
    """

    owner: str
    connected: bool = False
    lag: int | None = None
    started: int = 0
    duplicates: int = 0
    rejected: int = 0
    retried: int = 0
    reconnects: int = 0
    saturated: bool = False
    last_error: str | None = None
    connected_at: float | None = None
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
