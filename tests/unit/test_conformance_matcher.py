"""The stricter comparison of the conformance runner: placeholders match only non-empty values of their
kind, and a numbered placeholder is one value everywhere in a case."""

from __future__ import annotations

from tests.acceptance.conformance import Matcher, judge

UUID_A = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
UUID_B = "ffffffff-4f50-6172-8394-a5b6c7d8e9f0"


def test_whole_placeholders_need_a_value_of_their_kind() -> None:
    matcher = Matcher()
    assert matcher.matches("timestamp", "2026-01-01T00:00:00.000Z")
    assert matcher.matches("timestamp", 1767225600.5)
    assert not matcher.matches("timestamp", "")
    assert not matcher.matches("timestamp", None)
    assert not matcher.matches("timestamp", "yesterday")
    assert matcher.matches("snf_role_arn", "arn:aws:iam::123456789012:role/x")
    assert not matcher.matches("snf_role_arn", "a role")
    assert matcher.matches("generated-uuid", UUID_A) and not matcher.matches("generated-uuid", "1234")
    assert matcher.matches("date", "Tue, 01 Dec 2026 09:01:23 GMT")


def test_numbered_placeholders_are_one_value_per_case() -> None:
    matcher = Matcher()
    assert matcher.matches({"a": "<uuid:1>", "b": "id <uuid:1>"}, {"a": UUID_A, "b": f"id {UUID_A}"})
    assert not Matcher().matches({"a": "<uuid:1>", "b": "<uuid:1>"}, {"a": UUID_A, "b": UUID_B})
    assert Matcher().matches({"a": "<uuid:1>", "b": "<uuid:2>"}, {"a": UUID_A, "b": UUID_B})
    assert not Matcher().matches("<uuid:1>/<uuid:1>", f"{UUID_A}/{UUID_B}")
    assert not Matcher().matches("<uuid:1>", "not-a-uuid")
    arn = "arn:<partition>:states:<region>:111111111111:execution:<ArnPart_0idx>:<ExecArnPart_0idx>"
    assert Matcher().matches(arn, "arn:aws:states:us-east-1:000000000000:execution:machine:run")
    assert not Matcher().matches(arn, "arn:aws:states:us-east-1:000000000000:execution::run")
    assert not Matcher().matches(arn, "arn:aws:states:us-east-1:0000:execution:machine:run")


def test_causes_are_gated_where_aws_recorded_one() -> None:
    case = {"expected": {"status": "FAILED", "error": "E", "cause": "it broke at <uuid:1>"}}
    assert judge(case, {"status": "FAILED", "error": "E", "cause": f"it broke at {UUID_A}"})[0]
    passed, reason, cause_ok = judge(case, {"status": "FAILED", "error": "E", "cause": "something else"})
    assert not passed and not cause_ok and reason.startswith("cause")
    no_cause = {"expected": {"status": "FAILED", "error": "E"}}
    assert judge(no_cause, {"status": "FAILED", "error": "E", "cause": "anything"})[0]
