"""Publishing an execution's final record to a broker: the ``callback_url`` of an event (or of the schedule
or source that started it) may name a RabbitMQ exchange, a NATS subject or a Redis stream instead of a
webhook. Delivery goes through the same work item, attempts and back-off as a webhook's
(:meth:`machinery.runtime.worker.Worker._send_webhook`); only the last step differs.

- ``amqp://user:password@host:5672/vhost?exchange=results&routing_key=done``: a persistent message on the
  exchange (default: the default exchange) with the routing key (default: the workflow's name), with
  publisher confirms; ``message_id`` is the event id.
- ``nats://host:4222?subject=results.done``: a message on the subject, flushed to the server; with
  ``&jetstream=true`` a JetStream publish acknowledged by the stream, ``Nats-Msg-Id`` the event id (so
  the stream drops a repeated delivery).
- ``redis://host:6379/0?stream=results``: ``XADD`` of the fields ``event_id`` and ``body``
  (``&maxlen=N`` trims the stream approximately).

The body is the event record a webhook receives, and ``X-Machinery-Signature`` goes with it (as a header
or a field) when ``MACHINERY_WEBHOOK_SECRET`` is set. Connections are opened per delivery: the final
record is sent once per execution, and a broker that went away costs nothing between attempts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from machinery.runtime.outbound import OutboundPolicy
from machinery.runtime.webhooks import Delivery, sign
from machinery.shapes import event_record
from machinery.storage.base import ExecutionRecord

#: The schemes a ``callback_url`` may have to publish to a broker, by the source type naming the library.
BROKER_SCHEMES = {
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "nats": "nats",
    "tls": "nats",
    "redis": "redis",
    "rediss": "redis",
}
_TIMEOUT_SECONDS = 10.0


class DestinationProblem(ValueError):
    """A broker URL that cannot be published to (its message says why)."""


def is_broker_url(url: str) -> bool:
    return urlsplit(url).scheme in BROKER_SCHEMES


def destination(url: str) -> tuple[str, str, dict[str, str]]:
    """``(broker type, URL without the query, parameters)``.

    :raises DestinationProblem: a missing ``subject``/``stream``, or an unknown parameter.
    """
    parts = urlsplit(url)
    kind = BROKER_SCHEMES.get(parts.scheme)
    if kind is None or not parts.hostname:
        raise DestinationProblem(f"not a broker URL: {url!r}")
    params = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    allowed = {
        "rabbitmq": {"exchange", "routing_key"},
        "nats": {"subject", "jetstream"},
        "redis": {"stream", "maxlen"},
    }
    unknown = sorted(set(params) - allowed[kind])
    if unknown:
        raise DestinationProblem(
            f"unknown parameter {unknown[0]!r} (a {kind} URL takes {', '.join(sorted(allowed[kind]))})"
        )
    required = {"nats": "subject", "redis": "stream"}.get(kind)
    if required is not None and not params.get(required):
        raise DestinationProblem(f"a {kind} URL needs ?{required}=...")
    if kind == "redis" and "maxlen" in params and not params["maxlen"].isdigit():
        raise DestinationProblem("maxlen must be a whole number")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return kind, base, params


async def publish_record(
    execution: ExecutionRecord, secret: str | None, now: float, policy: OutboundPolicy
) -> Delivery:
    """Publish the record once; delivered when the broker took it. A destination the outbound ``policy``
    refuses, or that cannot be one, is given up at once."""
    assert execution.callback_url is not None
    try:
        kind, url, params = destination(execution.callback_url)
    except DestinationProblem as exc:
        return Delivery(False, error=str(exc), final=True)
    refusal = broker_refusal(execution.callback_url, policy)
    if refusal is not None:
        return Delivery(False, error=refusal, final=True)
    body = json.dumps(event_record(execution), separators=(",", ":")).encode()
    headers = {"X-Machinery-Event-Id": execution.execution_id, "X-Machinery-Timestamp": str(int(now))}
    if secret:
        headers["X-Machinery-Signature"] = sign(body, secret, headers["X-Machinery-Timestamp"])
    try:
        async with asyncio.timeout(_TIMEOUT_SECONDS):
            if kind == "rabbitmq":
                await _amqp(url, params, execution, body, headers)
            elif kind == "nats":
                await _nats(url, params, execution, body, headers)
            else:
                await _redis(url, params, body, headers)
    except ImportError as exc:
        return Delivery(
            False,
            error=f"the {kind} library is not installed: pip install 'machinery[{kind}]' ({exc})",
            final=True,
        )
    except Exception as exc:  # a broker library's failure: tried again after the back-off
        return Delivery(False, error=f"{type(exc).__name__}: {exc}"[:500])
    return Delivery(True)


async def _amqp(
    url: str, params: dict[str, str], execution: ExecutionRecord, body: bytes, headers: dict[str, str]
) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=_TIMEOUT_SECONDS)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = params.get("exchange", "")
        exchange = channel.default_exchange if not name else await channel.get_exchange(name, ensure=True)
        message = aio_pika.Message(
            body,
            message_id=execution.execution_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict[str, Any](headers),
        )
        await exchange.publish(message, routing_key=params.get("routing_key") or execution.workflow_name)


async def _nats(
    url: str, params: dict[str, str], execution: ExecutionRecord, body: bytes, headers: dict[str, str]
) -> None:
    import nats

    client = await nats.connect(url, allow_reconnect=False, connect_timeout=_TIMEOUT_SECONDS)
    try:
        subject = params["subject"]
        if params.get("jetstream", "").lower() in ("1", "true", "yes"):
            await client.jetstream().publish(
                subject, body, headers={**headers, "Nats-Msg-Id": execution.execution_id}
            )
        else:
            await client.publish(subject, body, headers=headers)
            await client.flush(timeout=int(_TIMEOUT_SECONDS))
    finally:
        await client.close()


async def _redis(url: str, params: dict[str, str], body: bytes, headers: dict[str, str]) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=_TIMEOUT_SECONDS)
    try:
        fields: dict[Any, Any] = {"event_id": headers["X-Machinery-Event-Id"], "body": body}
        if "X-Machinery-Signature" in headers:
            fields["signature"] = headers["X-Machinery-Signature"]
            fields["timestamp"] = headers["X-Machinery-Timestamp"]
        maxlen = int(params["maxlen"]) if params.get("maxlen") else None
        await client.xadd(params["stream"], fields, maxlen=maxlen, approximate=True)
    finally:
        await client.aclose()


def broker_refusal(url: str, policy: OutboundPolicy) -> str | None:
    """Why a broker URL (a source's, or a ``callback_url``) may not be used: not a valid destination or
    source URL, or a host the outbound allow/deny lists refuse (checked as its ``http://host:port``)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return f"{url!r} names no host"
    try:
        port = parts.port
    except ValueError as exc:
        return f"invalid port: {exc}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return policy.refusal(f"http://{host}:{port}/" if port else f"http://{host}/")
