"""The tables and syntax checks behind :mod:`machinery.asl.validation`: which fields each state type
allows, AWS's limits, and the checks of paths, intrinsic functions, timestamps and resources.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

SCHEMA = "SCHEMA_VALIDATION_FAILED"
JSONPATH = "JSONPath"
JSONATA = "JSONata"

_STATE_TYPES = ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
_TRANSITIONING = frozenset({"Pass", "Task", "Wait", "Parallel", "Map"})
_WITH_ERROR_HANDLING = frozenset({"Task", "Parallel", "Map"})
_MAX_STATE_NAME = 80
_MAX_LABEL = 40
_MAX_SECONDS = 99_999_999


def _fields(**by_type: str) -> dict[str, frozenset[str]]:
    return {state_type: frozenset(names.split()) for state_type, names in by_type.items()}


#: Fields every state type accepts whatever its query language.
_COMMON_FIELDS = _fields(
    Pass="Result",
    Task="Resource Credentials TimeoutSeconds HeartbeatSeconds",
    Choice="Choices Default",
    Wait="Seconds Timestamp",
    Succeed="",
    Fail="Error Cause",
    Parallel="Branches",
    Map="ItemProcessor Iterator ItemReader ItemSelector ItemBatcher ResultWriter MaxConcurrency "
    "ToleratedFailureCount ToleratedFailurePercentage Label",
)
_IO = "InputPath OutputPath"
_RESULT = "Parameters ResultPath ResultSelector"
#: Fields of the JSONPath query language, per state type.
_JSONPATH_FIELDS = _fields(
    Pass=f"{_IO} Parameters ResultPath",
    Task=f"{_IO} {_RESULT} TimeoutSecondsPath HeartbeatSecondsPath",
    Choice=_IO,
    Wait=f"{_IO} SecondsPath TimestampPath",
    Succeed=_IO,
    Fail="ErrorPath CausePath",
    Parallel=f"{_IO} {_RESULT}",
    Map=f"{_IO} {_RESULT} ItemsPath MaxConcurrencyPath ToleratedFailureCountPath "
    "ToleratedFailurePercentagePath",
)
#: Fields of the JSONata query language, per state type.
_JSONATA_FIELDS = _fields(
    Pass="Output",
    Task="Output Arguments",
    Choice="Output",
    Wait="Output",
    Succeed="Output",
    Fail="",
    Parallel="Output Arguments",
    Map="Output Items",
)
_ALL_JSONPATH_ONLY = frozenset().union(*_JSONPATH_FIELDS.values()) | {"Result"}
_ALL_JSONATA_ONLY = frozenset().union(*_JSONATA_FIELDS.values())

_RELATIONS = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
#: Choice rule comparison operators and the kind of value each takes.
_COMPARATORS: dict[str, str] = {
    **{f"String{op}": "string" for op in _RELATIONS},
    "StringMatches": "string",
    **{f"Numeric{op}": "number" for op in _RELATIONS},
    "BooleanEquals": "boolean",
    **{f"Timestamp{op}": "timestamp" for op in _RELATIONS},
    **{f"Is{kind}": "boolean" for kind in ("Null", "Present", "Numeric", "String", "Boolean", "Timestamp")},
}
_COMPARATORS.update(
    {
        f"{name}Path": "path"
        for name in list(_COMPARATORS)
        if not name.startswith("Is") and name != "StringMatches"
    }
)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$"
)
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VARIABLE_PATH = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.DOTALL)
_HTTP_INVOKE = "arn:aws:states:::http:invoke"
#: What an ItemReader may read from: AWS's S3 readers (accepted, not run) and the HTTP task.
_READER_RESOURCES = ("arn:aws:states:::s3:getObject", "arn:aws:states:::s3:listObjectsV2", _HTTP_INVOKE)
_READER_CONFIG_FIELDS = (
    "InputType",
    "CSVHeaderLocation",
    "CSVHeaders",
    "CSVDelimiter",
    "MaxItems",
    "MaxItemsPath",
    "ManifestType",
)
_LABEL_FORBIDDEN = frozenset(' <>{}[]?*"#%\\^|~`$&,;:/')


def _pointer(base: str, *tokens: str | int) -> str:
    parts = [str(token).replace("~", "~0").replace("/", "~1") for token in tokens]
    return "/".join([base, *parts])


def _type_name(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        return "ARRAY"
    return "OBJECT"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_rfc3339(text: str) -> bool:
    """Tell whether ``text`` is an RFC 3339 date-time such as ``2016-03-14T01:59:00Z``."""
    match = _RFC3339.match(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    if match.group(9) is not None and (int(match.group(9)) > 23 or int(match.group(10)) > 59):
        return False
    return second <= 60


def _path_error(expr: str, *, definite: bool, context: bool = True) -> str | None:
    """Return why ``expr`` is not a JSONPath (a reference path when ``definite``), or ``None``."""
    if not expr.startswith("$"):
        return "must start with '$'"
    if expr.startswith("$$") and not context:
        return "cannot refer to the context object"
    variable = _VARIABLE_PATH.match(expr)
    if variable is not None:
        rest = variable.group(2)
        if rest and rest[0] not in ".[":
            return "is not a valid variable reference"
        expr = "$" + rest
    try:
        from machinery.asl.errors import PathSyntaxError
        from machinery.asl.jsonpath import compile_path
    except ImportError:
        return _fallback_path_error(expr, definite=definite)
    try:
        compiled = compile_path(expr)
    except PathSyntaxError as exc:
        return str(exc) or "is not a valid JSONPath"
    if definite and not compiled.is_definite:
        return "must be a reference path (a single, definite node)"
    return None


def _fallback_path_error(expr: str, *, definite: bool) -> str | None:
    depth = 0
    quote: str | None = None
    for char in expr:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth < 0:
                return "has unbalanced brackets"
    if depth != 0 or quote is not None:
        return "has unbalanced brackets or quotes"
    if expr.endswith(".") or "..." in expr:
        return "is not a valid JSONPath"
    if definite and re.search(r"\*|\.\.|\?\(|\[[^\]'\"]*[:,]", expr):
        return "must be a reference path (a single, definite node)"
    return None


def _intrinsic_error(expr: str) -> str | None:
    """Return why ``expr`` is not an intrinsic function call, or ``None``."""
    try:
        from machinery.asl.errors import PathSyntaxError
        from machinery.asl.intrinsics import parse_intrinsic
    except ImportError:
        if not re.match(r"^States\.[A-Za-z0-9]+\(", expr) or not expr.rstrip().endswith(")"):
            return "is not a valid intrinsic function call"
        return _fallback_path_error(expr, definite=False)
    try:
        parse_intrinsic(expr)
    except PathSyntaxError as exc:
        return str(exc) or "is not a valid intrinsic function call"
    return None


_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,80}(\.waitForTaskToken)?$")


def _is_resource(value: Any) -> bool:
    """Machinery accepts, besides AWS ARNs, URLs and the names of registered services."""
    if not isinstance(value, str):
        return False
    if value.startswith("arn:"):
        return True
    if value.startswith(("http://", "https://")):
        return len(value) > len("https://") and not any(c.isspace() for c in value)
    return bool(_SERVICE_NAME.match(value))


_ACTIVITY_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:activity:[^:]+$")
_INTEGRATION = re.compile(r"^arn:aws[a-z-]*:states:::")
#: The service integrations machinery runs (``Resource`` without ``.waitForTaskToken``).
_INTEGRATIONS = frozenset({"lambda:invoke", "http:invoke"})


def runnable_resource(resource: str) -> bool:
    """Whether machinery runs a Task ``Resource`` that names a service integration
    (``arn:aws:states:::<service>:<action>``): the Lambda and HTTP ones, optionally ``.waitForTaskToken``.
    Other resources (URLs, services, Lambda functions, activities) are not integrations."""
    if _INTEGRATION.match(resource) is None:
        return True
    return _INTEGRATION.sub("", resource).removesuffix(".waitForTaskToken") in _INTEGRATIONS


def express_refusal(resource: str) -> str | None:
    """Why an express state machine refuses a Task ``Resource`` (as AWS words it), if it does."""
    for suffix in (".sync", ".waitForTaskToken"):
        if suffix in resource:
            return f"Express state machine does not support '{suffix}' service integration"
    if _ACTIVITY_ARN.match(resource):
        return "Express state machine does not support Activities"
    return None
