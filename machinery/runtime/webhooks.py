"""Delivering an execution's final record to its ``callback_url``, signed when a secret is set."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import aiohttp

from machinery.shapes import event_record
from machinery.storage.base import ExecutionRecord

logger = logging.getLogger(__name__)


def sign(body: bytes, secret: str, timestamp: str) -> str:
    """``sha256=<hex>`` of ``<timestamp>.<body>`` with the shared secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def deliver_webhook(
    session: aiohttp.ClientSession, execution: ExecutionRecord, secret: str | None, timeout: float = 10.0
) -> bool:
    """POST the record; True when the receiver answered 2xx."""
    assert execution.callback_url is not None
    body = json.dumps(event_record(execution), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Machinery-Event-Id": execution.execution_id,
        "X-Machinery-Timestamp": timestamp,
    }
    if secret:
        headers["X-Machinery-Signature"] = sign(body, secret, timestamp)
    try:
        async with session.post(
            execution.callback_url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            await response.read()
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.info(
            "webhook to %s failed: %s",
            execution.callback_url,
            exc,
            extra={"execution_id": execution.execution_id},
        )
        return False
