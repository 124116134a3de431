"""JSONata data flow of a state: Arguments, Output, Assign, and every field that may hold ``{% %}``.

The twin of :class:`machinery.engine.dataflow.JsonPathFlow` for states whose ``QueryLanguage`` is
``JSONata``. Expressions see ``$states`` (``input``, ``context``, and ``result`` or ``errorOutput`` where
AWS provides them) and the variables as they were when the state was entered: ``Assign`` and ``Output``
of one state are evaluated against the same variables, and the assignments take effect afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinery.asl.errors import PathSyntaxError
from machinery.asl.jsonata import (
    QueryEvaluationError,
    compile_expression,
    evaluate_template,
    is_jsonata_expression,
)
from machinery.asl.model import Catcher, State, is_set
from machinery.engine.context import states_variable
from machinery.engine.dataflow import (
    BatcherSpec,
    FlowBase,
    ItemReaderSpec,
    MapLimits,
    Outcome,
    as_text,
    check_assignment,
    check_wait,
    no_choice_matched,
    parse_timestamp,
    to_json_text,
)

__all__ = ["JsonataFlow"]

_ISO_FORMAT = "ISO-8601 extended offset date-time format string"

#: JSONata's names of JSON types, as AWS quotes them in "unexpected result type" causes.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "number"),
    (float, "number"),
    (str, "string"),
)


class JsonataFlow(FlowBase):
    """The data flow of a ``JSONata`` state (see :class:`machinery.engine.dataflow.StateFlow`)."""

    def __init__(
        self, state: State, state_input: Any, context: dict[str, Any], variables: Mapping[str, Any]
    ) -> None:
        super().__init__(state, state_input, context, variables)
        self.states = states_variable(state_input, context)

    # Helpers --------------------------------------------------------------------------------------

    def _evaluate(self, value: Any, field: str, states: dict[str, Any] | None = None) -> Any:
        try:
            return evaluate_template(value, self.states if states is None else states, self.variables, field)
        except PathSyntaxError as exc:  # validation refuses these; a definition that skipped it fails here
            raise QueryEvaluationError(f"{exc} (field '{field}')", field) from exc

    def _outcome(
        self, output: Any, assign: Any, default: Any, states: dict[str, Any] | None = None
    ) -> Outcome:
        """Evaluate ``Assign`` and then ``Output`` (both against the variables before the state)."""
        assigned = None
        if is_set(assign):
            assigned = self._evaluate(assign, "Assign", states)
            if not isinstance(
                assigned, dict
            ):  # validation requires an object; an expression may not give one
                raise QueryEvaluationError(_unexpected(assign, "Assign", "object", assigned), "Assign")
            check_assignment(assigned)
        result = self._evaluate(output, "Output", states) if is_set(output) else default
        return Outcome(result, assigned)

    def _number(self, value: Any, field: str, kind: str = "integer") -> float | None:
        """A number field that may be an expression (``TimeoutSeconds``, ``MaxConcurrency`` ...)."""
        if value is None:
            return None
        found = self._evaluate(value, field) if is_jsonata_expression(value) else value
        valid = isinstance(found, int | float) and not isinstance(found, bool)
        if not valid or (kind == "integer" and found != int(found)):
            raise QueryEvaluationError(_unexpected(value, field, kind, found), field)
        return float(found)

    # The questions ----------------------------------------------------------------------------------

    def pass_outcome(self) -> Outcome:
        return self._outcome(self.state.output, self.state.assign, self.state_input)

    def choose(self) -> tuple[str, Outcome]:
        """The ``Next`` of the first choice whose ``Condition`` holds, else the ``Default``."""
        state = self.state
        for choice in state.choices:
            condition = choice.rule.get("Condition")
            field = "Condition"
            matched = self._evaluate(condition, field) if is_jsonata_expression(condition) else condition
            if not isinstance(matched, bool):
                raise QueryEvaluationError(_unexpected(condition, field, "boolean", matched), field)
            if matched:
                return choice.next, self._outcome(choice.output, choice.assign, self.state_input)
        if state.default is None:
            raise no_choice_matched(state)
        return state.default, self._outcome(state.output, state.assign, self.state_input)

    def succeed_outcome(self) -> Outcome:
        return self._outcome(self.state.output, self.state.assign, self.state_input)

    def fail_fields(self) -> tuple[str | None, str | None]:
        error = self._evaluate(self.state.error, "Error")
        cause = self._evaluate(self.state.cause, "Cause")
        return as_text(error), as_text(cause)

    def wait(self, now: float) -> tuple[float, Any]:
        """When a Wait state ends (``Seconds`` or ``Timestamp``, evaluated) and its output."""
        state = self.state
        if state.seconds is not None:
            seconds = self._number(state.seconds, "Seconds")
            if seconds is not None and seconds < 0:
                raise QueryEvaluationError(
                    f"The Seconds field must not be negative, but was: {to_json_text(int(seconds))}",
                    "Seconds",
                )
            due = now + (seconds or 0.0)
        elif state.timestamp is not None:
            value = self._evaluate(state.timestamp, "Timestamp")
            try:
                due = parse_timestamp(value, "")
            except Exception:
                shown = value if isinstance(value, str) else to_json_text(value)
                raise QueryEvaluationError(
                    f"The Timestamp field cannot be parsed as an {_ISO_FORMAT}: {shown}", "Timestamp"
                ) from None
        else:
            due = now
        check_wait(due, now)
        return due, self.state_input

    def wait_outcome(self, pending: Any) -> Outcome:
        return self._outcome(self.state.output, self.state.assign, self.state_input)

    def resource(self) -> str:
        resource = self.state.resource or ""
        if is_jsonata_expression(resource):
            value = self._evaluate(resource, "Resource")
            if not isinstance(value, str):
                raise QueryEvaluationError(_unexpected(resource, "Resource", "string", value), "Resource")
            return value
        return resource

    def payload(self) -> Any:
        """``Arguments`` (a Task's request, each Parallel branch's input); the state's input without them."""
        if is_set(self.state.arguments):
            return self._evaluate(self.state.arguments, "Arguments")
        return self.state_input

    def task_limits(self) -> tuple[float | None, float | None]:
        return (
            self._number(self.state.timeout_seconds, "TimeoutSeconds"),
            self._number(self.state.heartbeat_seconds, "HeartbeatSeconds"),
        )

    def result_outcome(self, result: Any) -> Outcome:
        states = states_variable(self.state_input, self.context, result=result)
        return self._outcome(self.state.output, self.state.assign, result, states)

    def map_inputs(self, items: list[Any] | None = None) -> list[tuple[dict[str, Any], Any]]:
        """Each Map iteration's input (after ``ItemSelector``) with its item, from ``Items`` or ``items``."""
        state = self.state
        if items is None and is_set(state.items):
            items = self._evaluate(state.items, "Items")
            if not isinstance(items, list):
                raise QueryEvaluationError(_unexpected(state.items, "Items", "array", items), "Items")
        elif items is None:
            items = self.state_input
            if not isinstance(items, list):
                raise QueryEvaluationError(f"Map state input must be an array but was: {to_json_text(items)}")
        inputs = []
        for index, value in enumerate(items):
            item = {"Index": index, "Value": value}
            if is_set(state.item_selector):
                context = {**self.context, "Map": {"Item": item}}
                value = self._evaluate(
                    state.item_selector, "ItemSelector", states_variable(self.state_input, context)
                )
            inputs.append((item, value))
        return inputs

    def item_batcher(self) -> BatcherSpec | None:
        """The Map state's ``ItemBatcher`` settings, evaluated, or None without one."""
        batcher = self.state.item_batcher
        if not isinstance(batcher, dict):
            return None
        max_items = self._number(batcher.get("MaxItemsPerBatch"), "MaxItemsPerBatch")
        max_bytes = self._number(batcher.get("MaxInputBytesPerBatch"), "MaxInputBytesPerBatch")
        for field, number in (("MaxItemsPerBatch", max_items), ("MaxInputBytesPerBatch", max_bytes)):
            if number is not None and number < 1:
                raise QueryEvaluationError(
                    _unexpected(batcher.get(field), field, "positive integer", number), field
                )
        batch_input = batcher.get("BatchInput")
        if batch_input is not None:
            batch_input = self._evaluate(batch_input, "BatchInput")
        return BatcherSpec(
            None if max_items is None else int(max_items),
            None if max_bytes is None else int(max_bytes),
            batch_input,
        )

    def item_reader(self) -> ItemReaderSpec:
        reader = self.state.item_reader or {}
        arguments = reader.get("Arguments")
        if arguments is not None:
            arguments = self._evaluate(arguments, "ItemReader.Arguments")
        config = dict(reader.get("ReaderConfig") or {})
        max_items = self._number(config.get("MaxItems"), "MaxItems")
        return ItemReaderSpec(
            reader.get("Resource"), arguments, config, None if max_items is None else int(max_items)
        )

    def map_limits(self) -> MapLimits:
        state = self.state
        concurrency = self._number(state.max_concurrency, "MaxConcurrency")
        count = self._number(state.tolerated_failure_count, "ToleratedFailureCount")
        return MapLimits(
            None if concurrency is None else int(concurrency),
            None if count is None else int(count),
            self._number(state.tolerated_failure_percentage, "ToleratedFailurePercentage", "number"),
        )

    def caught(self, catcher: Catcher, error: str, cause: str) -> Outcome:
        error_output = {"Error": error, "Cause": cause}
        states = states_variable(self.state_input, self.context, error_output=error_output)
        return self._outcome(catcher.output, catcher.assign, error_output, states)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return "array" if isinstance(value, list) else "object"


def _unexpected(expression: Any, field: str, expected: str, value: Any) -> str:
    """AWS's cause when an expression's result has the wrong type (``Items`` that is not an array ...)."""
    text = (
        compile_expression(expression).text if is_jsonata_expression(expression) else to_json_text(expression)
    )
    return (
        f"The JSONata expression '{text}' specified for the field '{field}' returned an unexpected result "
        f"type. Expected '{expected}', but was '{_type_name(value)}' for value: {to_json_text(value)}"
    )
