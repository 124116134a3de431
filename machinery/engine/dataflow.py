"""JSONPath data flow of a state: InputPath, Parameters, ResultSelector, Assign, ResultPath, OutputPath.

:class:`JsonPathFlow` computes what a state of the ``JSONPath`` query language outputs and assigns; its
twin for ``JSONata`` is :class:`machinery.engine.jsonata_flow.JsonataFlow`. Both answer the same
questions (:class:`StateFlow`), so the interpreter only decides *when* to ask them. The helpers below
turn a missing path into the ``States.Runtime`` error AWS raises.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from machinery.asl.choice import evaluate_rule
from machinery.asl.errors import StatesError
from machinery.asl.jsonpath import PathNotFound, compile_path, set_path
from machinery.asl.model import MAX_BATCH_BYTES, Catcher, State, is_set
from machinery.asl.payload import apply_template
from machinery.jsontext import dumps_compact

#: Step Functions' default limit for a state's input or output.
DEFAULT_DATA_LIMIT = 256 * 1024
#: AWS's limits on variables: one variable, and everything one ``Assign`` assigns.
VARIABLE_LIMIT = 256 * 1024
#: A Wait longer than this fails (AWS keeps the delay in a signed 32-bit count of seconds).
MAX_WAIT_SECONDS = 2**31 - 1
ISO_TEXT = "a valid ISO-8601 extended offset date-time format string"


@dataclass(frozen=True)
class Outcome:
    """What a state produced: its output and, when it has an ``Assign``, the variables it assigns."""

    output: Any
    assigned: dict[str, Any] | None = None


@dataclass(frozen=True)
class MapLimits:
    """A Map state's ``MaxConcurrency`` and tolerated failures, ``None`` when not given."""

    max_concurrency: int | None
    tolerated_failure_count: int | None
    tolerated_failure_percentage: float | None


@dataclass(frozen=True)
class BatcherSpec:
    """A Map state's ``ItemBatcher`` evaluated: at most ``max_items`` items and ``max_bytes`` bytes of
    input per child (``None``: no such limit), and the ``BatchInput`` each batch carries (``None``: none)."""

    max_items: int | None
    max_bytes: int | None
    batch_input: Any = None


def batch_inputs(inputs: list[Any], spec: BatcherSpec) -> list[dict[str, Any]]:
    """Group the items' inputs into batches: ``{"Items": [...]}`` plus ``BatchInput`` when given.

    Items are taken in order; a batch is closed when it holds ``max_items`` items or when the next item
    would take its JSON text past ``max_bytes``.

    :raises StatesError: (``States.Runtime``) one item alone is larger than ``max_bytes``.
    """
    limit = spec.max_bytes if spec.max_bytes is not None else MAX_BATCH_BYTES
    base: dict[str, Any] = {} if spec.batch_input is None else {"BatchInput": spec.batch_input}
    overhead = len(to_json_text({**base, "Items": []}).encode())
    batches: list[dict[str, Any]] = []
    current: list[Any] = []
    size = overhead
    for index, value in enumerate(inputs):
        item_size = len(to_json_text(value).encode()) + (1 if current else 0)
        if overhead + item_size > limit:
            raise StatesError(
                "States.Runtime",
                f"The item at index {index} is larger than the batch size limit of {limit} bytes "
                "(MaxInputBytesPerBatch)",
            )
        full = spec.max_items is not None and len(current) >= spec.max_items
        if current and (full or size + item_size > limit):
            batches.append({**base, "Items": current})
            current, size = [], overhead
            item_size = len(to_json_text(value).encode())
        current.append(value)
        size += item_size
    if current:
        batches.append({**base, "Items": current})
    return batches


@dataclass(frozen=True)
class ItemReaderSpec:
    """A Map state's ``ItemReader`` with its ``Parameters``/``Arguments`` and ``MaxItems`` evaluated.

    ``resource`` ``None`` is the inline form (``{"Items": [...]}`` in the parameters): no I/O is needed.
    """

    resource: str | None
    parameters: Any
    reader_config: dict[str, Any]
    max_items: int | None

    def inline_items(self) -> list[Any]:
        """The items of the inline form; ``States.ItemReaderFailed`` when they are not an array."""
        items = self.parameters.get("Items") if isinstance(self.parameters, dict) else None
        if not isinstance(items, list):
            raise StatesError(
                "States.ItemReaderFailed",
                f"The ItemReader's Items must be a JSON array, but was: {to_json_text(items)}",
            )
        return items


class StateFlow(Protocol):
    """The data flow of one state, for one query language. Every method may raise :class:`StatesError`."""

    def pass_outcome(self) -> Outcome: ...
    def choose(self) -> tuple[str, Outcome]: ...
    def succeed_outcome(self) -> Outcome: ...
    def fail_fields(self) -> tuple[str | None, str | None]: ...
    def wait(self, now: float) -> tuple[float, Any]: ...
    def wait_outcome(self, pending: Any) -> Outcome: ...
    def resource(self) -> str: ...
    def payload(self) -> Any: ...
    def task_limits(self) -> tuple[float | None, float | None]: ...
    def result_outcome(self, result: Any) -> Outcome: ...
    def map_inputs(self, items: list[Any] | None = None) -> list[tuple[dict[str, Any], Any]]: ...
    def item_reader(self) -> ItemReaderSpec: ...
    def map_limits(self) -> MapLimits: ...
    def item_batcher(self) -> BatcherSpec | None: ...
    def caught(self, catcher: Catcher, error: str, cause: str) -> Outcome: ...


class FlowBase:
    """What every flow works on: one state, its input, its context object and the variables it sees."""

    def __init__(
        self, state: State, state_input: Any, context: dict[str, Any], variables: Mapping[str, Any]
    ) -> None:
        self.state = state
        self.state_input = state_input
        self.context = context
        self.variables = variables


class JsonPathFlow(FlowBase):
    """The data flow of a ``JSONPath`` state.

    ``$`` in ``Assign`` is the state's result: the Pass state's ``Result`` (or effective input), a Task's,
    Parallel's or Map's result after ``ResultSelector``, the effective input of a Choice or Wait state, a
    Catcher's error output. Paths see the variables as they were when the state was entered.
    """

    # Helpers --------------------------------------------------------------------------------------

    def effective_input(self) -> Any:
        """``InputPath`` applied to the state's input."""
        return select(self.state.input_path, self.state_input, self.context, self.variables, "InputPath")

    def _output(self, value: Any) -> Any:
        return select(self.state.output_path, value, self.context, self.variables, "OutputPath")

    def _assign(self, template: Any, data: Any) -> dict[str, Any] | None:
        if not is_set(template):
            return None
        assigned = render(template, data, self.context, self.variables, "Assign")
        check_assignment(assigned)
        return dict(assigned)

    # The questions ----------------------------------------------------------------------------------

    def pass_outcome(self) -> Outcome:
        state = self.state
        effective = self.payload()
        result = copy.deepcopy(state.result) if is_set(state.result) else effective
        assigned = self._assign(state.assign, result)
        merged = merge_result(self.state_input, state.result_path, result)
        for path in state.unset:
            merged = remove_path(merged, path)
        return Outcome(self._output(merged), assigned)

    def choose(self) -> tuple[str, Outcome]:
        state = self.state
        effective = self.effective_input()
        for choice in state.choices:
            if evaluate_rule(choice.rule, effective, self.context, self.variables):
                return choice.next, Outcome(self._output(effective), self._assign(choice.assign, effective))
        if state.default is None:
            raise no_choice_matched(state)
        return state.default, Outcome(self._output(effective), self._assign(state.assign, effective))

    def succeed_outcome(self) -> Outcome:
        return Outcome(self._output(self.effective_input()))

    def fail_fields(self) -> tuple[str | None, str | None]:
        state = self.state
        error, cause = state.error, state.cause
        if state.error_path is not None:
            template = {"v.$": state.error_path}
            error = render(template, self.state_input, self.context, self.variables, "ErrorPath")["v"]
        if state.cause_path is not None:
            template = {"v.$": state.cause_path}
            cause = render(template, self.state_input, self.context, self.variables, "CausePath")["v"]
        return as_text(error), as_text(cause)

    def wait(self, now: float) -> tuple[float, Any]:
        """When a Wait state ends (``Seconds``, ``Timestamp`` or their paths) and its effective input."""
        state = self.state
        effective = self.effective_input()
        if state.seconds is not None:
            due = now + float(state.seconds)
        elif state.timestamp is not None:
            due = parse_timestamp(
                state.timestamp, f"The Timestamp parameter does not reference {ISO_TEXT}: {state.timestamp}"
            )
        elif state.seconds_path is not None:
            seconds = select(state.seconds_path, effective, self.context, self.variables, "SecondsPath")
            quoted = f"{state.seconds_path} == {plain(seconds)}"
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != int(seconds):
                raise StatesError(
                    "States.Runtime", f"The SecondsPath parameter cannot be parsed as a long value: {quoted}"
                )
            if seconds < 0:
                raise StatesError(
                    "States.Runtime", f"The SecondsPath parameter references a negative value: {quoted}"
                )
            due = now + float(seconds)
        elif state.timestamp_path is not None:
            value = select(state.timestamp_path, effective, self.context, self.variables, "TimestampPath")
            due = parse_timestamp(
                value,
                f"The TimestampPath parameter does not reference {ISO_TEXT}: "
                f"{state.timestamp_path} == {plain(value)}",
            )
        else:
            due = now
        check_wait(due, now)
        return due, effective

    def wait_outcome(self, pending: Any) -> Outcome:
        return Outcome(self._output(pending), self._assign(self.state.assign, pending))

    def resource(self) -> str:
        return self.state.resource or ""

    def payload(self) -> Any:
        """The effective input: ``InputPath``, then ``Parameters``."""
        effective = self.effective_input()
        if is_set(self.state.parameters):
            effective = render(self.state.parameters, effective, self.context, self.variables, "Parameters")
        return effective

    def task_limits(self) -> tuple[float | None, float | None]:
        state = self.state
        timeout = self._number(state.timeout_seconds, state.timeout_seconds_path, "TimeoutSecondsPath")
        heartbeat = self._number(
            state.heartbeat_seconds, state.heartbeat_seconds_path, "HeartbeatSecondsPath"
        )
        return timeout, heartbeat

    def result_outcome(self, result: Any) -> Outcome:
        state = self.state
        if is_set(state.result_selector):
            result = render(state.result_selector, result, self.context, self.variables, "ResultSelector")
        assigned = self._assign(state.assign, result)
        merged = merge_result(self.state_input, state.result_path, result)
        return Outcome(self._output(merged), assigned)

    def map_inputs(self, items: list[Any] | None = None) -> list[tuple[dict[str, Any], Any]]:
        """Each iteration's ``$$.Map.Item`` and input; ``items`` are an ItemReader's (else ItemsPath's)."""
        state = self.state
        effective = self.effective_input()
        if items is None:
            items = select(state.items_path, effective, self.context, self.variables, "ItemsPath")
        if not isinstance(items, list):
            raise StatesError(
                "States.Runtime",
                f"Invalid path '{state.items_path}' : the value is not a JSON array: {to_json_text(items)}",
            )
        inputs = []
        for index, value in enumerate(items):
            item = {"Index": index, "Value": value}
            if is_set(state.item_selector):
                context = {**self.context, "Map": {"Item": item}}
                value = render(state.item_selector, effective, context, self.variables, "ItemSelector")
            inputs.append((item, value))
        return inputs

    def item_reader(self) -> ItemReaderSpec:
        reader = self.state.item_reader or {}
        parameters = reader.get("Parameters")
        if parameters is not None:
            parameters = render(
                parameters, self.effective_input(), self.context, self.variables, "ItemReader.Parameters"
            )
        config = dict(reader.get("ReaderConfig") or {})
        max_items = self._number(config.get("MaxItems"), config.get("MaxItemsPath"), "MaxItemsPath")
        return ItemReaderSpec(reader.get("Resource"), parameters, config, _integer(max_items))

    def map_limits(self) -> MapLimits:
        state = self.state
        data = self.effective_input()
        return MapLimits(
            _integer(
                self._number(
                    state.max_concurrency,
                    state.max_concurrency_path,
                    "MaxConcurrencyPath",
                    data,
                    "integer",
                    0,
                )
            ),
            _integer(
                self._number(
                    state.tolerated_failure_count,
                    state.tolerated_failure_count_path,
                    "ToleratedFailureCountPath",
                    data,
                    "integer",
                    0,
                )
            ),
            self._number(
                state.tolerated_failure_percentage,
                state.tolerated_failure_percentage_path,
                "ToleratedFailurePercentagePath",
                data,
            ),
        )

    def item_batcher(self) -> BatcherSpec | None:
        """The Map state's ``ItemBatcher`` settings, evaluated, or None without one."""
        batcher = self.state.item_batcher
        if not isinstance(batcher, dict):
            return None
        data = self.effective_input()
        limits = []
        for field in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
            found = self._number(
                batcher.get(field), batcher.get(f"{field}Path"), f"{field}Path", data, "integer", 1
            )
            limits.append(_integer(found))
        batch_input = batcher.get("BatchInput")
        if batch_input is not None:
            batch_input = render(batch_input, data, self.context, self.variables, "BatchInput")
        return BatcherSpec(limits[0], limits[1], batch_input)

    def caught(self, catcher: Catcher, error: str, cause: str) -> Outcome:
        error_output = {"Error": error, "Cause": cause}
        assigned = self._assign(catcher.assign, error_output)
        return Outcome(merge_result(self.state_input, catcher.result_path, error_output), assigned)

    def _number(
        self,
        value: Any,
        path: str | None,
        field: str,
        data: Any = None,
        kind: str = "float",
        minimum: float | None = None,
    ) -> float | None:
        """A number field or its ``...Path`` form; a path to a value that is no number of ``kind`` (or
        is below ``minimum``) fails the state with ``States.Runtime``, as AWS does."""
        if path is not None:
            source = self.state_input if data is None else data
            found = select(path, source, {}, self.variables, field)
            number = _parse_number(found, kind)
            if number is None or (minimum is not None and number < minimum):
                # AWS's words for a value that is no number; a number below the minimum says so too.
                wanted = kind if number is None or minimum is None else f"{kind} (at least {minimum:g})"
                message = f'The {field} field refers to value "{plain(found)}" which is not a valid {wanted}'
                raise StatesError("States.Runtime", f"{message}: {path}")
            return number
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None


def _parse_number(value: Any, kind: str) -> float | None:
    """A path's value as a number of ``kind`` (``integer`` or ``float``), or ``None`` if it is not one.

    AWS parses the value's text, so the string ``"1"`` is the integer 1 (a variable assigned ``"1"`` is a
    valid ``MaxConcurrencyPath``); ``true``, ``{}`` and ``"NoNumber"`` are not numbers.
    """
    if isinstance(value, str):
        try:
            value = int(value.strip()) if kind == "integer" else float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind == "integer" and value != int(value):
        return None
    return float(value)


def _integer(number: float | None) -> int | None:
    return None if number is None else int(number)


def no_choice_matched(state: State) -> StatesError:
    return StatesError(
        "States.NoChoiceMatched",
        f"No Choice Rules matched and no Default was specified for state '{state.name}'.",
    )


def check_assignment(assigned: Mapping[str, Any]) -> None:
    """Enforce AWS's size limits on variables: 256 KiB for each, and for everything one ``Assign`` sets."""
    total = 0
    for name, value in assigned.items():
        size = json_size(value)
        if size > VARIABLE_LIMIT:
            raise StatesError(
                "States.DataLimitExceeded",
                f"The variable '{name}' has a size of {size} bytes, more than the limit of {VARIABLE_LIMIT}.",
            )
        total += size
    if total > VARIABLE_LIMIT:
        raise StatesError(
            "States.DataLimitExceeded",
            f"The variables assigned by one state have a size of {total} bytes, more than the limit of "
            f"{VARIABLE_LIMIT}.",
        )


def check_wait(due: float, now: float) -> None:
    if due - now > MAX_WAIT_SECONDS:
        raise StatesError("States.Runtime", "Wait state delay is too long.")


def as_text(value: Any) -> str | None:
    """A Fail state's ``Error``/``Cause`` as a string (``None`` stays absent)."""
    return value if isinstance(value, str) or value is None else to_json_text(value)


def plain(value: Any) -> str:
    """A value as AWS quotes it in error causes: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else to_json_text(value)


def parse_timestamp(value: Any, message: str, error: str = "States.Runtime") -> float:
    """Epoch seconds of an ISO-8601 timestamp with an offset; ``StatesError(error, message)`` otherwise."""
    if isinstance(value, str):
        text = value.replace("Z", "+00:00") if value.endswith("Z") else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None and "T" in value:
            return parsed.timestamp()
    raise StatesError(error, message)


def to_json_text(value: Any) -> str:
    """Compact JSON as Step Functions prints it in history and error causes."""
    return dumps_compact(value)


def json_size(value: Any) -> int:
    """The bytes of ``value`` as compact UTF-8 JSON (the data limits), by orjson: a tenth of the time."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # what orjson does not encode (integers beyond 64 bits, keys that are not strings)
        return len(to_json_text(value).encode())


def select(
    path: str | None,
    data: Any,
    context: Any,
    variables: Mapping[str, Any] | None,
    field: str,
) -> Any:
    """Apply ``InputPath``/``OutputPath``/``ItemsPath``: ``None`` (JSON null) gives ``{}``."""
    if path is None:
        return {}
    if path == "$":
        return data
    compiled = compile_path(path)
    try:
        return compiled.evaluate(data, context, variables)
    except PathNotFound as exc:
        document = context if compiled.is_context else data
        raise StatesError(
            "States.Runtime", f"Invalid path '{path}' : {_missing_part(compiled.keys, document, path)}"
        ) from exc


def _missing_part(keys: tuple[Any, ...] | None, document: Any, path: str) -> str:
    """Where a reference path stops matching, worded as Step Functions (Jayway JsonPath) words it."""
    if keys is None:
        return f"No results for path: {path}"
    walked = "$"
    node = document
    for position, key in enumerate(keys):
        walked += f"[{key}]" if isinstance(key, int) else f"['{key}']"
        found = isinstance(key, str) and isinstance(node, dict) and key in node
        found = found or (isinstance(key, int) and isinstance(node, list) and -len(node) <= key < len(node))
        if not found:
            if position < len(keys) - 1:
                return f"Missing property in path {walked}"
            break
        node = node[key]
    return f"No results for path: {walked}"


def render(
    template: Any,
    data: Any,
    context: Any,
    variables: Mapping[str, Any] | None,
    field: str,
) -> Any:
    """Evaluate a payload template (``Parameters``, ``ResultSelector``, ``ItemSelector``)."""
    return apply_template(template, data, context, variables, field_name=field)


def merge_result(state_input: Any, result_path: str | None, result: Any) -> Any:
    """Apply ``ResultPath``: ``None`` (JSON null) discards the result and keeps the input."""
    if result_path is None:
        return state_input
    if result_path == "$":
        return result
    return set_path(state_input, result_path, result)


def remove_path(data: Any, path: str) -> Any:
    """A copy of ``data`` without the value at the reference path ``path`` (absent: unchanged)."""
    keys = compile_path(path).keys
    if not keys:
        return data
    if not isinstance(data, dict):
        return data
    root = dict(data)
    node: Any = root
    for key in keys[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return root
        child = dict(child)
        node[key] = child
        node = child
    if isinstance(node, dict):
        node.pop(keys[-1], None)
    return root


def check_size(value: Any, limit: int, state_name: str) -> None:
    """Raise ``States.DataLimitExceeded`` when ``value`` serialises to more than ``limit`` bytes."""
    if limit <= 0:
        return
    size = json_size(value)
    if size > limit:
        raise StatesError(
            "States.DataLimitExceeded",
            f"The state/task '{state_name}' returned a result with a size exceeding the maximum number of "
            "bytes service limit.",
        )
