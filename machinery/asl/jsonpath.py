"""JSONPath as Step Functions evaluates it (Jayway semantics), plus ResultPath writing.

Three roots are understood: ``$`` (the state's data), ``$$`` (the context object) and ``$name`` (a
variable assigned by an earlier state). A path without wildcards, filters, slices, unions or deep scans
is a *Reference Path*: it selects at most one node and evaluates to that node itself; any other path
evaluates to the list of the nodes it matches.

Paths are compiled once and cached, because the same handful of expressions is evaluated on every state
transition of every execution of a workflow.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.jsontext import dumps_compact

__all__ = [
    "JsonPath",
    "PathNotFound",
    "compile_path",
    "is_path",
    "json_equal",
    "set_path",
]

Key: TypeAlias = str | int

_VARIABLE_NAME = re.compile(r"[^\W\d]\w*")
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class PathNotFound(LookupError):
    """A Reference Path that selects nothing in the document it was evaluated against."""

    def __init__(self, path: str) -> None:
        super().__init__(f"The JSONPath {path!r} could not be found")
        self.path = path


_MISSING: Any = object()


def json_equal(left: Any, right: Any) -> bool:
    """Compare two JSON values the way JSON (not Python) sees them: ``true`` is not ``1``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return bool(left == right)
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(json_equal(value, right[key]) for key, value in left.items())
        )
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    return type(left) is type(right) and bool(left == right)


# --------------------------------------------------------------------------------------------------
# Segments. Each one maps a node to the nodes it selects; definite segments also expose their key so
# that Reference Paths can be walked without building intermediate lists.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Child:
    key: Key

    definite = True

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        value = _lookup(node, self.key)
        if value is not _MISSING:
            yield value


@dataclass(frozen=True, slots=True)
class _Wildcard:
    definite = False

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        if isinstance(node, dict):
            yield from node.values()
        elif isinstance(node, list):
            yield from node


@dataclass(frozen=True, slots=True)
class _Union:
    keys: tuple[Key, ...]

    definite = False

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        for key in self.keys:
            value = _lookup(node, key)
            if value is not _MISSING:
                yield value


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None

    definite = False

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        if isinstance(node, list):
            yield from node[self.start : self.stop : self.step]


@dataclass(frozen=True, slots=True)
class _Filter:
    predicate: _Predicate
    source: str

    definite = False

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        if isinstance(node, list):
            for item in node:
                if self.predicate(item, root):
                    yield item
        elif isinstance(node, dict) and self.predicate(node, root):
            # Jayway applies a filter on an object to the object itself rather than to its members.
            yield node


@dataclass(frozen=True, slots=True)
class _DeepScan:
    inner: _Segment

    definite = False

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        stack = [node]
        while stack:
            current = stack.pop()
            yield from self.inner.select(current, root)
            if isinstance(current, dict):
                stack.extend(reversed(list(current.values())))
            elif isinstance(current, list):
                stack.extend(reversed(current))


@dataclass(frozen=True, slots=True)
class _Length:
    """Jayway's ``length()`` function, which AWS accepts at the end of a path."""

    definite = True

    def select(self, node: Any, root: _Roots) -> Iterator[Any]:
        if isinstance(node, list | dict | str):
            yield len(node)


_Segment: TypeAlias = _Child | _Wildcard | _Union | _Slice | _Filter | _DeepScan | _Length
_Predicate: TypeAlias = Callable[[Any, "_Roots"], bool]


@dataclass(frozen=True, slots=True)
class _Roots:
    """What ``$`` means inside a filter: the document the outer path started from."""

    data: Any


def _lookup(node: Any, key: Key) -> Any:
    if isinstance(key, str):
        if isinstance(node, dict):
            return node.get(key, _MISSING)
        return _MISSING
    if isinstance(node, list) and -len(node) <= key < len(node):
        return node[key]
    return _MISSING


# --------------------------------------------------------------------------------------------------
# The compiled path
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled JSONPath; obtain one with :func:`compile_path`.

    :ivar expr: the source text.
    :ivar is_context: the path starts with ``$$`` and is evaluated against the context object.
    :ivar variable: the variable name for ``$name...`` paths, else ``None``.
    :ivar is_definite: the path is a Reference Path (selects at most one node).
    :ivar keys: for a Reference Path, the keys and indexes walked from the root.
    """

    expr: str
    is_context: bool
    variable: str | None
    segments: tuple[_Segment, ...]
    is_definite: bool = field(init=False)
    keys: tuple[Key, ...] | None = field(init=False)

    def __post_init__(self) -> None:
        definite = all(segment.definite for segment in self.segments)
        object.__setattr__(self, "is_definite", definite)
        if all(isinstance(segment, _Child) for segment in self.segments):
            keys = tuple(segment.key for segment in self.segments if isinstance(segment, _Child))
            object.__setattr__(self, "keys", keys)
        else:
            object.__setattr__(self, "keys", None)

    def root(self, data: Any, context: Any = None, variables: Mapping[str, Any] | None = None) -> Any:
        """Return the document this path starts from, raising :class:`PathNotFound` for unknown variables."""
        if self.is_context:
            return context
        if self.variable is not None:
            if variables is None or self.variable not in variables:
                raise PathNotFound(self.expr)
            return variables[self.variable]
        return data

    def evaluate(self, data: Any, context: Any = None, variables: Mapping[str, Any] | None = None) -> Any:
        """Evaluate the path.

        :returns: the selected node for a Reference Path, else the (possibly empty) list of matches.
        :raises PathNotFound: a Reference Path selected nothing.
        """
        node = self.root(data, context, variables)
        keys = self.keys
        if keys is not None:
            for key in keys:
                node = _lookup(node, key)
                if node is _MISSING:
                    raise PathNotFound(self.expr)
            return node
        matches = self._walk(node, data)
        if self.is_definite:
            if not matches:
                raise PathNotFound(self.expr)
            return matches[0]
        return matches

    def exists(self, data: Any, context: Any = None, variables: Mapping[str, Any] | None = None) -> bool:
        """Tell whether the path selects anything (``IsPresent``); indefinite paths always "exist"."""
        try:
            self.evaluate(data, context, variables)
        except PathNotFound:
            return False
        return True

    def _walk(self, node: Any, data: Any) -> list[Any]:
        roots = _Roots(data)
        current = [node]
        for segment in self.segments:
            current = [found for item in current for found in segment.select(item, roots)]
            if not current:
                break
        return current


def is_path(expr: str) -> bool:
    """Tell whether ``expr`` looks like a path (starts with ``$``); it may still fail to compile."""
    return expr.startswith("$")


def compile_path(expr: str) -> JsonPath:
    """Compile a JSONPath expression (cached).

    :raises PathSyntaxError: the expression is not a valid path.
    """
    # Checked before the cache, which would otherwise fail on unhashable values from a definition.
    if not isinstance(expr, str):
        raise PathSyntaxError(f"A JSONPath must be a string, not {type(expr).__name__}")
    return _compile_path(expr)


@functools.lru_cache(maxsize=4096)
def _compile_path(expr: str) -> JsonPath:
    return _PathParser(expr).parse()


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


class _PathParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> PathSyntaxError:
        return PathSyntaxError(f"Invalid JSONPath {self.text!r} at position {self.pos}: {message}")

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos : self.pos + count]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_spaces(self) -> None:
        while not self.at_end() and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, token: str) -> None:
        self.skip_spaces()
        if not self.text.startswith(token, self.pos):
            raise self.error(f"expected {token!r}")
        self.pos += len(token)

    def parse(self) -> JsonPath:
        """Parse the whole text into a path; raises a syntax error naming the position."""
        text = self.text
        if not text.startswith("$"):
            raise self.error("a path must start with '$'")
        is_context = False
        variable: str | None = None
        if text.startswith("$$"):
            is_context = True
            self.pos = 2
        else:
            self.pos = 1
            match = _VARIABLE_NAME.match(text, 1)
            if match:
                variable = match.group()
                self.pos = match.end()
        segments = self.parse_segments(stop=None)
        return JsonPath(text, is_context, variable, tuple(segments))

    def parse_segments(self, stop: str | None) -> list[_Segment]:
        """Parse segments until the end of the text, or (inside a filter) until a non-path character."""
        segments: list[_Segment] = []
        while not self.at_end():
            char = self.text[self.pos]
            if char == ".":
                if self.peek(2) == "..":
                    self.pos += 2
                    segments.append(_DeepScan(self.parse_after_deep_scan()))
                else:
                    self.pos += 1
                    segments.append(self.parse_dot_member(stop))
            elif char == "[":
                segments.append(self.parse_bracket())
            elif stop is not None:
                break
            else:
                raise self.error(f"unexpected character {char!r}")
        if any(isinstance(segment, _Length) for segment in segments[:-1]):
            raise self.error("length() must end the path")
        return segments

    def parse_after_deep_scan(self) -> _Segment:
        if self.peek() == "[":
            return self.parse_bracket()
        if self.peek() == "*":
            self.pos += 1
            return _Wildcard()
        return self.parse_dot_member(stop=None, allow_function=False)

    def parse_dot_member(self, stop: str | None, allow_function: bool = True) -> _Segment:
        """A member after ``.``: a name, ``*``, or a function call (``length()``) where allowed."""
        if self.peek() == "*":
            self.pos += 1
            return _Wildcard()
        start = self.pos
        # Field names in dot notation may hold any character but the ones that start a new segment;
        # inside a filter, operators and spaces end them too.
        terminators = ".[" if stop is None else ".[ )=!<>&|,"
        while not self.at_end() and self.text[self.pos] not in terminators:
            if self.text[self.pos] == "(" and self.text.startswith("()", self.pos):
                break
            self.pos += 1
        name = self.text[start : self.pos]
        if self.text.startswith("()", self.pos):
            self.pos += 2
            if allow_function and name == "length":
                return _Length()
            raise self.error(f"unsupported function {name}()")
        if not name:
            raise self.error("empty field name")
        return _Child(name)

    def parse_bracket(self) -> _Segment:
        """A bracketed segment: ``[*]``, ``['name']``, an index, a slice, a union or a filter ``[?(...)]``."""
        self.pos += 1  # '['
        self.skip_spaces()
        char = self.peek()
        segment: _Segment
        if char == "*":
            self.pos += 1
            segment = _Wildcard()
        elif char == "?":
            self.pos += 1
            self.expect("(")
            start = self.pos
            predicate = self.parse_or()
            self.expect(")")
            segment = _Filter(predicate, self.text[start : self.pos - 1].strip())
        elif char in "'\"":
            names: list[Key] = [self.parse_quoted()]
            self.skip_spaces()
            while self.peek() == ",":
                self.pos += 1
                self.skip_spaces()
                names.append(self.parse_quoted())
                self.skip_spaces()
            segment = _Child(names[0]) if len(names) == 1 else _Union(tuple(names))
        else:
            segment = self.parse_index_or_slice()
        self.expect("]")
        return segment

    def parse_quoted(self) -> str:
        """A single- or double-quoted name, with its escapes resolved."""
        quote = self.peek()
        if quote not in ("'", '"'):
            raise self.error("expected a quoted name")
        self.pos += 1
        chars: list[str] = []
        while True:
            if self.at_end():
                raise self.error("unterminated string")
            char = self.text[self.pos]
            # Only the enclosing quote can be escaped; AWS keeps any other backslash as it is.
            if char == "\\" and self.text.startswith(quote, self.pos + 1):
                chars.append(quote)
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return "".join(chars)
            chars.append(char)

    def parse_int(self) -> int | None:
        self.skip_spaces()
        match = _INTEGER.match(self.text, self.pos)
        if not match:
            return None
        self.pos = match.end()
        self.skip_spaces()
        return int(match.group())

    def parse_index_or_slice(self) -> _Segment:
        """``[n]``, ``[start:stop:step]`` or a union of indexes ``[a,b]``."""
        first = self.parse_int()
        if self.peek() == ":":
            self.pos += 1
            stop = self.parse_int()
            step = None
            if self.peek() == ":":
                self.pos += 1
                step = self.parse_int()
                if step == 0:
                    raise self.error("slice step cannot be zero")
            return _Slice(first, stop, step)
        if first is None:
            raise self.error("expected an index, a slice, a quoted name, '*' or a filter")
        indexes: list[Key] = [first]
        while self.peek() == ",":
            self.pos += 1
            index = self.parse_int()
            if index is None:
                raise self.error("expected an index")
            indexes.append(index)
        return _Child(first) if len(indexes) == 1 else _Union(tuple(indexes))

    # ---- filter expressions: or := and ('||' and)*; and := unary ('&&' unary)*; unary := '!' unary
    # | '(' or ')' | comparison

    def parse_or(self) -> _Predicate:
        left = self.parse_and()
        self.skip_spaces()
        while self.peek(2) == "||":
            self.pos += 2
            right = self.parse_and()
            left = _either(left, right)
            self.skip_spaces()
        return left

    def parse_and(self) -> _Predicate:
        left = self.parse_unary()
        self.skip_spaces()
        while self.peek(2) == "&&":
            self.pos += 2
            right = self.parse_unary()
            left = _both(left, right)
            self.skip_spaces()
        return left

    def parse_unary(self) -> _Predicate:
        self.skip_spaces()
        if self.peek() == "!" and self.peek(2) != "!=":
            self.pos += 1
            inner = self.parse_unary()
            return lambda node, roots: not inner(node, roots)
        if self.peek() == "(":
            self.pos += 1
            inner = self.parse_or()
            self.expect(")")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> _Predicate:
        left = self.parse_operand()
        self.skip_spaces()
        for operator in ("==", "!=", "<=", ">=", "<", ">"):
            if self.text.startswith(operator, self.pos):
                self.pos += len(operator)
                right = self.parse_operand()
                return _comparison(left, operator, right)
        if not isinstance(left, _RelativePath):
            raise self.error("a filter needs a comparison or an '@' path")
        return left.exists

    def parse_operand(self) -> _Operand:
        """One side of a filter comparison: a relative or absolute path, or a literal."""
        self.skip_spaces()
        char = self.peek()
        if char in ("@", "$"):
            relative = char == "@"
            self.pos += 1
            if not relative and self.peek() == "$":
                raise self.error("context paths are not allowed in filters")
            segments = self.parse_segments(stop=")")
            return _RelativePath(relative, tuple(segments))
        if char in ("'", '"'):
            return _Literal(self.parse_quoted())
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return _Literal(value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            token = match.group()
            number: int | float = float(token) if any(c in token for c in ".eE") else int(token)
            return _Literal(number)
        raise self.error("expected a filter operand")


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any

    def values(self, node: Any, roots: _Roots) -> list[Any]:
        return [self.value]


@dataclass(frozen=True, slots=True)
class _RelativePath:
    relative: bool
    segments: tuple[_Segment, ...]

    def values(self, node: Any, roots: _Roots) -> list[Any]:
        current = [node if self.relative else roots.data]
        for segment in self.segments:
            current = [found for item in current for found in segment.select(item, roots)]
            if not current:
                break
        return current

    def exists(self, node: Any, roots: _Roots) -> bool:
        return bool(self.values(node, roots))


_Operand: TypeAlias = _Literal | _RelativePath


def _either(left: _Predicate, right: _Predicate) -> _Predicate:
    return lambda node, roots: left(node, roots) or right(node, roots)


def _both(left: _Predicate, right: _Predicate) -> _Predicate:
    return lambda node, roots: left(node, roots) and right(node, roots)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator == "==":
        return json_equal(left, right)
    if operator == "!=":
        return not json_equal(left, right)
    # Ordering is only defined between two numbers or two strings; anything else does not match.
    if _is_number(left) and _is_number(right):
        if isinstance(left, float) and math.isnan(left):
            return False
    elif not (isinstance(left, str) and isinstance(right, str)):
        return False
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def _comparison(left: _Operand, operator: str, right: _Operand) -> _Predicate:
    def predicate(node: Any, roots: _Roots) -> bool:
        left_values = left.values(node, roots)
        right_values = right.values(node, roots)
        # A missing operand never matches, whatever the operator (Jayway semantics).
        if not left_values or not right_values:
            return False
        return _compare(left_values[0], operator, right_values[0])

    return predicate


# --------------------------------------------------------------------------------------------------
# ResultPath
# --------------------------------------------------------------------------------------------------


def set_path(data: Any, path: str, value: Any) -> Any:
    """Place ``value`` in ``data`` at the Reference Path ``path`` (ResultPath semantics).

    The input is not modified: containers along the path are copied, everything else is shared.
    Missing intermediate objects are created.

    :raises PathSyntaxError: ``path`` is not a Reference Path on ``$``.
    :raises StatesError: ``States.ResultPathMatchFailure`` when the path crosses a non-object.
    """
    compiled = compile_path(path)
    keys = compiled.keys
    if compiled.is_context or compiled.variable is not None or keys is None:
        raise PathSyntaxError(f"{path!r} is not a valid ResultPath: it must be a Reference Path on '$'")
    if not keys:
        return value
    return _set_keys(data, keys, 0, value, path, data)


def _set_keys(node: Any, keys: tuple[Key, ...], depth: int, value: Any, path: str, document: Any) -> Any:
    key = keys[depth]
    last = depth == len(keys) - 1
    if isinstance(key, str) and isinstance(node, dict):
        copy = dict(node)
        if last:
            copy[key] = value
        else:
            child = node.get(key, _MISSING)
            if child is _MISSING:
                child = {}
            copy[key] = _set_keys(child, keys, depth + 1, value, path, document)
        return copy
    if isinstance(key, int) and isinstance(node, list) and -len(node) <= key < len(node):
        items = list(node)
        items[key] = value if last else _set_keys(node[key], keys, depth + 1, value, path, document)
        return items
    raise StatesError(
        "States.ResultPathMatchFailure",
        f"Unable to apply ReferencePath {path} to input {dumps_compact(document)}",
    )
