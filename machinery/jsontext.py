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

# The checks are substring searches, which run at memory speed (a regular expression that must try every
# position costs ten times orjson's own time on a big document).
# Written by orjson only as json writes it: no null (a NaN or an infinity writes one too), no float below
# 1e-4 (orjson: 0.00001, 1.5e-7; json: 1e-05, 1.5e-07).
_ONE_DIGIT_NEGATIVE_EXPONENT = re.compile(rb"e-[1-9](?![0-9])")  # found from its literal prefix, fast
# Read by orjson only as json reads it: no run of 19 digits (an integer beyond 64 bits has 20, or 19 when
# negative). Every digit becomes "0", everything else a space, then one substring search.
_DIGITS_ONLY = bytes(ord("0") if ord("0") <= byte <= ord("9") else ord(" ") for byte in range(256))
_LONG_NUMBER = b"0" * 19


def _by_orjson(value: Any) -> bytes | None:
    """orjson's text of ``value`` when it is exactly :mod:`json`'s, else None."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        return None
    if b"null" in encoded or b"0.0000" in encoded:
        return None
    if b"e-" in encoded and _ONE_DIGIT_NEGATIVE_EXPONENT.search(encoded) is not None:
        return None
    return encoded


def dumps_compact(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, faster."""
    encoded = _by_orjson(value)
    return _COMPACT.encode(value) if encoded is None else encoded.decode()


def dumps_compact_bytes(value: Any) -> bytes:
    """:func:`dumps_compact` as UTF-8 (a request body); a lone surrogate, which UTF-8 cannot hold, is
    written as its ``\\u`` escape."""
    encoded = _by_orjson(value)
    return _utf8(value) if encoded is None else encoded


def _utf8(value: Any) -> bytes:
    try:
        return _COMPACT.encode(value).encode()
    except UnicodeEncodeError:
        return _COMPACT_ASCII.encode(value).encode()


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``, faster; its errors are :mod:`json`'s."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_NUMBER not in raw.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
