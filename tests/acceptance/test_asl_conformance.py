"""Every ASL conformance case recorded against AWS Step Functions, run on a real server: over the native
HTTP API and again through boto3 (the AWS API), with the same floors.

One ``machinery serve`` subprocess (temporary SQLite, ``MACHINERY_TIME_SCALE=0``) and one Lambda Invoke
stub run all cases of ``../shared/asl-conformance`` concurrently (see :mod:`tests.acceptance.conformance`).
A case passes when its status, its output or its error and cause (where AWS recorded one), and the
sequence of its history's event types equal AWS's. JSONPath-only cases are gated by
:data:`JSONPATH_FLOOR`, JSONata and variables cases by :data:`JSONATA_FLOOR`. ``docs/conformance.md``
lists every remaining failure and why.
"""

from __future__ import annotations

import pytest

from tests.acceptance.conformance import CASE_PATHS, CaseResult, load_cases, report, run_all, tallies
from tests.shared import needs_shared

pytestmark = needs_shared(*CASE_PATHS)

#: Pass rate (percent) the JSONPath-only cases must reach: what the engine reaches, rounded down.
JSONPATH_FLOOR = 99
#: Pass rate (percent) the JSONata/variables cases must reach: what the engine reaches, rounded down.
JSONATA_FLOOR = 100
#: The cases that fail, each explained in docs/conformance.md: nothing else may fail, whatever the floors.
KNOWN_FAILURES = frozenset(
    {
        "tests/aws/services/stepfunctions/v2/scenarios/test_base_scenarios.py::TestBaseScenarios::test_parallel_state_nested"
    }
)


@pytest.fixture(scope="module", params=["native", "aws"])
def results(request: pytest.FixtureRequest) -> list[CaseResult]:
    return run_all(load_cases(), via=request.param)


def _failures(results: list[CaseResult], jsonata: bool) -> str:
    lines = [f"- {r.case_id}: {r.reason[:300]}" for r in results if not r.passed and r.jsonata == jsonata]
    return "\n".join(lines)


def test_every_case_ran(results: list[CaseResult]) -> None:
    groups = tallies(results)
    assert groups["file pure"].total == len([r for r in results if r.kind == "pure"]) > 0
    assert groups["file lambda"].total > 0
    assert all(r.reason or r.passed for r in results)


def test_jsonpath_only_cases_match_aws(results: list[CaseResult], capsys: pytest.CaptureFixture[str]) -> None:
    summary = report(results)
    with capsys.disabled():
        print("\n" + summary)
    rate = tallies(results)["JSONPath-only"].rate
    assert rate >= JSONPATH_FLOOR, f"{summary}\n\nJSONPath-only failures:\n{_failures(results, False)}"


def test_jsonata_cases_match_aws(results: list[CaseResult]) -> None:
    jsonata = tallies(results).get("JSONata/variables")
    assert jsonata is not None and jsonata.total > 0
    assert jsonata.rate >= JSONATA_FLOOR, f"JSONata/variables failures:\n{_failures(results, True)}"


def test_only_the_known_cases_fail(results: list[CaseResult]) -> None:
    failed = {r.case_id: r.reason for r in results if not r.passed}
    unexpected = {case: reason for case, reason in failed.items() if case not in KNOWN_FAILURES}
    assert not unexpected, unexpected
