"""Static checks of a state machine definition, as AWS makes them when a state machine is created.

:func:`validate_definition` walks a definition (parsed JSON or its text) and returns every problem it
finds as a :class:`DefinitionIssue` carrying AWS's diagnostic code (``SCHEMA_VALIDATION_FAILED``,
``MISSING_TRANSITION_TARGET``, ...), the JSON pointer of the offending field and a message worded as AWS
words it where that wording is known. An empty list means the definition is valid.

Path and intrinsic syntax is checked with :mod:`machinery.asl.jsonpath` and
:mod:`machinery.asl.intrinsics` when they can be imported; a small lenient checker stands in otherwise so
that validation never rejects what those modules would accept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from machinery.asl.validation_map import MapFieldChecks
from machinery.asl.validation_rules import (
    _ALL_JSONATA_ONLY,
    _ALL_JSONPATH_ONLY,
    _COMMON_FIELDS,
    _COMPARATORS,
    _JSONATA_FIELDS,
    _JSONPATH_FIELDS,
    _MAX_SECONDS,
    _MAX_STATE_NAME,
    _STATE_TYPES,
    _TRANSITIONING,
    _VARIABLE_NAME,
    _WITH_ERROR_HANDLING,
    JSONATA,
    JSONPATH,
    SCHEMA,
    _intrinsic_error,
    _is_int,
    _is_number,
    _is_resource,
    _is_rfc3339,
    _path_error,
    _pointer,
    _type_name,
    express_refusal,
    runnable_resource,
)

__all__ = ["DefinitionIssue", "format_issues", "validate_definition"]


@dataclass(frozen=True)
class DefinitionIssue:
    """One problem found in a definition.

    :ivar code: AWS's diagnostic code, e.g. ``SCHEMA_VALIDATION_FAILED``.
    :ivar path: JSON pointer of the offending field (``/`` for the whole definition).
    :ivar message: what is wrong, in AWS's wording where it is known (the location is in :attr:`path`).
    """

    code: str
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        """Return the issue as ``{"code", "field", "message"}`` for API responses."""
        return {"code": self.code, "field": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message} at {self.path}"


def format_issues(issues: Sequence[DefinitionIssue]) -> str:
    """Render issues as AWS renders a rejected definition.

    For instance ``Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: These fields are
    required: [States] at /'`` (several issues are separated by ``, ``).
    """
    return "Invalid State Machine Definition: " + ", ".join(f"'{issue}'" for issue in issues)


def validate_definition(definition: Any, *, state_machine_type: str = "STANDARD") -> list[DefinitionIssue]:
    """Check a state machine definition as AWS's CreateStateMachine does.

    :param definition: the parsed definition, or its JSON text.
    :param state_machine_type: ``STANDARD`` or ``EXPRESS``; express machines refuse ``.sync`` and
        ``.waitForTaskToken`` integrations.
    :return: every issue found, in document order; empty when the definition is valid.
    """
    if isinstance(definition, str | bytes):
        try:
            definition = json.loads(definition)
        except (ValueError, RecursionError) as exc:
            return [DefinitionIssue("INVALID_JSON_DESCRIPTION", "/", f"Invalid JSON: {exc}")]
    checker = _Checker(express=state_machine_type.upper() == "EXPRESS")
    try:
        checker.machine(definition, "", root=True, language=JSONPATH)
    except RecursionError:
        checker.issues.append(DefinitionIssue(SCHEMA, "/", "The definition is nested too deeply"))
    return checker.issues


class _Checker(MapFieldChecks):
    """Walks one definition and collects issues; one instance per :func:`validate_definition` call."""

    def __init__(self, *, express: bool) -> None:
        self.issues: list[DefinitionIssue] = []
        self.express = express
        self.machine_language = JSONPATH
        self.seen_names: set[str] = set()

    def add(self, path: str, message: str, code: str = SCHEMA) -> None:
        self.issues.append(DefinitionIssue(code, path or "/", message))

    # -- generic field helpers ----------------------------------------------------------------------

    def unknown_fields(self, obj: dict[str, Any], allowed: Iterable[str], base: str) -> None:
        allowed_set = set(allowed)
        for key in obj:
            if key not in allowed_set:
                self.add(_pointer(base, key), f"Field '{key}' is not supported")

    def required(self, obj: dict[str, Any], names: Sequence[str], base: str) -> None:
        missing = [name for name in names if name not in obj]
        if missing:
            self.add(base, f"These fields are required: [{', '.join(missing)}]")

    def expect(self, obj: dict[str, Any], name: str, base: str, kind: str) -> bool:
        """Check the type of an optional field; return whether it is present and of that type."""
        if name not in obj:
            return False
        value = obj[name]
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": _is_int(value),
            "number": _is_number(value),
            "object": isinstance(value, dict),
            "array": isinstance(value, list),
        }[kind]
        if not ok:
            self.add(
                _pointer(base, name),
                f"Expected value of type {kind.capitalize()} but was {_type_name(value)}",
            )
        return ok

    def exclusive(
        self, obj: dict[str, Any], names: Sequence[str], base: str, *, required: bool = False
    ) -> None:
        present = [name for name in names if name in obj]
        if len(present) > 1:
            self.add(base, f"Only one of the fields {', '.join(present)} can be set")
        elif required and not present:
            self.add(base, f"Exactly one of the fields {', '.join(names)} is required but none was set")

    def jsonata_string(self, value: Any, path: str) -> bool:
        """Check a string that opens a JSONata expression; return whether ``value`` is one."""
        if isinstance(value, str) and value.startswith("{%"):
            if not value.endswith("%}") or len(value) < 4:
                self.add(path, "The JSONata expression must be enclosed in '{%' and '%}'")
            return True
        return False

    def integer(
        self,
        obj: dict[str, Any],
        name: str,
        base: str,
        language: str,
        *,
        minimum: int,
        maximum: int = _MAX_SECONDS,
    ) -> int | None:
        """Check an integer field that JSONata may also give as an expression; return its static value."""
        if name not in obj:
            return None
        value = obj[name]
        if language == JSONATA and self.jsonata_string(value, _pointer(base, name)):
            return None
        if not _is_int(value):
            self.add(_pointer(base, name), f"Expected value of type Integer but was {_type_name(value)}")
            return None
        if not minimum <= value <= maximum:
            self.add(_pointer(base, name), f"The value of '{name}' must be between {minimum} and {maximum}")
            return None
        return int(value)

    def path_field(
        self,
        obj: dict[str, Any],
        name: str,
        base: str,
        *,
        definite: bool,
        nullable: bool = False,
        intrinsic: bool = False,
        context: bool = True,
    ) -> None:
        if name not in obj:
            return
        value = obj[name]
        if value is None and nullable:
            return
        kind = "ReferencePath" if definite else "JSONPath"
        if not isinstance(value, str):
            self.add(_pointer(base, name), f"The value for the field '{name}' must be a valid {kind}")
            return
        if intrinsic and value.startswith("States."):
            problem = _intrinsic_error(value)
        else:
            problem = _path_error(value, definite=definite, context=context)
        if problem is not None:
            self.add(
                _pointer(base, name), f"The value for the field '{name}' must be a valid {kind}: {problem}"
            )

    # -- templates ----------------------------------------------------------------------------------

    def template(self, value: Any, path: str, language: str) -> None:
        """Check a payload template (Parameters, ResultSelector, Arguments, Output, ...)."""
        if isinstance(value, dict):
            for key, item in value.items():
                item_path = _pointer(path, key)
                if language == JSONPATH and isinstance(key, str) and key.endswith(".$"):
                    self.dynamic_value(key, item, item_path)
                else:
                    self.template(item, item_path, language)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.template(item, _pointer(path, index), language)
        elif language == JSONATA:
            self.jsonata_string(value, path)

    def dynamic_value(self, key: str, value: Any, path: str) -> None:
        message = (
            f"The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call"
        )
        if not isinstance(value, str):
            self.add(path, message)
            return
        problem = (
            _intrinsic_error(value) if value.startswith("States.") else _path_error(value, definite=False)
        )
        if problem is not None:
            self.add(path, f"{message}: {problem}")

    def assign(self, obj: dict[str, Any], base: str, language: str) -> None:
        if not self.expect(obj, "Assign", base, "object"):
            return
        path = _pointer(base, "Assign")
        for key in obj["Assign"]:
            name = key[:-2] if language == JSONPATH and key.endswith(".$") else key
            if not _VARIABLE_NAME.match(name) or len(name) > _MAX_STATE_NAME:
                self.add(_pointer(path, key), f"Invalid variable name '{name}'")
        self.template(obj["Assign"], path, language)

    # -- machines and states ------------------------------------------------------------------------

    def machine(
        self, definition: Any, base: str, *, root: bool, language: str, processor: bool = False
    ) -> None:
        """Check a whole machine, a Parallel branch or a Map item processor."""
        if not isinstance(definition, dict):
            self.add(base, f"Expected value of type Object but was {_type_name(definition)}")
            return
        self.required(definition, ["States", "StartAt"], base)
        allowed = {"StartAt", "States", "Comment"}
        if root:
            allowed |= {"QueryLanguage", "TimeoutSeconds", "Version"}
        if processor:
            allowed.add("ProcessorConfig")
        self.unknown_fields(definition, allowed, base)
        self.expect(definition, "Comment", base, "string")
        if root:
            if self.expect(definition, "Version", base, "string") and definition["Version"] != "1.0":
                self.add(_pointer(base, "Version"), "The value of 'Version' must be '1.0'")
            self.integer(definition, "TimeoutSeconds", base, JSONPATH, minimum=0)
            if "QueryLanguage" in definition:
                if definition["QueryLanguage"] in (JSONPATH, JSONATA):
                    language = self.machine_language = definition["QueryLanguage"]
                else:
                    self.add(
                        _pointer(base, "QueryLanguage"),
                        "The value of 'QueryLanguage' must be JSONPath or JSONata",
                    )
        start_ok = self.expect(definition, "StartAt", base, "string")
        states = definition.get("States")
        if "States" not in definition:
            return
        if not isinstance(states, dict):
            self.add(_pointer(base, "States"), f"Expected value of type Object but was {_type_name(states)}")
            return
        if not states:
            self.add(_pointer(base, "States"), "The field 'States' must contain at least one state")
            return
        states_path = _pointer(base, "States")
        for name, state in states.items():
            state_path = _pointer(states_path, name)
            if not 1 <= len(name) <= _MAX_STATE_NAME:
                self.add(
                    state_path, f"State name '{name}' must be between 1 and {_MAX_STATE_NAME} characters long"
                )
            if name in self.seen_names:
                self.add(state_path, f"Duplicate State name: {name}", "DUPLICATE_STATE_NAME")
            self.seen_names.add(name)
            self.state(name, state, state_path, language)
        if start_ok and definition["StartAt"] not in states:
            self.add(
                _pointer(base, "StartAt"),
                f"Missing 'StartAt' target: {definition['StartAt']}",
                "MISSING_TRANSITION_TARGET",
            )
        self.transitions(states, states_path)
        if start_ok and definition["StartAt"] in states:
            self.reachability(definition["StartAt"], states, states_path)

    def state(self, name: str, state: Any, base: str, inherited: str) -> None:
        """Check one state: its type, the fields its type and query language allow, then its own rules."""
        if not isinstance(state, dict):
            self.add(base, f"Expected value of type Object but was {_type_name(state)}")
            return
        state_type = state.get("Type")
        if "Type" not in state:
            self.add(base, "The field 'Type' is required but was missing")
            return
        if state_type not in _STATE_TYPES:
            self.add(_pointer(base, "Type"), f"Invalid State Type: {state_type}")
            return
        language = self.language(state, base, inherited)
        self.expect(state, "Comment", base, "string")
        allowed = {"Type", "Comment", "QueryLanguage"} | _COMMON_FIELDS[state_type]
        if state_type in _TRANSITIONING:
            allowed |= {"Next", "End"}
        if state_type not in ("Succeed", "Fail"):
            allowed.add("Assign")
        if state_type in _WITH_ERROR_HANDLING:
            allowed |= {"Retry", "Catch"}
        own = _JSONPATH_FIELDS if language == JSONPATH else _JSONATA_FIELDS
        allowed |= own[state_type]
        if language == JSONATA:
            allowed.discard("Result")
        for key in state:
            if key in allowed:
                continue
            if language == JSONATA and key in _ALL_JSONPATH_ONLY:
                self.add(
                    _pointer(base, key), f"The field '{key}' is not supported for the JSONata query language"
                )
            elif language == JSONPATH and key in _ALL_JSONATA_ONLY:
                self.add(
                    _pointer(base, key),
                    f"The field '{key}' is only supported when 'QueryLanguage' is 'JSONata'",
                )
            else:
                self.add(_pointer(base, key), f"Field '{key}' is not supported")
        if state_type in _TRANSITIONING:
            self.next_or_end(state, base)
        self.common_io(state, state_type, base, language)
        getattr(self, f"state_{state_type.lower()}")(state, base, language)
        if state_type in _WITH_ERROR_HANDLING:
            self.retry(state, base)
            self.catch(state, base, language)

    def language(self, state: dict[str, Any], base: str, inherited: str) -> str:
        """The state's query language (its own ``QueryLanguage`` or the inherited one), checking the value."""
        if "QueryLanguage" not in state:
            return inherited
        value = state["QueryLanguage"]
        if value not in (JSONPATH, JSONATA):
            self.add(
                _pointer(base, "QueryLanguage"), "The value of 'QueryLanguage' must be JSONPath or JSONata"
            )
            return inherited
        if value == JSONPATH and self.machine_language == JSONATA:
            self.add(
                base, "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine"
            )
        return str(value)

    def next_or_end(self, state: dict[str, Any], base: str) -> None:
        has_next = self.expect(state, "Next", base, "string")
        has_end = self.expect(state, "End", base, "boolean") and state["End"] is True
        if "Next" in state and "End" in state:
            self.add(base, "Only one of the fields Next, End can be set")
        elif not has_next and not has_end and "Next" not in state:
            self.add(base, "This state must have either a 'Next' field or 'End': true")

    def common_io(self, state: dict[str, Any], state_type: str, base: str, language: str) -> None:
        """Check the input and output fields every state type shares (paths, templates, ``Assign``)."""
        self.assign(state, base, language)
        if language == JSONATA:
            for field in ("Output", "Arguments"):
                if field in state:
                    self.template(state[field], _pointer(base, field), language)
            return
        for field in ("InputPath", "OutputPath"):
            self.path_field(state, field, base, definite=False, nullable=True)
        self.path_field(state, "ResultPath", base, definite=True, nullable=True, context=False)
        for field in ("Parameters", "ResultSelector"):
            if self.expect(state, field, base, "object"):
                self.template(state[field], _pointer(base, field), language)

    # -- per state type -----------------------------------------------------------------------------

    def state_pass(self, state: dict[str, Any], base: str, language: str) -> None:
        """Pass states accept any Result; nothing beyond the common fields to check."""

    def state_succeed(self, state: dict[str, Any], base: str, language: str) -> None:
        """Succeed states have only common fields."""

    def state_task(self, state: dict[str, Any], base: str, language: str) -> None:
        """Check a Task state: its resource, timeouts, heartbeats and credentials."""
        if "Resource" not in state:
            self.add(base, "The field 'Resource' is required but was missing")
        elif language == JSONATA and self.jsonata_string(state["Resource"], _pointer(base, "Resource")):
            pass
        elif not _is_resource(state["Resource"]):
            self.add(
                _pointer(base, "Resource"),
                "Value is not a valid resource: an ARN, an http(s):// URL or a registered service's name",
                "INVALID_RESOURCE",
            )
        elif self.express and express_refusal(state["Resource"]) is not None:
            self.add(_pointer(base, "Resource"), str(express_refusal(state["Resource"])))
        elif not runnable_resource(state["Resource"]):
            # AWS's words for an integration it does not know; machinery refuses those it cannot run.
            self.add(
                _pointer(base, "Resource"),
                f"The resource provided {state['Resource']} is not recognized. The value is not a valid "
                "resource ARN, or the resource is not available in this region.",
            )
        if "Credentials" in state:
            path = _pointer(base, "Credentials")
            credentials = state["Credentials"]
            if not isinstance(credentials, dict):
                self.add(path, f"Expected value of type Object but was {_type_name(credentials)}")
            elif "RoleArn" not in credentials and "RoleArn.$" not in credentials:
                self.add(path, "The field 'RoleArn' is required but was missing")
            else:
                allowed = ("RoleArn", "RoleArn.$") if language == JSONPATH else ("RoleArn",)
                self.unknown_fields(credentials, allowed, path)
                self.template(credentials, path, language)
        for field in ("TimeoutSeconds", "HeartbeatSeconds"):
            self.exclusive(state, (field, f"{field}Path"), base)
            self.path_field(state, f"{field}Path", base, definite=True)
        timeout = self.integer(state, "TimeoutSeconds", base, language, minimum=1)
        heartbeat = self.integer(state, "HeartbeatSeconds", base, language, minimum=1)
        if timeout is not None and heartbeat is not None and heartbeat >= timeout:
            self.add(
                _pointer(base, "HeartbeatSeconds"), "HeartbeatSeconds must be smaller than TimeoutSeconds"
            )

    def state_wait(self, state: dict[str, Any], base: str, language: str) -> None:
        self.exclusive(state, ("Seconds", "SecondsPath", "Timestamp", "TimestampPath"), base, required=True)
        self.integer(state, "Seconds", base, language, minimum=0)
        if "Timestamp" in state:
            value = state["Timestamp"]
            path = _pointer(base, "Timestamp")
            if language == JSONATA and self.jsonata_string(value, path):
                pass
            elif not isinstance(value, str) or not _is_rfc3339(value):
                self.add(path, "String does not match RFC3339 timestamp")
        for field in ("SecondsPath", "TimestampPath"):
            self.path_field(state, field, base, definite=True)

    def state_fail(self, state: dict[str, Any], base: str, language: str) -> None:
        for field in ("Error", "Cause"):
            self.exclusive(state, (field, f"{field}Path"), base)
            if language == JSONATA and self.jsonata_string(state.get(field), _pointer(base, field)):
                continue
            self.expect(state, field, base, "string")
            self.path_field(state, f"{field}Path", base, definite=True, intrinsic=True)

    def state_parallel(self, state: dict[str, Any], base: str, language: str) -> None:
        if "Branches" not in state:
            self.add(base, "The field 'Branches' is required but was missing")
            return
        if not self.expect(state, "Branches", base, "array"):
            return
        if not state["Branches"]:
            self.add(_pointer(base, "Branches"), "The field 'Branches' must contain at least one branch")
        for index, branch in enumerate(state["Branches"]):
            self.machine(branch, _pointer(base, "Branches", index), root=False, language=language)

    def state_map(self, state: dict[str, Any], base: str, language: str) -> None:
        """Check a Map state: its item processor, item source, selector, batching and tolerances."""
        self.exclusive(state, ("ItemProcessor", "Iterator"), base, required=True)
        for field in ("ItemProcessor", "Iterator"):
            if field in state:
                self.item_processor(state[field], _pointer(base, field), language)
        self.exclusive(state, ("ItemSelector", "Parameters"), base)
        if "ItemSelector" in state:
            selector = state["ItemSelector"]
            if language == JSONPATH and not isinstance(selector, dict):
                self.add(
                    _pointer(base, "ItemSelector"),
                    f"Expected value of type Object but was {_type_name(selector)}",
                )
            else:
                self.template(selector, _pointer(base, "ItemSelector"), language)
        if "Items" in state and language == JSONATA:
            items = state["Items"]
            if not isinstance(items, list) and not self.jsonata_string(items, _pointer(base, "Items")):
                self.add(
                    _pointer(base, "Items"), "The field 'Items' must be an array or a JSONata expression"
                )
            elif isinstance(items, list):
                self.template(items, _pointer(base, "Items"), language)
        for field in (
            "ItemsPath",
            "MaxConcurrencyPath",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
        ):
            self.path_field(state, field, base, definite=True)
        for field in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
            self.exclusive(state, (field, f"{field}Path"), base)
        self.integer(state, "MaxConcurrency", base, language, minimum=0, maximum=2**31 - 1)
        self.integer(state, "ToleratedFailureCount", base, language, minimum=0, maximum=2**31 - 1)
        if "ToleratedFailurePercentage" in state:
            value = state["ToleratedFailurePercentage"]
            path = _pointer(base, "ToleratedFailurePercentage")
            if language == JSONATA and self.jsonata_string(value, path):
                pass
            elif not _is_number(value) or not 0 <= value <= 100:
                self.add(path, "The value of 'ToleratedFailurePercentage' must be a number between 0 and 100")
        if "ItemReader" in state:
            self.item_reader(state, base, language)
        if self.expect(state, "ItemBatcher", base, "object"):
            self.item_batcher(state, base, language)
        if self.expect(state, "ResultWriter", base, "object"):
            self.template(state["ResultWriter"], _pointer(base, "ResultWriter"), language)
        if "Label" in state:
            self.label(state["Label"], _pointer(base, "Label"))

    def item_processor(self, processor: Any, base: str, language: str) -> None:
        if isinstance(processor, dict) and "ProcessorConfig" in processor:
            self.processor_config(processor["ProcessorConfig"], _pointer(base, "ProcessorConfig"))
        self.machine(processor, base, root=False, language=language, processor=True)

    def processor_config(self, config: Any, path: str) -> None:
        if not isinstance(config, dict):
            self.add(path, f"Expected value of type Object but was {_type_name(config)}")
            return
        self.unknown_fields(config, ("Mode", "ExecutionType"), path)
        if "Mode" in config and config["Mode"] not in ("INLINE", "DISTRIBUTED"):
            self.add(_pointer(path, "Mode"), "The value of 'Mode' must be INLINE or DISTRIBUTED")
        if "ExecutionType" in config and config["ExecutionType"] not in ("STANDARD", "EXPRESS"):
            self.add(
                _pointer(path, "ExecutionType"), "The value of 'ExecutionType' must be STANDARD or EXPRESS"
            )

    # -- Choice -------------------------------------------------------------------------------------

    def state_choice(self, state: dict[str, Any], base: str, language: str) -> None:
        self.expect(state, "Default", base, "string")
        if "Choices" not in state:
            self.add(base, "The field 'Choices' is required but was missing")
            return
        if not self.expect(state, "Choices", base, "array"):
            return
        if not state["Choices"]:
            self.add(_pointer(base, "Choices"), "The field 'Choices' must contain at least one rule")
        for index, rule in enumerate(state["Choices"]):
            self.choice_rule(rule, _pointer(base, "Choices", index), language, top=True)

    def choice_rule(self, rule: Any, base: str, language: str, *, top: bool) -> None:
        """Check a Choice rule and its nested rules (``top``: one of the state's choices, with ``Next``)."""
        if not isinstance(rule, dict):
            self.add(base, f"Expected value of type Object but was {_type_name(rule)}")
            return
        allowed = {"Comment"}
        if top:
            allowed |= {"Next", "Assign"} | ({"Output"} if language == JSONATA else set())
            if "Next" not in rule:
                self.add(base, "The field 'Next' is required but was missing")
            self.expect(rule, "Next", base, "string")
            self.assign(rule, base, language)
            if "Output" in rule and language == JSONATA:
                self.template(rule["Output"], _pointer(base, "Output"), language)
        elif "Next" in rule:
            self.add(_pointer(base, "Next"), "Nested choice rules cannot have a 'Next' field")
            allowed.add("Next")
        if language == JSONATA:
            allowed.add("Condition")
            self.unknown_fields(rule, allowed, base)
            if "Condition" not in rule:
                self.add(base, "The field 'Condition' is required but was missing")
            elif not isinstance(rule["Condition"], bool) and not self.jsonata_string(
                rule["Condition"], _pointer(base, "Condition")
            ):
                self.add(_pointer(base, "Condition"), "The field 'Condition' must be a JSONata expression")
            return
        operators = [key for key in rule if key in _COMPARATORS or key in ("And", "Or", "Not")]
        allowed |= set(operators)
        if not any(key in ("And", "Or", "Not") for key in operators):
            allowed.add("Variable")
        self.unknown_fields(rule, allowed, base)
        if len(operators) != 1:
            found = ", ".join(operators) or "none"
            self.add(base, f"A choice rule must have exactly one comparison operator (found: {found})")
            return
        operator = operators[0]
        value = rule[operator]
        op_path = _pointer(base, operator)
        if operator in ("And", "Or"):
            if not isinstance(value, list) or not value:
                self.add(op_path, f"The field '{operator}' must be a non-empty array of choice rules")
                return
            for index, nested in enumerate(value):
                self.choice_rule(nested, _pointer(op_path, index), language, top=False)
            return
        if operator == "Not":
            self.choice_rule(value, op_path, language, top=False)
            return
        if "Variable" not in rule:
            self.add(base, "The field 'Variable' is required but was missing")
        else:
            self.path_field(rule, "Variable", base, definite=False)
        self.comparator_value(operator, value, op_path)

    def comparator_value(self, operator: str, value: Any, path: str) -> None:
        kind = _COMPARATORS[operator]
        checks: dict[str, Callable[[Any], bool]] = {
            "string": lambda v: isinstance(v, str),
            "number": _is_number,
            "boolean": lambda v: isinstance(v, bool),
            "timestamp": lambda v: isinstance(v, str) and _is_rfc3339(v),
            "path": lambda v: isinstance(v, str) and _path_error(v, definite=False) is None,
        }
        if not checks[kind](value):
            wanted = {"path": "a valid JSONPath", "timestamp": "an RFC3339 timestamp"}.get(kind, f"a {kind}")
            self.add(path, f"The value of '{operator}' must be {wanted} but was {_type_name(value)}")

    # -- Retry and Catch ----------------------------------------------------------------------------

    def error_equals(self, entry: dict[str, Any], base: str, last: bool) -> None:
        if "ErrorEquals" not in entry:
            self.add(base, "The field 'ErrorEquals' is required but was missing")
            return
        errors = entry["ErrorEquals"]
        path = _pointer(base, "ErrorEquals")
        if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
            self.add(path, "The field 'ErrorEquals' must be a non-empty array of strings")
            return
        if "States.ALL" in errors and (len(errors) > 1 or not last):
            self.add(path, "States.ALL must appear alone in the last ErrorEquals of the list")

    def retry(self, state: dict[str, Any], base: str) -> None:
        """Check a state's ``Retry`` list: each retrier's fields and error names."""
        if not self.expect(state, "Retry", base, "array"):
            return
        retriers = state["Retry"]
        for index, retrier in enumerate(retriers):
            path = _pointer(base, "Retry", index)
            if not isinstance(retrier, dict):
                self.add(path, f"Expected value of type Object but was {_type_name(retrier)}")
                continue
            fields = ("ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds")
            self.unknown_fields(retrier, (*fields, "JitterStrategy", "Comment"), path)
            self.error_equals(retrier, path, index == len(retriers) - 1)
            self.integer(retrier, "IntervalSeconds", path, JSONPATH, minimum=1)
            self.integer(retrier, "MaxDelaySeconds", path, JSONPATH, minimum=1)
            self.integer(retrier, "MaxAttempts", path, JSONPATH, minimum=0)
            if "BackoffRate" in retrier and (
                not _is_number(retrier["BackoffRate"]) or retrier["BackoffRate"] < 1.0
            ):
                self.add(_pointer(path, "BackoffRate"), "The value of 'BackoffRate' must be a number >= 1.0")
            if "JitterStrategy" in retrier and retrier["JitterStrategy"] not in ("FULL", "NONE"):
                self.add(
                    _pointer(path, "JitterStrategy"), "The value of 'JitterStrategy' must be FULL or NONE"
                )
            self.expect(retrier, "Comment", path, "string")

    def catch(self, state: dict[str, Any], base: str, language: str) -> None:
        """Check a state's ``Catch`` list: each catcher's error names, ``Next`` and result fields."""
        if not self.expect(state, "Catch", base, "array"):
            return
        catchers = state["Catch"]
        for index, catcher in enumerate(catchers):
            path = _pointer(base, "Catch", index)
            if not isinstance(catcher, dict):
                self.add(path, f"Expected value of type Object but was {_type_name(catcher)}")
                continue
            own = {"ResultPath"} if language == JSONPATH else {"Output"}
            self.unknown_fields(catcher, {"ErrorEquals", "Next", "Comment", "Assign"} | own, path)
            self.error_equals(catcher, path, index == len(catchers) - 1)
            if "Next" not in catcher:
                self.add(path, "The field 'Next' is required but was missing")
            self.expect(catcher, "Next", path, "string")
            self.assign(catcher, path, language)
            if language == JSONPATH:
                self.path_field(catcher, "ResultPath", path, definite=True, nullable=True, context=False)
            elif "Output" in catcher:
                self.template(catcher["Output"], _pointer(path, "Output"), language)

    # -- graph --------------------------------------------------------------------------------------

    @staticmethod
    def targets(state: Any, base: str) -> list[tuple[str, str]]:
        """Return ``(target name, pointer)`` for each transition a state makes."""
        if not isinstance(state, dict):
            return []
        found: list[tuple[str, str]] = []
        if isinstance(state.get("Next"), str):
            found.append((state["Next"], _pointer(base, "Next")))
        if state.get("Type") == "Choice":
            if isinstance(state.get("Default"), str):
                found.append((state["Default"], _pointer(base, "Default")))
            choices = state.get("Choices")
            for index, rule in enumerate(choices if isinstance(choices, list) else []):
                if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                    found.append((rule["Next"], _pointer(base, "Choices", index, "Next")))
        catchers = state.get("Catch")
        for index, catcher in enumerate(catchers if isinstance(catchers, list) else []):
            if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
                found.append((catcher["Next"], _pointer(base, "Catch", index, "Next")))
        return found

    def transitions(self, states: dict[str, Any], base: str) -> None:
        """Every ``Next`` names a state, and the machine has at least one terminal state."""
        terminal = False
        for name, state in states.items():
            state_path = _pointer(base, name)
            for target, path in self.targets(state, state_path):
                if target not in states:
                    self.add(path, f"Missing 'Next' target: {target}", "MISSING_TRANSITION_TARGET")
            if isinstance(state, dict) and (
                state.get("End") is True or state.get("Type") in ("Succeed", "Fail")
            ):
                terminal = True
        if not terminal:
            self.add(base, "Workflow has no terminal state", "MISSING_END_STATE")

    def reachability(self, start: str, states: dict[str, Any], base: str) -> None:
        reached = {start}
        pending = [start]
        while pending:
            name = pending.pop()
            for target, _ in self.targets(states[name], _pointer(base, name)):
                if target in states and target not in reached:
                    reached.add(target)
                    pending.append(target)
        for name in states:
            if name not in reached:
                self.add(_pointer(base, name), f"State '{name}' is not reachable", "UNREACHABLE_STATE")
