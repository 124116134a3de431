"""Errors raised while a state machine runs (as opposed to request errors)."""

from __future__ import annotations


class StatesError(Exception):
    """An ASL runtime error: ``error`` is the name a Retry/Catch matches (``States.Runtime``, ...)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class PathSyntaxError(ValueError):
    """A JSONPath, reference path or intrinsic function call that cannot be parsed."""
