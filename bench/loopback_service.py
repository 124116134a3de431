"""A loopback task service for the scale-out benchmark: slow, concurrent, and it counts every call.

``POST /<step>`` answers ``{"step": step, "n": n}`` (``/fetch`` adds ``even``) after ``--delay-ms``
milliseconds, awaited on one asyncio loop so that hundreds of calls wait at once. ``POST /hold`` waits until
``POST /release``. ``GET /stats`` reports the calls per step, the ``Idempotency-Key``\\ s received more than
once, and when each ``/hold`` call arrived (``time.time()``), by key.

Run from the repository root::

    python -m bench.loopback_service --port 8100 [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

from aiohttp import web


def build_app(delay_seconds: float) -> web.Application:
    keys: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    holds: defaultdict[str, list[float]] = defaultdict(list)
    gate = asyncio.Event()

    async def answer(request: web.Request) -> web.Response:
        step = request.match_info["step"]
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        keys[key] += 1
        steps[step] += 1
        if step == "hold":
            holds[key].append(time.time())
            await gate.wait()
        elif delay_seconds > 0:
            await asyncio.sleep(delay_seconds)
        n = body.get("n") if isinstance(body, dict) else None
        reply: dict[str, object] = {"step": step, "n": n}
        if step == "fetch":
            reply["even"] = isinstance(n, int) and n % 2 == 0
        return web.json_response(reply)

    async def release(_request: web.Request) -> web.Response:
        gate.set()
        return web.json_response({"released": True})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": sum(steps.values()),
                "steps": dict(steps),
                "repeated_keys": {key: count for key, count in keys.items() if count > 1},
                "holds": holds,
            }
        )

    async def reset(_request: web.Request) -> web.Response:
        keys.clear()
        steps.clear()
        holds.clear()
        gate.clear()
        return web.json_response({"reset": True})

    async def healthcheck(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/healthcheck", healthcheck)
    app.router.add_get("/stats", stats)
    app.router.add_post("/release", release)
    app.router.add_post("/reset", reset)
    app.router.add_post("/{step}", answer)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loopback_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="answer after this many ms")
    args = parser.parse_args(argv)
    web.run_app(
        build_app(args.delay_ms / 1000.0),
        host=args.host,
        port=args.port,
        access_log=None,
        backlog=2048,
        print=None,
    )


if __name__ == "__main__":
    main()
