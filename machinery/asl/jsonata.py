"""JSONata expressions of the ``JSONata`` query language: compiling, evaluating, and templates.

A JSONata state writes an expression as a string that starts with ``{%`` and ends with ``%}``, in
``Arguments``, ``Output``, ``Assign``, a Choice rule's ``Condition``, a Map state's ``Items`` and
``ItemSelector``, a Wait state's ``Seconds`` or ``Timestamp``, a Fail state's ``Error`` or ``Cause``, the
timeouts, ``MaxConcurrency``, the tolerated failures, and a Catcher's ``Output`` and ``Assign``. The
expression sees the reserved variable ``$states`` (``input``, ``context``, and where they exist
``result`` and ``errorOutput``) and the workflow variables as ``$name``.

Step Functions adds six functions to JSONata 2.0, registered here: ``$partition``, ``$range``,
``$hash``, ``$random`` (with an optional seed), ``$uuid`` and ``$parse``.

The engine is ``jsonatapy`` (see ``docs/jsonata.md`` for why). Its compiled expressions must not cross
threads (using one from another thread panics), so :class:`CompiledExpression` keeps only the text and
each thread compiles its own native expression on first use; compiling costs a few microseconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import jsonatapy

from machinery.asl.errors import PathSyntaxError, StatesError

__all__ = [
    "QUERY_EVALUATION_ERROR",
    "UNDEFINED",
    "CompiledExpression",
    "QueryEvaluationError",
    "compile_expression",
    "evaluate_template",
    "is_jsonata_expression",
    "undefined_cause",
]

QUERY_EVALUATION_ERROR: Final = "States.QueryEvaluationError"

#: Bounds on one evaluation, so that ``($f := function(){$f()}; $f())`` fails instead of spinning.
EVALUATION_TIMEOUT_MS: Final = 10_000
MAX_STACK_DEPTH: Final = 1_000
#: ``$range`` refuses to build more items than ``States.ArrayRange`` does.
MAX_RANGE_ITEMS: Final = 1_000
#: Entries of each thread's cache of native expressions before it starts afresh.
_THREAD_CACHE_SIZE: Final = 4_096

_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
#: JavaScript prints numbers from 1e21 on in exponent form; below that an integral double is an integer.
_LARGEST_PLAIN_INTEGER: Final = 1e21


class QueryEvaluationError(StatesError):
    """``States.QueryEvaluationError``; ``location`` is the definition field that failed (``Output/result``).

    AWS names the field in the ``EvaluationFailed`` history event; it is empty when no single field is to
    blame (a Map state whose input is not an array).
    """

    def __init__(self, cause: str, location: str = "") -> None:
        super().__init__(QUERY_EVALUATION_ERROR, cause)
        self.location = location


class _Undefined:
    """The type of :data:`UNDEFINED`."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


#: What an expression that matched nothing returns (JSONata's ``undefined``, distinct from ``null``).
UNDEFINED: Final = _Undefined()


def is_jsonata_expression(value: Any) -> bool:
    """Whether ``value`` is a JSONata expression string: it starts with ``{%`` and ends with ``%}``."""
    return isinstance(value, str) and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


class CompiledExpression:
    """A JSONata expression checked for syntax once and evaluated any number of times, from any thread.

    ``text`` is the expression without its ``{% %}`` delimiters and surrounding blanks, as AWS quotes
    it in error causes.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"

    def evaluate(self, states: Mapping[str, Any], variables: Mapping[str, Any], *, field: str = "") -> Any:
        """Evaluate with ``$states`` bound to ``states`` and each variable bound to ``$name``.

        :param field: the definition field being evaluated (``Output/result``), named in error causes.
        :returns: the JSON result, with integral numbers as ``int``; :data:`UNDEFINED` when the
            expression matched nothing.
        :raises StatesError: ``States.QueryEvaluationError`` when the evaluation fails.
        """
        if self.text == MERGE_INPUT_RESULT:
            merged = merge_input_result(states)
            if merged is not None:
                return merged
        return self.evaluate_natively(states, variables, field=field)

    def evaluate_natively(
        self, states: Mapping[str, Any], variables: Mapping[str, Any], *, field: str = ""
    ) -> Any:
        """:meth:`evaluate` by the JSONata engine itself, without the fast paths."""
        bindings = dict(variables)
        bindings["states"] = states if isinstance(states, dict) else dict(states)
        _host_failure.message = None
        try:
            result = _native_expression(self.text).evaluate_json_or_none(None, bindings)
        except Exception as exc:  # the engine raises ValueError, and TypeError etc. for odd data
            message = _host_failure.message or str(exc) or type(exc).__name__
            _host_failure.message = None
            raise QueryEvaluationError(_failure_cause(self.text, field, message), field) from exc
        if result is None:
            return UNDEFINED
        return json.loads(result, parse_float=_parse_number)

    def evaluate_defined(self, states: Mapping[str, Any], variables: Mapping[str, Any], *, field: str) -> Any:
        """Like :meth:`evaluate`, but an undefined result fails the way AWS fails it.

        :raises StatesError: ``States.QueryEvaluationError`` ("returned nothing (undefined)").
        """
        result = self.evaluate(states, variables, field=field)
        if result is UNDEFINED:
            raise QueryEvaluationError(undefined_cause(self.text, field), field)
        return result


#: What every Task of the simple (seed) form evaluates as its ``Output``: the reply merged over the input.
MERGE_INPUT_RESULT = "$merge([$states.input, $states.result])"


def merge_input_result(states: Mapping[str, Any]) -> dict[str, Any] | None:
    """:data:`MERGE_INPUT_RESULT` evaluated in Python, as the engine evaluates it, when both are objects;
    ``None`` otherwise (the engine then evaluates it, errors and all).

    The engine's round trip through JSON text costs more than the rest of the state; its results have
    every integral number as an integer, which this keeps.
    """
    given, result = states.get("input"), states.get("result")
    if not isinstance(given, dict) or not isinstance(result, dict):
        return None
    try:
        merged = _as_jsonata_numbers({**given, **result})
    except ValueError:  # NaN or an infinity: let the engine say what it makes of them
        return None
    assert isinstance(merged, dict)
    return merged


def _as_jsonata_numbers(value: Any) -> Any:
    """``value`` with its numbers as the engine returns them (see :func:`_parse_number`)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a JSON number")
        if value.is_integer() and abs(value) < _LARGEST_PLAIN_INTEGER:
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: _as_jsonata_numbers(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_as_jsonata_numbers(member) for member in value]
    return value


@functools.lru_cache(maxsize=4_096)
def compile_expression(text: str) -> CompiledExpression:
    """Compile a JSONata expression, given with or without its ``{% %}`` delimiters.

    :raises PathSyntaxError: the expression is empty or not valid JSONata.
    """
    body = text[2:-2] if is_jsonata_expression(text) else text
    body = body.strip()
    if not body:
        raise PathSyntaxError(f"The JSONata expression {text!r} is empty")
    _native_expression(body)  # raises on a syntax error, and warms this thread's cache
    return CompiledExpression(body)


def evaluate_template(
    value: Any, states: Mapping[str, Any], variables: Mapping[str, Any], field: str = ""
) -> Any:
    """Evaluate a JSON value in which every ``{% %}`` string is an expression.

    Objects and arrays are rebuilt with their members evaluated; other strings and values are
    literals. This is how ``Arguments``, ``Output``, ``Assign`` and ``ItemSelector`` are evaluated; a
    single field such as ``Condition`` or ``TimeoutSeconds`` is the case where ``value`` is one string.

    :param field: the field's name in the definition (``Output``); nested members extend it the way
        AWS names them in causes (``Output/result``).
    :raises StatesError: ``States.QueryEvaluationError`` when an expression fails or returns nothing.
    :raises PathSyntaxError: an expression is not valid JSONata (validation normally catches it first).
    """
    if isinstance(value, str):
        if is_jsonata_expression(value):
            return compile_expression(value).evaluate_defined(states, variables, field=field)
        return value
    if isinstance(value, dict):
        return {
            key: evaluate_template(member, states, variables, f"{field}/{key}" if field else key)
            for key, member in value.items()
        }
    if isinstance(value, list):
        return [
            evaluate_template(member, states, variables, f"{field}/{index}" if field else str(index))
            for index, member in enumerate(value)
        ]
    return value


def undefined_cause(text: str, field: str) -> str:
    """AWS's cause when the expression for ``field`` evaluates to nothing."""
    return f"The JSONata expression '{text}' specified for the field '{field}' returned nothing (undefined)."


def _failure_cause(text: str, field: str, message: str) -> str:
    where = f" specified for the field '{field}'" if field else ""
    return f"The JSONata expression '{text}'{where} threw an error during evaluation: {message}"


def _parse_number(literal: str) -> int | float:
    """``json.loads`` hook: JSONata numbers are doubles, AWS prints the integral ones as integers."""
    number = float(literal)
    if number.is_integer() and abs(number) < _LARGEST_PLAIN_INTEGER:
        return int(number)
    return number


# -- the native expressions, one per thread ----------------------------------------------------------

_per_thread = threading.local()


class _HostFailure(threading.local):
    """The message of the last error raised by one of our functions in this thread.

    The engine flattens a Python exception into ``ValueError("host function raised ...")``; keeping
    our own message gives causes without the engine's wrapping.
    """

    message: str | None = None


_host_failure = _HostFailure()


def _native_expression(text: str) -> Any:
    cache: dict[str, Any] | None = getattr(_per_thread, "expressions", None)
    if cache is None:
        cache = _per_thread.expressions = {}
    native = cache.get(text)
    if native is None:
        try:
            native = jsonatapy.compile(text, timeout=EVALUATION_TIMEOUT_MS, max_stack_depth=MAX_STACK_DEPTH)
        except Exception as exc:  # ValueError for syntax; anything else is as unusable
            raise PathSyntaxError(f"Invalid JSONata expression {text!r}: {exc}") from exc
        for name, function in _FUNCTIONS.items():
            if f"${name}" in text:
                if name == "random":
                    native.register_override(name, function)
                else:
                    native.register(name, function)
        if len(cache) >= _THREAD_CACHE_SIZE:
            cache.clear()
        cache[text] = native
    return native


# -- the functions Step Functions adds ---------------------------------------------------------------


class _FunctionError(ValueError):
    """A misuse of one of the Step Functions functions (bad argument type or value)."""


def _host(function: Callable[..., Any]) -> Callable[..., Any]:
    """Record the message of a :class:`_FunctionError` before the engine flattens it."""

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except _FunctionError as exc:
            _host_failure.message = str(exc)
            raise
        except TypeError:  # the engine passes what the expression wrote: maybe too few or too many
            _host_failure.message = (
                f"${function.__name__.lstrip('_')}: wrong number of arguments ({len(args)})"
            )
            raise

    return call


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any, function: str, argument: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _FunctionError(f"${function}: the {argument} must be an integer, got {json.dumps(value)}")


@_host
def _partition(array: Any, size: Any) -> list[Any]:
    """``$partition(array, size)``: the array cut into chunks of ``size`` items (the last may be short)."""
    items = array if isinstance(array, list) else [array]
    chunk = _integer(size, "partition", "chunk size")
    if chunk <= 0:
        raise _FunctionError(f"$partition: the chunk size must be positive, got {chunk}")
    if not items:
        raise _FunctionError("$partition: the array must not be empty")
    return [items[index : index + chunk] for index in range(0, len(items), chunk)]


@_host
def _range(start: Any, end: Any, step: Any) -> Any:
    """``$range(start, end, step)``: integers from ``start`` to ``end`` inclusive.

    AWS returns a sequence, so one item comes back as that item (``$range(1, 9, 9)`` is ``1``).
    """
    first = _integer(start, "range", "start")
    last = _integer(end, "range", "end")
    stride = _integer(step, "range", "step")
    if stride == 0:
        raise _FunctionError("$range: the step must not be 0")
    count = max(0, (last - first) // stride + 1)
    if count > MAX_RANGE_ITEMS:
        raise _FunctionError(f"$range: the range would have {count} items, more than {MAX_RANGE_ITEMS}")
    items = list(range(first, last + (1 if stride > 0 else -1), stride))
    return items[0] if len(items) == 1 else items


@_host
def _hash(value: Any, algorithm: Any) -> str:
    """``$hash(value, algorithm)``: the lowercase hex digest of a string's UTF-8 bytes."""
    if not isinstance(value, str):
        raise _FunctionError(f"$hash: the value to hash must be a string, got {json.dumps(value)}")
    digest = _HASHES.get(algorithm) if isinstance(algorithm, str) else None
    if digest is None:
        raise _FunctionError(
            f"$hash: the algorithm must be one of {', '.join(_HASHES)}, got {json.dumps(algorithm)}"
        )
    return str(digest(value.encode("utf-8", "surrogatepass")).hexdigest())


@_host
def _random(seed: Any = None) -> float:
    """``$random()`` / ``$random(seed)``: a number in [0, 1); the same seed gives the same number."""
    if seed is None:
        return random.random()
    if not _is_number(seed) or not math.isfinite(seed):
        raise _FunctionError(f"$random: the seed must be a number, got {json.dumps(seed)}")
    return random.Random(int(seed) if isinstance(seed, int) or seed.is_integer() else seed).random()


@_host
def _uuid() -> str:
    """``$uuid()``: a version 4 UUID."""
    return str(uuid.uuid4())


@_host
def _parse(text: Any) -> Any:
    """``$parse(json_string)``: the JSON value a string holds."""
    if not isinstance(text, str):
        raise _FunctionError(f"$parse: the argument must be a string, got {json.dumps(text)}")
    try:
        return json.loads(text, parse_float=_parse_number)
    except ValueError as exc:
        raise _FunctionError(f"$parse: the string is not valid JSON: {exc}") from None


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
}
