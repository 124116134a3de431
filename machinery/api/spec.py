"""Describing a route once: what it takes, what it answers, and the validation that follows from it.

Every route of the native API carries an :class:`Operation` (``@operation(...)``): its summary, its
query arguments and body (JSON Schemas from :mod:`machinery.control.schemas`), its replies (shapes
from :mod:`machinery.shapes`) and the problems it can answer with. The decorator validates the query
arguments and the body with those schemas before the view runs and hands them over as ``query`` and
``body``; :mod:`machinery.api.openapi` builds ``/openapi.json`` from the same objects. A route that is
not part of the API (a page, an asset) says why with ``@undocumented(reason)``; a test fails for a route
that has neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, request

from machinery.control.schemas import check_body, parse_query
from machinery.errors import BadRequest, FieldIssue, MachineryError

Schema = dict[str, Any]
View = TypeVar("View", bound=Callable[..., Any])

#: Problems every operation may answer with, whatever it is (503: storage unavailable). 401/403 come from
#: the route's access rule (machinery/auth/access.py) and 507 with every method but GET (openapi.py).
COMMON_PROBLEMS: list[int] = [503]


@dataclass(frozen=True)
class Body:
    """A route's JSON body.

    :param schema: what it must be.
    :param invalid: the error a body that breaks ``schema`` raises (its class sets the status), or
        ``None`` when a use case below validates the body with the same schema (services and
        workflows: their rules go beyond the schema).
    :param required: ``False`` when an empty body is allowed (it reads as ``None``).
    :param allow_null: JSON ``null`` is a valid body (else 400).
    """

    schema: Schema
    description: str = ""
    invalid: type[MachineryError] | None = BadRequest
    required: bool = True
    allow_null: bool = False
    examples: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from a reply to another operation.

    :param parameters: the target's path parameters, from runtime expressions such as
        ``$response.body#/event_id``.
    :param request_body: the target's whole body, whose strings may be runtime expressions.
    """

    operation_id: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    request_body: Any = None


@dataclass(frozen=True)
class Param:
    """A path parameter: its description and, for reading routes, an example value (the walk-through's
    names: ``upper``, ``process-text``), which the docs page offers and the contract test tries."""

    description: str
    example: str | None = None


@dataclass(frozen=True)
class Reply:
    """One successful reply: its status, a description, the body's shape (``None``: no body)."""

    status: int
    description: str
    schema: Schema | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, Link] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """Everything the document says about one route and method; see :func:`operation`."""

    summary: str
    tag: str
    replies: tuple[Reply, ...]
    description: str = ""
    body: Body | None = None
    query: Mapping[str, Schema] = field(default_factory=dict)
    path: Mapping[str, Param] = field(default_factory=dict)
    problems: tuple[int, ...] = ()
    operation_id: str = ""

    def problem_statuses(self) -> list[int]:
        """The error statuses this operation answers with."""
        statuses = set(self.problems) | set(COMMON_PROBLEMS)
        if self.query or self.body:
            statuses.add(400)
        if self.body:
            statuses.update((413, 415))
        if self.path:
            statuses.add(404)
        return sorted(statuses)


OPERATION_ATTRIBUTE = "__machinery_operation__"
UNDOCUMENTED_ATTRIBUTE = "__machinery_undocumented__"


def operation(  # pylint: disable=too-many-arguments  # keyword-only: each a part of the description
    summary: str,
    *,
    tag: str,
    replies: tuple[Reply, ...],
    description: str = "",
    body: Body | None = None,
    query: Mapping[str, Schema] | None = None,
    path: Mapping[str, str | Param] | None = None,
    problems: tuple[int, ...] = (),
    operation_id: str = "",
) -> Callable[[View], View]:
    """Describe a view and validate its inputs.

    The view receives ``body=`` (the parsed, validated body) when ``body`` is given and ``query=`` (a
    dict of the validated arguments, defaults filled in) when ``query`` is given. ``path`` maps each path
    parameter to its description (or a :class:`Param`). ``problems`` lists the statuses beyond those
    every such operation has (400 with a body or query, 413 and 415 with a body, 404 with path
    parameters, 503).
    """

    def decorate(view: View) -> View:
        described = Operation(
            summary=summary,
            tag=tag,
            replies=replies,
            description=description,
            body=body,
            query=dict(query or {}),
            path={name: Param(p) if isinstance(p, str) else p for name, p in (path or {}).items()},
            problems=problems,
            operation_id=operation_id or _camel(view.__name__),
        )

        @functools.wraps(view)
        def validated(*args: Any, **kwargs: Any) -> Any:
            if described.query:
                kwargs["query"] = parse_query(described.query, request.args)
            if described.body is not None:
                kwargs["body"] = read_body(described.body)
            return view(*args, **kwargs)

        setattr(validated, OPERATION_ATTRIBUTE, described)
        return validated  # type: ignore[return-value]

    return decorate


def undocumented(reason: str) -> Callable[[View], View]:
    """Mark a route that is deliberately not in the OpenAPI document (a page, an asset), saying why."""

    def decorate(view: View) -> View:
        setattr(view, UNDOCUMENTED_ATTRIBUTE, reason)
        return view

    return decorate


#: Blueprints whose routes are all left out of the document, by blueprint name, with the reason.
UNDOCUMENTED_BLUEPRINTS: dict[str, str] = {}


def undocumented_blueprint(blueprint: Blueprint, reason: str) -> None:
    """Leave every route of ``blueprint`` out of the OpenAPI document (the console's pages), saying why."""
    UNDOCUMENTED_BLUEPRINTS[blueprint.name] = reason


def undocumented_reason(endpoint: str, view: Callable[..., Any]) -> str | None:
    """Why the route of ``endpoint`` is not in the document, or None when it should be."""
    reason: str | None = getattr(view, UNDOCUMENTED_ATTRIBUTE, None)
    if reason is None and "." in endpoint:
        reason = UNDOCUMENTED_BLUEPRINTS.get(endpoint.rsplit(".", 1)[0])
    return reason


def read_body(spec: Body) -> Any:
    """The request's body, parsed within the limits and checked against ``spec``."""
    if not spec.required and not request.get_data(cache=True):
        return None
    body = request.get_json()
    if body is None:
        if spec.allow_null or not spec.required:
            return None
        raise BadRequest("the body must not be JSON null", issues=[FieldIssue("(body)", "is null")])
    if spec.invalid is not None:
        issues = check_body(spec.schema, body)
        if issues:
            raise spec.invalid(f"invalid body: {', '.join(i.field for i in issues)}", issues=issues)
    return body


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
