"""Choice rules of the JSONPath query language.

A rule is either a boolean combination (``And``, ``Or``, ``Not``) or a comparison of the value at
``Variable`` with a literal or with the value at another path (the ``...Path`` comparators). As on AWS,
comparing values of the wrong type is simply false, while a ``Variable`` (or comparison path) that
selects nothing fails the state with ``States.Runtime``; ``IsPresent`` is the one test that tolerates a
missing value, since that is what it asks about.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.jsonpath import JsonPath, PathNotFound, compile_path

__all__ = ["COMPARATORS", "evaluate_rule", "parse_timestamp", "validate_rule"]

_RULE_EXTRAS = frozenset({"Next", "Comment", "Assign", "Output"})

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_timestamp(value: Any) -> tuple[int, int] | None:
    """Parse an RFC 3339 timestamp into ``(epoch seconds, nanoseconds)``, or ``None`` if it is not one.

    AWS requires the date, the ``T``, seconds and an offset (``Z`` or ``±hh:mm``); fractions of a second
    are kept to the nanosecond so that two timestamps compare exactly.
    """
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(index)) for index in range(1, 7))
    fraction, zulu, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10, 11)
    if zulu:
        offset = timedelta(0)
    else:
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            return None
        offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        if sign == "-":
            offset = -offset
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError:
        return None
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return int(moment.timestamp()), nanos


def _string_keys(left: str, right: str) -> tuple[str, str] | tuple[bytes, bytes]:
    # Java compares strings by UTF-16 code units; only characters outside the BMP order differently,
    # and then both sides are compared as UTF-16 (big-endian bytes keep code-unit order).
    if any(ord(char) > 0xFFFF for char in left + right):
        return left.encode("utf-16-be"), right.encode("utf-16-be")
    return left, right


def _ordered(left: Any, right: Any, test: Callable[[int], bool]) -> bool:
    """Apply ``test`` to the sign of ``left - right``."""
    return test((left > right) - (left < right))


@functools.lru_cache(maxsize=1024)
def _matches_pattern(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare_strings(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if not isinstance(left, str) or not isinstance(right, str):
            return False
        left_key, right_key = _string_keys(left, right)
        return _ordered(left_key, right_key, test)

    return compare


def _compare_numbers(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if not _is_number(left) or not _is_number(right):
            return False
        return _ordered(left, right, test)

    return compare


def _compare_timestamps(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        left_time = parse_timestamp(left)
        right_time = parse_timestamp(right)
        if left_time is None or right_time is None:
            return False
        return _ordered(left_time, right_time, test)

    return compare


def _boolean_equals(left: Any, right: Any) -> bool:
    return isinstance(left, bool) and isinstance(right, bool) and left == right


def _string_matches(left: Any, right: Any) -> bool:
    if not isinstance(left, str) or not isinstance(right, str):
        return False
    return _matches_pattern(right).fullmatch(left) is not None


def _type_test(check: Callable[[Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, expected: Any) -> bool:
        return check(left) is expected

    return compare


def _eq(sign: int) -> bool:
    return sign == 0


def _lt(sign: int) -> bool:
    return sign < 0


def _gt(sign: int) -> bool:
    return sign > 0


def _le(sign: int) -> bool:
    return sign <= 0


def _ge(sign: int) -> bool:
    return sign >= 0


#: Comparator name -> (test of (variable value, operand), kind of literal operand it takes).
COMPARATORS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "StringEquals": (_compare_strings(_eq), "string"),
    "StringLessThan": (_compare_strings(_lt), "string"),
    "StringGreaterThan": (_compare_strings(_gt), "string"),
    "StringLessThanEquals": (_compare_strings(_le), "string"),
    "StringGreaterThanEquals": (_compare_strings(_ge), "string"),
    "StringMatches": (_string_matches, "string"),
    "NumericEquals": (_compare_numbers(_eq), "number"),
    "NumericLessThan": (_compare_numbers(_lt), "number"),
    "NumericGreaterThan": (_compare_numbers(_gt), "number"),
    "NumericLessThanEquals": (_compare_numbers(_le), "number"),
    "NumericGreaterThanEquals": (_compare_numbers(_ge), "number"),
    "BooleanEquals": (_boolean_equals, "boolean"),
    "TimestampEquals": (_compare_timestamps(_eq), "timestamp"),
    "TimestampLessThan": (_compare_timestamps(_lt), "timestamp"),
    "TimestampGreaterThan": (_compare_timestamps(_gt), "timestamp"),
    "TimestampLessThanEquals": (_compare_timestamps(_le), "timestamp"),
    "TimestampGreaterThanEquals": (_compare_timestamps(_ge), "timestamp"),
    "IsNull": (_type_test(lambda value: value is None), "boolean"),
    "IsNumeric": (_type_test(_is_number), "boolean"),
    "IsString": (_type_test(lambda value: isinstance(value, str)), "boolean"),
    "IsBoolean": (_type_test(lambda value: isinstance(value, bool)), "boolean"),
    "IsTimestamp": (_type_test(lambda value: parse_timestamp(value) is not None), "boolean"),
    "IsPresent": (_type_test(lambda value: True), "boolean"),
}
# StringMatches and the Is* tests have no ...Path form.
_PATH_FORMS = {
    f"{name}Path": name for name in COMPARATORS if not name.startswith("Is") and name != "StringMatches"
}


def _invalid_path(path: str) -> StatesError:
    return StatesError(
        "States.Runtime",
        f"Invalid path '{path}': The choice state's condition path references an invalid value.",
    )


def _resolve(path: JsonPath, data: Any, context: Any, variables: Mapping[str, Any] | None) -> Any:
    try:
        return path.evaluate(data, context, variables)
    except PathNotFound as exc:
        raise _invalid_path(path.expr) from exc


def _find_comparator(rule: Mapping[str, Any]) -> str | None:
    for key in rule:
        if key in COMPARATORS or key in _PATH_FORMS:
            return key
    return None


def evaluate_rule(
    rule: Mapping[str, Any], data: Any, context: Any = None, variables: Mapping[str, Any] | None = None
) -> bool:
    """Evaluate a Choice rule (a top-level choice or a nested rule) against a state's input.

    :raises StatesError: ``States.Runtime`` when ``Variable`` or a ``...Path`` operand selects nothing
        (except for ``IsPresent``).
    :raises PathSyntaxError: the rule holds a malformed path (rules are meant to be validated first).
    """
    if not isinstance(rule, Mapping):
        raise PathSyntaxError("a Choice rule must be an object")
    if "And" in rule:
        return all(evaluate_rule(inner, data, context, variables) for inner in _rule_list(rule["And"]))
    if "Or" in rule:
        return any(evaluate_rule(inner, data, context, variables) for inner in _rule_list(rule["Or"]))
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], data, context, variables)
    comparator = _find_comparator(rule)
    if comparator is None or "Variable" not in rule:
        raise PathSyntaxError("a Choice rule needs a Variable and a comparator, or And, Or or Not")
    variable = compile_path(rule["Variable"])
    operand = rule[comparator]
    if comparator == "IsPresent":
        return variable.exists(data, context, variables) is operand
    value = _resolve(variable, data, context, variables)
    base = _PATH_FORMS.get(comparator)
    if base is not None:
        operand = _resolve(compile_path(operand), data, context, variables)
        comparator = base
    return COMPARATORS[comparator][0](value, operand)


def _rule_list(rules: Any) -> list[Any]:
    if not isinstance(rules, list):
        raise PathSyntaxError("And and Or take an array of Choice rules")
    return rules


def validate_rule(rule: Any, where: str) -> list[str]:
    """Return the problems of a Choice rule, each prefixed with ``where`` (empty if none)."""
    problems: list[str] = []
    _validate(rule, where, problems)
    return problems


def _validate(rule: Any, where: str, problems: list[str]) -> None:
    if not isinstance(rule, Mapping):
        problems.append(f"{where}: a Choice rule must be an object")
        return
    for combinator in ("And", "Or"):
        if combinator in rule:
            inner = rule[combinator]
            if not isinstance(inner, list) or not inner:
                problems.append(f"{where}/{combinator}: must be a non-empty array of rules")
                return
            for index, item in enumerate(inner):
                _validate(item, f"{where}/{combinator}[{index}]", problems)
            _check_no_extras(rule, {combinator}, where, problems)
            return
    if "Not" in rule:
        _validate(rule["Not"], f"{where}/Not", problems)
        _check_no_extras(rule, {"Not"}, where, problems)
        return
    comparators = [key for key in rule if key in COMPARATORS or key in _PATH_FORMS]
    if len(comparators) != 1:
        found = ", ".join(comparators) if comparators else "none"
        problems.append(f"{where}: a Choice rule needs exactly one comparator (found {found})")
        return
    comparator = comparators[0]
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        problems.append(f"{where}/Variable: a Choice rule needs a Variable path")
    else:
        _check_path(variable, f"{where}/Variable", problems)
    operand = rule[comparator]
    if comparator in _PATH_FORMS:
        if not isinstance(operand, str):
            problems.append(f"{where}/{comparator}: must be a path")
        else:
            _check_path(operand, f"{where}/{comparator}", problems)
    else:
        problem = _operand_problem(COMPARATORS[comparator][1], operand)
        if problem:
            problems.append(f"{where}/{comparator}: {problem}")
    _check_no_extras(rule, {comparator, "Variable"}, where, problems)


def _operand_problem(kind: str, operand: Any) -> str | None:
    if kind == "string" and not isinstance(operand, str):
        return "must be a string"
    if kind == "number" and not _is_number(operand):
        return "must be a number"
    if kind == "boolean" and not isinstance(operand, bool):
        return "must be a boolean"
    if kind == "timestamp" and parse_timestamp(operand) is None:
        return "must be an RFC 3339 timestamp such as 2016-03-14T01:59:00Z"
    return None


def _check_path(path: str, where: str, problems: list[str]) -> None:
    try:
        compile_path(path)
    except PathSyntaxError as exc:
        problems.append(f"{where}: {exc}")


def _check_no_extras(rule: Mapping[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    extras = [key for key in rule if key not in allowed and key not in _RULE_EXTRAS]
    if extras:
        problems.append(f"{where}: unexpected field(s) {', '.join(sorted(extras))}")
