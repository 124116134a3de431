"""The compiled, immutable model of a state machine.

A definition (parsed JSON) is compiled once per workflow version by :func:`compile_machine` and cached;
the engine only ever reads these objects. Every states container (the machine itself, each Parallel
branch, each Map item processor) is a :class:`StateMachine` addressed by a :data:`ContainerKey`, so that
a running branch can be stored as plain data (its key and its current state's name) and found again after
a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Address of a states container inside a machine: ``()`` is the machine itself;
#: ``("P", "0")`` the first branch of Parallel state ``P``; ``("M", "items")`` Map state ``M``'s processor;
#: nesting appends further pairs.
ContainerKey = tuple[str, ...]

JSONPATH = "JSONPath"
JSONATA = "JSONata"

DEFAULT_TASK_TIMEOUT_SECONDS = 99999999

#: The default of optional fields whose JSON value may be anything, ``null`` included (see :func:`is_set`).
_UNSET: Any = object()


#: The largest ItemBatcher batch AWS allows (MaxInputBytesPerBatch), also the limit when none is given.
MAX_BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class Retrier:
    """One element of a state's ``Retry`` array."""

    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter_strategy: str = "NONE"


@dataclass(frozen=True)
class Catcher:
    """One element of a state's ``Catch`` array."""

    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"
    assign: Any = _UNSET
    output: Any = _UNSET


@dataclass(frozen=True)
class ChoiceBranch:
    """A top-level Choice rule, the state it leads to, and the ``Assign``/``Output`` used when it matches."""

    rule: Mapping[str, Any]
    next: str
    assign: Any = _UNSET
    output: Any = _UNSET


@dataclass(frozen=True)
class State:
    """One state. Fields that a state type does not use keep their defaults.

    ``raw`` keeps the state's definition for the history and for rarely used fields.
    """

    name: str
    type: str
    raw: Mapping[str, Any]
    query_language: str = JSONPATH
    next: str | None = None
    end: bool = False
    comment: str | None = None
    # data flow (JSONPath); ``None`` for a path means the field was JSON null
    input_path: str | None = "$"
    output_path: str | None = "$"
    result_path: str | None = "$"
    parameters: Any = _UNSET
    result_selector: Any = _UNSET
    result: Any = _UNSET
    # data flow (JSONata)
    arguments: Any = _UNSET
    output: Any = _UNSET
    assign: Any = _UNSET
    # errors
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    # Task
    resource: str | None = None
    timeout_seconds: Any = None
    timeout_seconds_path: str | None = None
    heartbeat_seconds: Any = None
    heartbeat_seconds_path: str | None = None
    credentials: Any = None
    # Choice
    choices: tuple[ChoiceBranch, ...] = ()
    default: str | None = None
    # Wait
    seconds: Any = None
    seconds_path: str | None = None
    timestamp: Any = None
    timestamp_path: str | None = None
    # Fail
    error: Any = None
    cause: Any = None
    error_path: str | None = None
    cause_path: str | None = None
    # Parallel
    branches: tuple[ContainerKey, ...] = ()
    # Map
    processor: ContainerKey | None = None
    processor_mode: str = "INLINE"
    items_path: str | None = "$"
    items: Any = _UNSET
    item_selector: Any = _UNSET
    item_reader: Any = None
    item_batcher: Any = None
    result_writer: Any = None
    max_concurrency: Any = 0
    max_concurrency_path: str | None = None
    tolerated_failure_count: Any = None
    tolerated_failure_count_path: str | None = None
    tolerated_failure_percentage: Any = None
    tolerated_failure_percentage_path: str | None = None
    label: str | None = None
    # machinery extension used by the simple form's ``delete``/``move`` operations
    unset: tuple[str, ...] = ()

    def has(self, value: Any) -> bool:
        """Whether an optional template field (``parameters``, ``result`` ...) was given."""
        return value is not _UNSET


def is_set(value: Any) -> bool:
    """Whether an optional template field of a :class:`State` was present in the definition."""
    return value is not _UNSET


@dataclass(frozen=True)
class StateMachine:
    """A states container: ``StartAt`` and ``States``."""

    key: ContainerKey
    start_at: str
    states: Mapping[str, State]
    query_language: str = JSONPATH
    timeout_seconds: int | None = None
    comment: str | None = None


@dataclass(frozen=True)
class CompiledMachine:
    """A whole definition: the root container and every nested one, by key."""

    definition: Mapping[str, Any]
    root: StateMachine
    containers: Mapping[ContainerKey, StateMachine] = field(default_factory=dict)

    def container(self, key: ContainerKey) -> StateMachine:
        return self.containers[key]

    def state(self, key: ContainerKey, name: str) -> State:
        return self.containers[key].states[name]
