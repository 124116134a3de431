"""The console in a real browser: time to a drawn graph of a 200-state definition, and time to open an
execution whose Map ran 10,000 items (targets from the issue: under 1 s and under 2 s).

Each figure is the page's own clock: ``performance`` marks the console sets when the graph is drawn
(``machinery:graph-drawn``) and when the execution page is ready (``machinery:execution-ready``),
measured from the navigation's start, in a fresh Debian Chromium driven by Playwright. The direct call
beside each is what the page must at least fetch, timed from this process in the same run: the graph
JSON, and the execution's whole history.

Run from the repository root (needs ``make setup`` and ``/usr/bin/chromium``)::

    python -m bench.console [--states 200] [--items 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from examples.demo import machinery_process, request
from tests.acceptance.browser import chromium


def wide_definition(states: int) -> dict[str, Any]:
    """``states`` states in groups of four: a Pass, a Choice, a Task with Retry and Catch, a Pass."""
    groups = states // 4
    body: dict[str, Any] = {}
    for i in range(groups):
        after = f"Step {i + 1}" if i + 1 < groups else "Last"
        body[f"Step {i}"] = {"Type": "Pass", "Next": f"Check {i}"}
        body[f"Check {i}"] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericGreaterThan": i, "Next": f"Call {i}"}],
            "Default": f"Skip {i}",
        }
        body[f"Call {i}"] = {
            "Type": "Task",
            "Resource": "http://127.0.0.1:9/never",
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": f"Skip {i}"}],
            "Next": after,
        }
        body[f"Skip {i}"] = {"Type": "Pass", "Next": after}
    body["Last"] = {"Type": "Succeed"}
    return {"StartAt": "Step 0", "States": body}


def map_definition() -> dict[str, Any]:
    return {
        "StartAt": "Many",
        "States": {
            "Many": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 100,
                "ItemProcessor": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }


def fetch_seconds(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        json.loads(response.read())
    return time.perf_counter() - started


def mark_ms(context: Any, url: str, selector: str, mark: str) -> float:
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector(selector, timeout=60_000)
        # Resolves on the frame where the console sets the mark (evaluate is not subject to the page's CSP).
        found: float = page.evaluate(
            """mark => new Promise(resolve => {
                const look = () => {
                    const entry = performance.getEntriesByName(mark)[0];
                    if (entry) resolve(entry.startTime); else requestAnimationFrame(look);
                };
                look();
            })""",
            mark,
        )
        return found
    finally:
        page.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=200)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="bench-console-"))
    with (
        (directory / "server.log").open("w") as log,
        machinery_process(f"sqlite:///{directory / 'db'}", log) as base,
    ):
        status, _ = request("POST", f"{base}/w", {"name": "wide", "definition": wide_definition(args.states)})
        assert status == 201, status
        status, _ = request("POST", f"{base}/w", {"name": "many", "definition": map_definition()})
        assert status == 201, status
        started = time.perf_counter()
        status, record = request("POST", f"{base}/e/many?wait=600", {"items": list(range(args.items))})
        assert status == 201 and record["status"] == "SUCCEEDED", record
        ran = time.perf_counter() - started
        events = len(request("GET", f"{base}/e/{record['event_id']}/history")[1]["events"])
        graph_ms, graph_fetch, open_ms, history_fetch = [], [], [], []
        with chromium(directory / "profile") as context:
            for _ in range(args.runs):
                graph_fetch.append(fetch_seconds(f"{base}/ui/api/workflows/wide/graph") * 1000)
                graph_ms.append(
                    mark_ms(
                        context, f"{base}/ui/workflows/wide", "svg.graph[data-drawn]", "machinery:graph-drawn"
                    )
                )
                history_fetch.append(fetch_seconds(f"{base}/e/{record['event_id']}/history") * 1000)
                open_ms.append(
                    mark_ms(
                        context,
                        f"{base}/ui/executions/{record['event_id']}",
                        "[data-execution-status=SUCCEEDED] svg.graph[data-drawn]",
                        "machinery:execution-ready",
                    )
                )
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    median = statistics.median
    print(f"load average: {' '.join(load)}  (cpus: {os.cpu_count()})")
    drawn, fetched = median(graph_ms), median(graph_fetch)
    print(
        f"graph of {args.states} states drawn: {drawn:.0f} ms from navigation (median of {args.runs}); "
        f"its graph JSON fetched alone: {fetched:.0f} ms; ratio {drawn / fetched:.1f}"
    )
    opened, history = median(open_ms), median(history_fetch)
    print(
        f"execution with a {args.items}-item Map ({events} events, ran {ran:.1f} s) ready: {opened:.0f} ms "
        f"from navigation; its whole history fetched alone: {history:.0f} ms; ratio {opened / history:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
