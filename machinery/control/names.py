"""The naming rule of Step Functions, applied to workflows (state machines) and executions on every API.

AWS: a name has 1 to 80 characters and none of: white space, brackets (``< > { } [ ]``), wildcard
characters (``? *``), the special characters ``" # % \\ ^ | ~ ` $ & , ; : /`` and control characters
(U+0000 to U+001F, U+007F to U+009F). The same rule holds for activities and aliases.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 80
_FORBIDDEN = '<>{}\\[\\]?*"#%\\\\^|~`$&,;:/\\u0000-\\u001f\\u007f-\\u009f'
#: The rule as a regular expression (also the JSON Schema ``pattern`` of names in request bodies).
NAME_PATTERN = f"^[^\\s{_FORBIDDEN}]{{1,{MAX_NAME_LENGTH}}}$"
_NAME = re.compile(NAME_PATTERN)

#: JSON Schema of a name (the pattern holds the length too, so that one rule gives one message).
NAME_SCHEMA: dict[str, object] = {"type": "string", "pattern": NAME_PATTERN}


def name_problem(name: object) -> str | None:
    """What is wrong with ``name`` under AWS's rule, in words a user can act on; ``None`` when valid."""
    if not isinstance(name, str):
        return "must be a string"
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"must have 1 to {MAX_NAME_LENGTH} characters (has {len(name)})"
    if _NAME.match(name) is None:
        bad = next(ch for ch in name if _NAME.match(ch) is None)
        return (
            f"must not contain {bad!r}: white space, brackets, wildcards, control characters and "
            'any of " # % \\ ^ | ~ ` $ & , ; : / are not allowed'
        )
    return None


def is_valid_name(name: object) -> bool:
    return name_problem(name) is None
