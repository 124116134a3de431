"""Compact JSON text, as Step Functions prints it, with one shared encoder.

``json.dumps`` with options builds a new encoder on every call; the hot paths (history, storage, task
calls) serialise dozens of values per transition.
"""

from __future__ import annotations

import json
from typing import Any

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps_compact(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, faster."""
    return _COMPACT.encode(value)
