"""Delivering an execution's final record to its ``callback_url``, signed when a secret is set.

A delivery that fails (no connection, a timeout, a non-2xx answer) is tried again after an exponential
back-off with jitter (:func:`retry_delay`), up to ``MACHINERY_WEBHOOK_ATTEMPTS`` attempts; a target the
allow/deny lists refuse, or a URL that cannot be called, is given up at once. Each failed attempt and
the outcome are history events (``WebhookAttemptFailed``, then ``WebhookDelivered`` or
``WebhookFailed``), from which the event record's ``webhook`` member is read (:func:`webhook_status`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from machinery.runtime.httpclient import HttpClient
from machinery.runtime.outbound import InvalidRequest, OutboundError, TargetRefused
from machinery.shapes import event_record
from machinery.storage.base import ExecutionRecord, StoredEvent

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 10
#: Seconds before the second attempt; each next one waits twice as long, up to the cap.
FIRST_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 600.0
DELIVERY_TIMEOUT_SECONDS = 10.0
#: A receiver's answer is read this far and no further (it is not used).
_REPLY_LIMIT = 64 * 1024

ATTEMPT_FAILED = "WebhookAttemptFailed"
DELIVERED = "WebhookDelivered"
GAVE_UP = "WebhookFailed"
WEBHOOK_EVENTS = frozenset({ATTEMPT_FAILED, DELIVERED, GAVE_UP})


def sign(body: bytes, secret: str, timestamp: str) -> str:
    """``sha256=<hex>`` of ``<timestamp>.<body>`` with the shared secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def retry_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first): exponential, capped, with
    "equal jitter" (between half and all of it) so that receivers coming back are not hit in step."""
    delay: float = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2.0 ** (attempt - 1))
    return delay / 2 + rand() * delay / 2


@dataclass(frozen=True)
class Delivery:
    """The outcome of one attempt. ``final``: no later attempt could do better (refused target)."""

    delivered: bool
    status: int | None = None
    error: str | None = None
    final: bool = False


async def deliver_webhook(
    client: HttpClient,
    execution: ExecutionRecord,
    secret: str | None,
    now: float,
    timeout: float = DELIVERY_TIMEOUT_SECONDS,
) -> Delivery:
    """POST the record once; delivered when the receiver answered 2xx."""
    assert execution.callback_url is not None
    body = json.dumps(event_record(execution), separators=(",", ":")).encode()
    timestamp = str(int(now))
    headers = {
        "X-Machinery-Event-Id": execution.execution_id,
        "X-Machinery-Timestamp": timestamp,
    }
    if secret:
        headers["X-Machinery-Signature"] = sign(body, secret, timestamp)
    try:
        reply = await client.request("POST", execution.callback_url, body, headers, timeout, _REPLY_LIMIT)
    except OutboundError as exc:
        logger.info("webhook failed: %s", exc.message, extra={"execution_id": execution.execution_id})
        return Delivery(False, error=exc.message, final=isinstance(exc, TargetRefused | InvalidRequest))
    if 200 <= reply.status < 300:
        return Delivery(True, status=reply.status)
    return Delivery(False, status=reply.status, error=f"the receiver answered {reply.status} {reply.reason}")


def webhook_status(execution: ExecutionRecord, last: StoredEvent | None) -> dict[str, Any] | None:
    """The event record's ``webhook`` member, from the execution's last history event.

    ``status`` is ``pending`` (not yet delivered; ``next_attempt_at`` after a failed attempt),
    ``delivered`` or ``failed`` (given up); ``attempts`` made so far and the ``last_error``.
    """
    if not execution.callback_url:
        return None
    if last is None or last.type not in WEBHOOK_EVENTS:
        return {"status": "pending", "attempts": 0, "last_error": None}
    details = last.details
    if last.type == DELIVERED:
        return {"status": "delivered", "attempts": details.get("attempts"), "last_error": None}
    status = {
        "status": "failed" if last.type == GAVE_UP else "pending",
        "attempts": details.get("attempts"),
        "last_error": details.get("error"),
    }
    if last.type == ATTEMPT_FAILED:
        status["next_attempt_at"] = details.get("next_attempt_at")
    return status
