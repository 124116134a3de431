"""The 18 ``States.*`` intrinsic functions of the JSONPath query language.

An intrinsic is written as the value of a ``"key.$"`` field, e.g.
``"States.Format('Hello {}', States.ArrayGetItem($.names, 0))"``. Calls are parsed once into an
:class:`IntrinsicCall` tree (cached) and evaluated against the state's data, the context object and the
variables. Results follow what AWS returns, which is Java's behaviour in a few places (``Math.round``
for non-integer numbers, ``Map.toString`` for objects in ``States.Format``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.jsonpath import JsonPath, compile_path, json_equal
from machinery.jsontext import dumps_compact

__all__ = [
    "IntrinsicCall",
    "evaluate_intrinsic",
    "is_intrinsic",
    "parse_intrinsic",
]

INTRINSIC_FAILURE = "States.IntrinsicFailure"
_MAX_STRING_INPUT = 10_000
_MAX_ARRAY_RANGE = 1_000
_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1

_NAME = re.compile(r"States\.([A-Za-z0-9]+)\s*\(")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}


@dataclass(frozen=True, slots=True)
class StringLiteral:
    """A quoted string argument.

    ``raw`` keeps the escapes, so that ``States.Format`` can tell a literal ``\\{`` from a placeholder.
    """

    value: str
    raw: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A number, ``true``, ``false`` or ``null`` argument."""

    value: Any


@dataclass(frozen=True, slots=True)
class PathArgument:
    """A ``$...``, ``$$...`` or ``$variable...`` argument."""

    path: JsonPath


Argument: TypeAlias = "StringLiteral | Literal | PathArgument | IntrinsicCall"


@dataclass(frozen=True, slots=True)
class IntrinsicCall:
    """A parsed ``States.Name(arguments...)`` call."""

    name: str
    arguments: tuple[Argument, ...]

    def evaluate(self, data: Any, context: Any = None, variables: Mapping[str, Any] | None = None) -> Any:
        """Evaluate the call.

        :raises StatesError: ``States.IntrinsicFailure`` for arguments the function cannot accept.
        :raises PathNotFound: a Reference Path argument selects nothing.
        """
        values = [_evaluate_argument(argument, data, context, variables) for argument in self.arguments]
        function = _FUNCTIONS[self.name][0]
        return function(self, values)


def _evaluate_argument(
    argument: Argument, data: Any, context: Any, variables: Mapping[str, Any] | None
) -> Any:
    if isinstance(argument, PathArgument):
        return argument.path.evaluate(data, context, variables)
    if isinstance(argument, IntrinsicCall):
        return argument.evaluate(data, context, variables)
    return argument.value


def is_intrinsic(expr: str) -> bool:
    """Tell whether a ``.$`` field value is an intrinsic function call rather than a path."""
    return isinstance(expr, str) and expr.lstrip().startswith("States.")


def parse_intrinsic(expr: str) -> IntrinsicCall:
    """Parse an intrinsic function call (cached).

    :raises PathSyntaxError: the call is malformed, names an unknown function or has the wrong
        number of arguments.
    """
    if not isinstance(expr, str):
        raise PathSyntaxError(f"An intrinsic function call must be a string, not {type(expr).__name__}")
    return _parse_intrinsic(expr)


@functools.lru_cache(maxsize=4096)
def _parse_intrinsic(expr: str) -> IntrinsicCall:
    parser = _IntrinsicParser(expr)
    call = parser.parse_call()
    parser.skip_spaces()
    if parser.pos != len(expr):
        raise parser.error("unexpected text after the call")
    return call


def evaluate_intrinsic(
    expr: str, data: Any, context: Any = None, variables: Mapping[str, Any] | None = None
) -> Any:
    """Parse (cached) and evaluate an intrinsic function call.

    :raises PathSyntaxError: the call is malformed.
    :raises StatesError: ``States.IntrinsicFailure`` for arguments the function cannot accept.
    :raises PathNotFound: a Reference Path argument selects nothing.
    """
    return parse_intrinsic(expr).evaluate(data, context, variables)


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


class _IntrinsicParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> PathSyntaxError:
        return PathSyntaxError(f"Invalid intrinsic function {self.text!r} at position {self.pos}: {message}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse_call(self) -> IntrinsicCall:
        """Parse ``States.<Function>(<arguments>)``."""
        self.skip_spaces()
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise self.error("expected 'States.<Function>('")
        name = match.group(1)
        if name not in _FUNCTIONS:
            raise self.error(f"unknown intrinsic function States.{name}")
        self.pos = match.end()
        arguments: list[Argument] = []
        self.skip_spaces()
        if self.text.startswith(")", self.pos):
            self.pos += 1
        else:
            while True:
                arguments.append(self.parse_argument())
                self.skip_spaces()
                char = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if char == ")":
                    break
                if char != ",":
                    self.pos -= 1
                    raise self.error("expected ',' or ')'")
        call = IntrinsicCall(name, tuple(arguments))
        _check_arity(call, self)
        return call

    def parse_argument(self) -> Argument:
        """One argument: a string, a path, a nested call, a number, a boolean or null."""
        self.skip_spaces()
        text = self.text
        char = text[self.pos : self.pos + 1]
        if char == "'":
            return self.parse_string()
        if char == "$":
            return self.parse_path()
        if text.startswith("States.", self.pos):
            return self.parse_call()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, self.pos):
                self.pos += len(word)
                return Literal(value)
        match = _NUMBER.match(text, self.pos)
        if match:
            self.pos = match.end()
            token = match.group()
            number: int | float = float(token) if any(c in token for c in ".eE") else int(token)
            return Literal(number)
        if not char:
            raise self.error("unexpected end of the call")
        raise self.error(f"unexpected character {char!r}")

    def parse_string(self) -> StringLiteral:
        """A single-quoted string literal, with its backslash escapes resolved."""
        start = self.pos + 1
        self.pos = start
        chars: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated string literal")
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < len(text):
                chars.append(text[self.pos + 1])
                self.pos += 2
                continue
            if char == "'":
                raw = text[start : self.pos]
                self.pos += 1
                return StringLiteral("".join(chars), raw)
            chars.append(char)
            self.pos += 1

    def parse_path(self) -> PathArgument:
        """A path argument (``$.a`` or ``$$.Execution.Id``), up to the next separator."""
        # A path runs to the next ',' or ')' that is not inside brackets, parentheses or quotes.
        start = self.pos
        text = self.text
        depth = 0
        quote = ""
        while self.pos < len(text):
            char = text[self.pos]
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        source = text[start : self.pos].rstrip()
        try:
            return PathArgument(compile_path(source))
        except PathSyntaxError as exc:
            raise self.error(str(exc)) from exc


def _check_arity(call: IntrinsicCall, parser: _IntrinsicParser) -> None:
    low, high = _FUNCTIONS[call.name][1]
    count = len(call.arguments)
    if count < low or (high is not None and count > high):
        if high is None:
            expected = f"at least {low}"
        elif low == high:
            expected = str(low)
        else:
            expected = f"{low} to {high}"
        raise parser.error(f"States.{call.name} takes {expected} argument(s), got {count}")
    if call.name == "Format":
        first = call.arguments[0]
        if isinstance(first, Literal | IntrinsicCall):
            raise parser.error("the first argument of States.Format must be a string or a path")


# --------------------------------------------------------------------------------------------------
# Argument checks shared by the functions
# --------------------------------------------------------------------------------------------------


def _fail(call: IntrinsicCall, message: str) -> StatesError:
    return StatesError(INTRINSIC_FAILURE, f"Invalid arguments in States.{call.name}: {message}")


def _string(call: IntrinsicCall, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _fail(call, f"{what} must be a string, got {dumps_compact(value)}")
    return value


def _array(call: IntrinsicCall, value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(call, f"{what} must be an array, got {dumps_compact(value)}")
    return value


def java_round(value: float) -> int:
    """Round like Java's ``Math.round`` (half up towards positive infinity), which AWS applies."""
    return math.floor(value + 0.5)


def _integer(call: IntrinsicCall, value: Any, what: str) -> int:
    """Accept a JSON number as a 32-bit integer, rounding non-integers the way AWS does."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(call, f"{what} must be a number, got {dumps_compact(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(call, f"{what} must be a finite number")
        value = java_round(value)
    number = int(value)
    if not _INT_MIN <= number <= _INT_MAX:
        raise _fail(call, f"{what} must be between {_INT_MIN} and {_INT_MAX}, got {number}")
    return number


def _bounded_string(call: IntrinsicCall, value: Any, what: str) -> str:
    text = _string(call, value, what)
    if len(text) > _MAX_STRING_INPUT:
        raise _fail(call, f"{what} cannot be longer than {_MAX_STRING_INPUT} characters")
    return text


# --------------------------------------------------------------------------------------------------
# The functions
# --------------------------------------------------------------------------------------------------


def _format_value(value: Any) -> str:
    # States.Format renders values as Java's toString does: strings bare, objects as {k=v, ...}.
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_format_value(item)}" for key, item in value.items()) + "}"
    return dumps_compact(value)


def _format(call: IntrinsicCall, values: list[Any]) -> str:
    first = call.arguments[0]
    template = first.raw if isinstance(first, StringLiteral) else _string(call, values[0], "the template")
    arguments = values[1:]
    out: list[str] = []
    used = 0
    index = 0
    length = len(template)
    while index < length:
        char = template[index]
        if char == "\\" and index + 1 < length:
            out.append(template[index + 1])
            index += 2
            continue
        if char == "{" and template.startswith("{}", index):
            if used >= len(arguments):
                raise _fail(call, "the template has more placeholders than arguments")
            out.append(_format_value(arguments[used]))
            used += 1
            index += 2
            continue
        out.append(char)
        index += 1
    if used != len(arguments):
        raise _fail(call, "the template has fewer placeholders than arguments")
    return "".join(out)


def _string_to_json(call: IntrinsicCall, values: list[Any]) -> Any:
    text = _string(call, values[0], "the argument")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _fail(call, f"the argument is not valid JSON: {text}") from exc


def _json_to_string(call: IntrinsicCall, values: list[Any]) -> str:
    return dumps_compact(values[0])


def _array_of(call: IntrinsicCall, values: list[Any]) -> list[Any]:
    return values


def _array_partition(call: IntrinsicCall, values: list[Any]) -> list[list[Any]]:
    items = _array(call, values[0], "the first argument")
    size = _integer(call, values[1], "the chunk size")
    if size <= 0:
        raise _fail(call, f"the chunk size must be greater than 0, got {size}")
    return [items[start : start + size] for start in range(0, len(items), size)]


def _array_contains(call: IntrinsicCall, values: list[Any]) -> bool:
    items = _array(call, values[0], "the first argument")
    wanted = values[1]
    return any(json_equal(item, wanted) for item in items)


def _array_range(call: IntrinsicCall, values: list[Any]) -> list[int]:
    start = _integer(call, values[0], "the start")
    end = _integer(call, values[1], "the end")
    step = _integer(call, values[2], "the step")
    if step == 0:
        raise _fail(call, "the step cannot be 0")
    count = (end - start) // step + 1 if (end - start) * step >= 0 else 0
    if count > _MAX_ARRAY_RANGE:
        raise _fail(call, f"the array cannot hold more than {_MAX_ARRAY_RANGE} items, got {count}")
    return list(range(start, end + (1 if step > 0 else -1), step))


def _array_get_item(call: IntrinsicCall, values: list[Any]) -> Any:
    items = _array(call, values[0], "the first argument")
    index = _integer(call, values[1], "the index")
    if not 0 <= index < len(items):
        raise _fail(call, f"the index {index} is out of bounds for an array of {len(items)} items")
    return items[index]


def _array_length(call: IntrinsicCall, values: list[Any]) -> int:
    return len(_array(call, values[0], "the argument"))


def _array_unique(call: IntrinsicCall, values: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in _array(call, values[0], "the argument"):
        if not any(json_equal(item, seen) for seen in unique):
            unique.append(item)
    return unique


def _base64_encode(call: IntrinsicCall, values: list[Any]) -> str:
    text = _bounded_string(call, values[0], "the argument")
    return base64.b64encode(text.encode()).decode("ascii")


def _base64_decode(call: IntrinsicCall, values: list[Any]) -> str:
    text = _bounded_string(call, values[0], "the argument")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True).decode()
    except (ValueError, binascii.Error) as exc:
        raise _fail(call, f"the argument is not valid Base64: {text}") from exc


def _hash(call: IntrinsicCall, values: list[Any]) -> str:
    text = _bounded_string(call, values[0], "the data")
    algorithm = values[1]
    factory = _HASHES.get(algorithm) if isinstance(algorithm, str) else None
    if factory is None:
        raise _fail(
            call, f"the algorithm must be one of {', '.join(_HASHES)}, got {dumps_compact(algorithm)}"
        )
    digest: str = factory(text.encode()).hexdigest()
    return digest


def _json_merge(call: IntrinsicCall, values: list[Any]) -> dict[str, Any]:
    left, right, deep = values
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise _fail(call, "the first two arguments must be objects")
    if deep is not False:
        # AWS only implements the shallow merge and rejects anything but a literal false.
        raise _fail(call, "only shallow merge is supported, the third argument must be false")
    return {**left, **right}


def _math_random(call: IntrinsicCall, values: list[Any]) -> int:
    start = _integer(call, values[0], "the start")
    end = _integer(call, values[1], "the end")
    if end <= start:
        raise _fail(call, f"the end ({end}) must be greater than the start ({start})")
    generator: random.Random | Any = random
    if len(values) == 3:
        generator = random.Random(_integer(call, values[2], "the seed"))
    result: int = generator.randrange(start, end)
    return result


def _math_add(call: IntrinsicCall, values: list[Any]) -> int:
    total = _integer(call, values[0], "the first argument") + _integer(call, values[1], "the second argument")
    if not _INT_MIN <= total <= _INT_MAX:
        raise _fail(call, f"the sum {total} overflows a 32-bit integer")
    return total


def _string_split(call: IntrinsicCall, values: list[Any]) -> list[str]:
    text = _string(call, values[0], "the first argument")
    delimiters = _string(call, values[1], "the delimiter")
    # Each character of the delimiter separates tokens and empty tokens are dropped, as AWS does.
    if not delimiters:
        return [text] if text else []
    if len(delimiters) == 1:
        return [part for part in text.split(delimiters) if part]
    pattern = "[" + re.escape(delimiters) + "]"
    return [part for part in re.split(pattern, text) if part]


def _uuid(call: IntrinsicCall, values: list[Any]) -> str:
    return str(uuid.uuid4())


_Function: TypeAlias = Callable[[IntrinsicCall, list[Any]], Any]

_FUNCTIONS: dict[str, tuple[_Function, tuple[int, int | None]]] = {
    "Format": (_format, (1, None)),
    "StringToJson": (_string_to_json, (1, 1)),
    "JsonToString": (_json_to_string, (1, 1)),
    "Array": (_array_of, (0, None)),
    "ArrayPartition": (_array_partition, (2, 2)),
    "ArrayContains": (_array_contains, (2, 2)),
    "ArrayRange": (_array_range, (3, 3)),
    "ArrayGetItem": (_array_get_item, (2, 2)),
    "ArrayLength": (_array_length, (1, 1)),
    "ArrayUnique": (_array_unique, (1, 1)),
    "Base64Encode": (_base64_encode, (1, 1)),
    "Base64Decode": (_base64_decode, (1, 1)),
    "Hash": (_hash, (2, 2)),
    "JsonMerge": (_json_merge, (3, 3)),
    "MathRandom": (_math_random, (2, 3)),
    "MathAdd": (_math_add, (2, 2)),
    "StringSplit": (_string_split, (2, 2)),
    "UUID": (_uuid, (0, 0)),
}
