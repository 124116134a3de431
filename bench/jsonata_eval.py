"""The cost of one JSONata ``Output`` evaluation on a typical state input.

A ~20-field document, one compiled expression evaluated many times with ``$states`` and two variables
bound: what a JSONata Pass or Task state pays for its ``Output`` on top of the interpreter's own
transition cost (see ``bench/pass_chain.py``).

Run from the repository root::

    python -m bench.jsonata_eval [--seconds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from machinery.asl.jsonata import compile_expression, evaluate_template

OUTPUT = '{% {"total": $sum($states.input.items.price), "name": $uppercase($states.input.name)} %}'


def typical_states() -> dict[str, Any]:
    """``$states`` for a state whose input has 20 top-level fields, five of them line items."""
    document: dict[str, Any] = {f"field{index}": f"value {index}" for index in range(17)}
    document["name"] = "ada lovelace"
    document["count"] = 5
    document["items"] = [{"sku": f"sku-{index}", "price": 1.25 * index, "qty": index} for index in range(5)]
    context = {
        "Execution": {"Id": "arn:aws:states:local:0:execution:m:e", "Name": "e", "Input": document},
        "State": {"Name": "Summarise", "EnteredTime": "2024-01-01T00:00:00.000Z"},
    }
    return {"input": document, "context": context}


def measure(label: str, call: Any, seconds: float) -> dict[str, Any]:
    """Call ``call`` in rounds for about ``seconds``; return µs per call (median and best round)."""
    for _ in range(200):
        call()
    rounds: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        count = 1_000
        start = time.perf_counter()
        for _ in range(count):
            call()
        rounds.append((time.perf_counter() - start) / count * 1e6)
    return {"what": label, "median_us": statistics.median(rounds), "best_us": min(rounds)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each measurement")
    args = parser.parse_args(argv)
    states = typical_states()
    variables = {"customer": "c-42", "limit": 10}
    expression = compile_expression(OUTPUT)
    template = {"summary": OUTPUT, "customer": "{% $customer %}", "static": "literal"}
    results = [
        measure(
            "Output expression, compiled once", lambda: expression.evaluate(states, variables), args.seconds
        ),
        measure(
            "Output template (2 expressions)",
            lambda: evaluate_template(template, states, variables, "Output"),
            args.seconds,
        ),
    ]
    for row in results:
        median, best = row["median_us"], row["best_us"]
        print(f"{row['what']:36} {median:8.1f} µs per evaluation (best round {best:.1f} µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
