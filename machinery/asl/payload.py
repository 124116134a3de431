"""Payload templates: ``Parameters``, ``ResultSelector`` and ``ItemSelector`` (JSONPath flavour).

A key ending in ``.$`` takes its value from a path (``$.x`` on the data, ``$$.x`` on the context object,
``$name.x`` on a variable) or from an intrinsic function call, and is stored without the suffix. Other
values are copied as they are. Selected values are shared with the input rather than copied: nothing in
the interpreter mutates a document once it has been produced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.intrinsics import is_intrinsic, parse_intrinsic
from machinery.asl.jsonpath import PathNotFound, compile_path
from machinery.jsontext import dumps_compact

__all__ = ["CompiledTemplate", "apply_template", "compile_template", "validate_template"]

_Evaluator: TypeAlias = Callable[[Any, Any, "Mapping[str, Any] | None"], Any]


class CompiledTemplate:
    """A payload template compiled once so that applying it only evaluates paths and intrinsics."""

    __slots__ = ("_build", "template")

    def __init__(self, template: Any) -> None:
        self.template = template
        self._build = _compile(template)

    def apply(self, data: Any, context: Any = None, variables: Mapping[str, Any] | None = None) -> Any:
        """Build the payload for ``data``.

        :raises StatesError: ``States.Runtime`` when a path selects nothing, ``States.IntrinsicFailure``
            when an intrinsic function rejects its arguments.
        """
        return self._build(data, context, variables)


def compile_template(template: Any) -> CompiledTemplate:
    """Compile a template; see :func:`validate_template` for the problems reported as a list.

    :raises PathSyntaxError: a ``.$`` field holds something that is neither a path nor an intrinsic.
    """
    return CompiledTemplate(template)


def apply_template(
    template: Any,
    data: Any,
    context: Any,
    variables: Mapping[str, Any] | None = None,
    field_name: str = "Parameters",
) -> Any:
    """Evaluate a payload template against a state's data, the context object and the variables.

    :param field_name: the ASL field the template comes from, for error messages.
    :raises StatesError: ``States.Runtime`` when a path selects nothing, ``States.IntrinsicFailure``
        when an intrinsic function rejects its arguments.
    :raises PathSyntaxError: the template holds a malformed path or intrinsic (definitions are meant to
        be validated before they run, so this is a programming error).
    """
    try:
        build = _compile(template)
    except PathSyntaxError as exc:
        raise PathSyntaxError(f"{field_name}: {exc}") from exc
    return build(data, context, variables)


def validate_template(template: Any, field_name: str = "Parameters") -> list[str]:
    """Return the syntax problems of a template, each prefixed with its location (empty if none)."""
    problems: list[str] = []
    _validate(template, field_name, problems)
    return problems


def _validate(template: Any, where: str, problems: list[str]) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            location = f"{where}/{key}"
            if isinstance(key, str) and key.endswith(".$"):
                try:
                    _compile_dynamic(key, value)
                except PathSyntaxError as exc:
                    problems.append(f"{location}: {exc}")
            else:
                _validate(value, location, problems)
    elif isinstance(template, list):
        for index, item in enumerate(template):
            _validate(item, f"{where}[{index}]", problems)


def _compile(template: Any) -> _Evaluator:
    if isinstance(template, dict):
        fields: list[tuple[str, _Evaluator]] = []
        for key, value in template.items():
            if key.endswith(".$"):
                fields.append((key[:-2], _compile_dynamic(key, value)))
            else:
                fields.append((key, _compile(value)))

        def build_object(data: Any, context: Any, variables: Mapping[str, Any] | None) -> Any:
            return {name: build(data, context, variables) for name, build in fields}

        return build_object
    if isinstance(template, list):
        items = [_compile(item) for item in template]

        def build_array(data: Any, context: Any, variables: Mapping[str, Any] | None) -> Any:
            return [build(data, context, variables) for build in items]

        return build_array
    return lambda data, context, variables: template


def _compile_dynamic(key: str, expr: Any) -> _Evaluator:
    if not isinstance(expr, str):
        raise PathSyntaxError(f"the value of {key!r} must be a JSONPath or an intrinsic function")
    if is_intrinsic(expr):
        call = parse_intrinsic(expr)

        def evaluate_call(data: Any, context: Any, variables: Mapping[str, Any] | None) -> Any:
            try:
                return call.evaluate(data, context, variables)
            except PathNotFound as exc:
                raise _not_found(exc.path, key, data) from exc

        return evaluate_call
    if not expr.startswith("$"):
        raise PathSyntaxError(f"the value of {key!r} must be a JSONPath or an intrinsic function: {expr!r}")
    path = compile_path(expr)

    def evaluate_path(data: Any, context: Any, variables: Mapping[str, Any] | None) -> Any:
        try:
            return path.evaluate(data, context, variables)
        except PathNotFound as exc:
            raise _not_found(expr, key, data) from exc

    return evaluate_path


def _not_found(path: str, key: str, data: Any) -> StatesError:
    document = dumps_compact(data)
    return StatesError(
        "States.Runtime",
        f"The JSONPath '{path}' specified for the field '{key}' could not be found in the input '{document}'",
    )
