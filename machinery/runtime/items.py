"""Reading a Map state's items for its ``ItemReader`` (the :class:`~machinery.engine.types.ReadItems` effect).

The inline form (``{"Items": [...]}`` in the reader's parameters) needs no I/O and is resolved by the
interpreter. What needs I/O is read here: ``arn:aws:states:::http:invoke`` fetches ``ApiEndpoint`` and
parses the reply as ``ReaderConfig.InputType`` says (``JSON``: an array; ``JSONL``: one JSON value per line;
``CSV``: one object per row, keyed by the header). Any failure becomes ``States.ItemReaderFailed``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import urlencode

from machinery.engine.types import ItemsRead, ItemsReadFailed, ReadItems
from machinery.runtime.outbound import OutboundError
from machinery.runtime.tasks import DEFAULT_TIMEOUT_SECONDS, TaskInvoker

__all__ = ["HTTP_INVOKE", "ITEM_READER_LIMIT", "parse_items", "read_items"]

HTTP_INVOKE = "arn:aws:states:::http:invoke"
#: Bytes of an ItemReader's reply read at most: the items become child branches, each within the data
#: limit, so the list as a whole may be larger than one state's data.
ITEM_READER_LIMIT = 16 * 1024 * 1024
_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}


async def read_items(invoker: TaskInvoker, effect: ReadItems) -> ItemsRead | ItemsReadFailed:
    """Perform a :class:`ReadItems` effect; the items, or why they could not be read."""
    if effect.resource != HTTP_INVOKE:
        return ItemsReadFailed(
            f"The ItemReader resource '{effect.resource}' is not supported: machinery reads items from "
            f"'{HTTP_INVOKE}' or from inline JSON"
        )
    params = effect.parameters
    if not isinstance(params, dict) or not isinstance(params.get("ApiEndpoint"), str):
        return ItemsReadFailed("The ItemReader's Parameters must name an ApiEndpoint")
    url = params["ApiEndpoint"]
    if not url.startswith(("http://", "https://")):
        return ItemsReadFailed(f"The ItemReader's ApiEndpoint must be an http:// or https:// URL: {url}")
    query = params.get("QueryParameters") or {}
    if isinstance(query, dict) and query:
        url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    method = str(params.get("Method", "GET")).upper()
    headers = {str(k): str(v) for k, v in (params.get("Headers") or {}).items()}
    body = None
    if "RequestBody" in params and method not in ("GET", "DELETE"):
        body = json.dumps(params["RequestBody"], separators=(",", ":")).encode()
    timeout = invoker.scaled_timeout(DEFAULT_TIMEOUT_SECONDS) or DEFAULT_TIMEOUT_SECONDS
    try:
        reply = await invoker.client.request(method, url, body, headers, timeout, ITEM_READER_LIMIT)
    except OutboundError as exc:
        return ItemsReadFailed(exc.message)
    if not 200 <= reply.status < 300:
        text = reply.body.decode("utf-8", "replace")[:1024]
        return ItemsReadFailed(f"{method} {url} answered with status {reply.status}: {text}")
    if reply.truncated:
        return ItemsReadFailed(
            f"the reply of {method} {url} exceeds {ITEM_READER_LIMIT} bytes; the rest of it was not read"
        )
    try:
        return ItemsRead(parse_items(reply.body, effect.reader_config))
    except ValueError as exc:
        return ItemsReadFailed(f"{method} {url}: {exc}")


def parse_items(body: bytes, config: dict[str, Any]) -> list[Any]:
    """Parse a reply as ``config["InputType"]`` says (``JSON`` when absent); ``ValueError`` if it cannot."""
    input_type = str(config.get("InputType", "JSON")).upper()
    text = body.decode("utf-8-sig")
    if input_type == "JSON":
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"the reply is not JSON: {exc}") from None
        if not isinstance(items, list):
            raise ValueError("the reply must be a JSON array")
        return items
    if input_type == "JSONL":
        parsed = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    parsed.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc}") from None
        return parsed
    if input_type == "CSV":
        return _csv_rows(text, config)
    raise ValueError(f"InputType {input_type} is not supported (use JSON, JSONL or CSV)")


def _csv_rows(text: str, config: dict[str, Any]) -> list[dict[str, str]]:
    """Rows as objects keyed by the header (the first row, or ``CSVHeaders``); values stay strings."""
    delimiter = _DELIMITERS.get(str(config.get("CSVDelimiter", "COMMA")).upper(), ",")
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    if str(config.get("CSVHeaderLocation", "FIRST_ROW")).upper() == "GIVEN":
        headers = [str(name) for name in config.get("CSVHeaders") or []]
    elif rows:
        headers, rows = rows[0], rows[1:]
    else:
        headers = []
    if not headers:
        raise ValueError("the CSV has no header")
    return [dict(zip(headers, row + [""] * (len(headers) - len(row)), strict=False)) for row in rows]
