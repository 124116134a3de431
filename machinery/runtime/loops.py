"""The event loops the worker and the express runner run on: uvloop's, unless asked for asyncio's.

uvloop (libuv) costs less per callback and per socket operation than asyncio's selector loop: measured
on the seed workflow at 32 clients, 5-7 % less server CPU per execution and 8-10 % more executions per
second (bench/README.md). ``MACHINERY_EVENT_LOOP=asyncio`` selects the standard library's loop, and so
does a platform uvloop does not support.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows, or an install without it
    uvloop = None  # type: ignore[assignment]

_T = TypeVar("_T")

UVLOOP = "uvloop"
ASYNCIO = "asyncio"
KINDS = (UVLOOP, ASYNCIO)


def loop_factory(kind: str = UVLOOP) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new loop of ``kind`` (``uvloop`` falls back to asyncio's where it is missing).

    :raises ValueError: ``kind`` is neither ``uvloop`` nor ``asyncio``.
    """
    if kind not in KINDS:
        raise ValueError(f"MACHINERY_EVENT_LOOP: '{kind}' is not one of {', '.join(KINDS)}")
    if kind == UVLOOP and uvloop is not None:
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, _T], kind: str = UVLOOP) -> _T:
    """``asyncio.run(main)`` on a new loop of ``kind``."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
