"""``nextToken``: an opaque, tamper-evident cursor; a page that ends the listing has none."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from machinery.aws.errors import AwsError

# The token only has to be recognisable as ours (a bad one answers InvalidToken instead of a 500):
# a fixed key is enough, it guards no secret.
_KEY = b"machinery-aws-page-token"
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def encode(action: str, cursor: dict[str, Any]) -> str:
    body = json.dumps({"a": action, **cursor}, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(_KEY, body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")


def decode(action: str, token: object) -> dict[str, Any] | None:
    """The cursor of ``token`` (``None`` without one); ``InvalidToken`` if it is not a token of ``action``."""
    if token is None:
        return None
    try:
        assert isinstance(token, str)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, body = raw[:12], raw[12:]
        assert hmac.compare_digest(mac, hmac.new(_KEY, body, hashlib.sha256).digest()[:12])
        cursor = json.loads(body)
        assert isinstance(cursor, dict) and cursor.pop("a") == action
    except (AssertionError, ValueError, KeyError, UnicodeDecodeError):
        raise AwsError("InvalidToken", f"Invalid Token: '{token}'") from None
    return cursor


def page_size(params: dict[str, Any]) -> int:
    """``maxResults``: 0 or absent means the default of 100."""
    size = int(params.get("maxResults") or 0)
    return size if size > 0 else DEFAULT_PAGE


def page(
    action: str, items: list[Any], keys: list[str], params: dict[str, Any]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the next token; ``keys`` (one per item) ascend in listing order, so a
    page goes on after its last key even when that item has gone meanwhile."""
    cursor = decode(action, params.get("nextToken"))
    start = 0
    if cursor is not None:
        after = str(cursor.get("after", ""))
        start = next((index for index, key in enumerate(keys) if key > after), len(keys))
    size = page_size(params)
    chosen = items[start : start + size]
    more = start + size < len(items)
    return chosen, encode(action, {"after": keys[start + size - 1]}) if more else None
