"""JSON text on the hot paths: :mod:`json`'s exact results, by orjson where it gives the same.

The history, the storage and the task calls write and read dozens of values per transition; orjson does
it several times faster than :mod:`json`. It differs from :mod:`json` in a few places, all of which
are checked here so that the text and values stay exactly :mod:`json`'s:

- writing: NaN and infinities (orjson writes ``null``, :mod:`json` ``NaN``), floats below 1e-4 (orjson
  ``0.00001`` and ``1.5e-7`` where :mod:`json` writes ``1e-05`` and ``1.5e-07``), and what orjson
  refuses (integers beyond 64 bits, keys that are not strings, lone surrogates);
- reading: integers beyond 64 bits (orjson turns them into floats, losing digits), and what orjson
  refuses (NaN, ``1e999``, lone surrogates, encodings other than UTF-8).

A text that may hold one of them goes to :mod:`json`: the check looks at the text, so a string that
only resembles one (``"null"``, ``"page-5"``, a run of 19 digits) costs the slower path, never another
result.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))

# In orjson's text: a null (a NaN or an infinity also writes one), or a float below 1e-4.
_NOT_AS_JSON_WRITES = re.compile(rb"null|0\.0000|e-[1-9](?![0-9])")
# In a text to read: a number that may be an integer beyond 64 bits (2**63 has 19 digits).
_LONG_NUMBER_BYTES = re.compile(rb"[0-9]{19}")
_LONG_NUMBER_TEXT = re.compile(r"[0-9]{19}")


def dumps_compact(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, faster."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        return _COMPACT.encode(value)
    if _NOT_AS_JSON_WRITES.search(encoded) is None:
        return encoded.decode()
    return _COMPACT.encode(value)


def dumps_compact_bytes(value: Any) -> bytes:
    """:func:`dumps_compact` as UTF-8 (a request body); a lone surrogate, which UTF-8 cannot hold, is
    written as its ``\\u`` escape."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        return _utf8(value)
    if _NOT_AS_JSON_WRITES.search(encoded) is None:
        return encoded
    return _utf8(value)


def _utf8(value: Any) -> bytes:
    try:
        return _COMPACT.encode(value).encode()
    except UnicodeEncodeError:
        return _COMPACT_ASCII.encode(value).encode()


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``, faster; its errors are :mod:`json`'s."""
    long_number = _LONG_NUMBER_BYTES if isinstance(text, bytes) else _LONG_NUMBER_TEXT
    if long_number.search(text) is None:  # type: ignore[arg-type]  # the pattern matches the type
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
