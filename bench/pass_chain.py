"""The pure interpreter's cost per transition: a chain of Pass states run in memory.

No storage, no HTTP, no threads: one :meth:`Interpreter.start` on a fresh root branch runs the whole chain
(Pass states never wait on the outside world), so the time per call divided by the number of states is
the interpreter's own cost of one transition, history entries included. Target: at most 20 µs.

Run from the repository root::

    python -m bench.pass_chain [--states 100] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from machinery.asl.compiler import compile_machine
from machinery.engine.interpreter import Interpreter, Limits, iso_time
from machinery.engine.types import SUCCEEDED, Branch, ExecutionContext

#: The issue's target for one transition of the pure interpreter, in microseconds.
TARGET_US = 20.0


def chain_definition(states: int, *, parameters: bool = False) -> dict[str, Any]:
    """``states`` Pass states in a row; with ``parameters`` each one also renders a payload template."""
    body: dict[str, dict[str, Any]] = {}
    for index in range(states):
        state: dict[str, Any] = {"Type": "Pass"}
        if parameters:
            state["Parameters"] = {"message.$": "$.message", "step": index}
        if index == states - 1:
            state["End"] = True
        else:
            state["Next"] = f"P{index + 1}"
        body[f"P{index}"] = state
    return {"StartAt": "P0", "States": body}


def measure(states: int, seconds: float, *, parameters: bool, data_limit: int) -> dict[str, Any]:
    """Run the chain repeatedly for about ``seconds`` and return per-transition timings in µs."""
    machine = compile_machine(chain_definition(states, parameters=parameters))
    document = {"message": "The Sun will rise in the morning !"}
    now = time.time()
    context = ExecutionContext(
        execution_id="bench",
        name="bench",
        input=document,
        start_time=iso_time(now),
        state_machine_id="bench",
        state_machine_name="pass-chain",
    )
    limits = Limits(data_limit=data_limit)
    root = Branch(branch_id="bench", execution_id="bench", container=(), state_input=document)

    def run_once() -> None:
        step = Interpreter(machine, context, limits).start(root, now)
        if step.branch.status != SUCCEEDED:
            raise RuntimeError(f"the chain did not succeed: {step.branch.status} {step.branch.error}")

    for _ in range(20):  # warm caches (compiled paths, templates)
        run_once()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        run_once()
        samples.append((time.perf_counter() - started) / states * 1e6)
    samples.sort()
    return {
        "states": states,
        "parameters": parameters,
        "data_limit": data_limit,
        "runs": len(samples),
        "us_per_transition_median": statistics.median(samples),
        "us_per_transition_min": samples[0],
        "us_per_transition_p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pass_chain", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--states", type=int, default=100, help="Pass states in the chain (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="measuring time per variant (default: %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)

    variants = [
        ("plain Pass (default data limit)", False, Limits().data_limit),
        ("Pass + Parameters", True, Limits().data_limit),
        ("plain Pass, data limit off", False, 0),
    ]
    results = []
    for label, parameters, data_limit in variants:
        result = measure(args.states, args.seconds, parameters=parameters, data_limit=data_limit)
        result["variant"] = label
        results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{args.states} Pass states, pure interpreter, target <= {TARGET_US:g} us per transition")
        print(f"{'variant':<34} {'runs':>7} {'median us':>10} {'min us':>8} {'p99 us':>8}")
        for result in results:
            print(
                f"{result['variant']:<34} {result['runs']:>7} {result['us_per_transition_median']:>10.2f} "
                f"{result['us_per_transition_min']:>8.2f} {result['us_per_transition_p99']:>8.2f}"
            )
        verdict = "met" if results[0]["us_per_transition_median"] <= TARGET_US else "NOT met"
        print(f"target ({TARGET_US:g} us, plain Pass): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
