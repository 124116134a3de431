"""Which credential each route needs: one table, read by the check in front of every front door.

A route missing from :data:`ROUTE_ACCESS` (and from :data:`PREFIX_ACCESS`) is closed to everyone (403),
and ``tests/unit/test_auth.py`` fails, naming it: a new route is denied until someone decides its scope
here. ``HEAD`` is checked as ``GET``; ``OPTIONS`` (Flask's automatic answer, CORS preflights) is open.
"""

from __future__ import annotations

import enum

from machinery.auth.tokens import Scope


class Access(enum.Enum):
    """What a route asks of a caller."""

    #: Nothing: anyone may call it.
    PUBLIC = "public"
    #: The task token in the body is the credential (the route checks it); no API token is needed.
    TASK_TOKEN = "task-token"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    #: The AWS Step Functions protocol on ``POST /``: the action (``X-Amz-Target``) decides, through
    #: :data:`AWS_ACTIONS`.
    AWS_ACTION = "aws-action"

    @property
    def scope(self) -> Scope | None:
        """The API-token scope this access needs (None for the open kinds)."""
        return _SCOPES.get(self)


_SCOPES = {Access.READ: Scope.READ, Access.WRITE: Scope.WRITE, Access.ADMIN: Scope.ADMIN}

#: ``(method, URL rule)`` → access, for every route of the app (the rule as Flask spells it).
ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/healthcheck"): Access.PUBLIC,
    # The AWS Step Functions protocol (machinery.aws); a browser's GET / goes to the console.
    ("POST", "/"): Access.AWS_ACTION,
    ("GET", "/"): Access.PUBLIC,
    # services
    ("POST", "/s"): Access.WRITE,
    ("GET", "/s"): Access.READ,
    ("GET", "/s/<ref>"): Access.READ,
    ("PUT", "/s/<ref>"): Access.WRITE,
    ("DELETE", "/s/<ref>"): Access.WRITE,
    # workflows
    ("POST", "/w"): Access.WRITE,
    ("GET", "/w"): Access.READ,
    ("GET", "/w/<ref>"): Access.READ,
    ("PUT", "/w/<ref>"): Access.WRITE,
    ("DELETE", "/w/<ref>"): Access.WRITE,
    ("GET", "/w/<ref>/versions"): Access.READ,
    # events (executions)
    ("POST", "/e/<ref>"): Access.WRITE,
    ("GET", "/e"): Access.READ,
    ("GET", "/e/<ref>"): Access.READ,
    ("GET", "/e/<event_id>/history"): Access.READ,
    ("POST", "/e/<event_id>/stop"): Access.WRITE,
    ("POST", "/e/<event_id>/redrive"): Access.WRITE,
    # .waitForTaskToken callbacks: the task token is the credential
    ("POST", "/tasks/success"): Access.TASK_TOKEN,
    ("POST", "/tasks/failure"): Access.TASK_TOKEN,
    ("POST", "/tasks/heartbeat"): Access.TASK_TOKEN,
    # the API's description (machinery.api.docs): what a client needs to find its way in
    ("GET", "/openapi.json"): Access.PUBLIC,
    ("GET", "/docs"): Access.PUBLIC,
    ("GET", "/docs/assets/<path:name>"): Access.PUBLIC,
    ("GET", "/problems"): Access.PUBLIC,
    ("GET", "/problems/<code>"): Access.PUBLIC,
    # schedules (issue 12)
    ("POST", "/schedules"): Access.WRITE,
    ("GET", "/schedules"): Access.READ,
    ("GET", "/schedules/<name>"): Access.READ,
    ("PATCH", "/schedules/<name>"): Access.WRITE,
    ("POST", "/schedules/<name>/pause"): Access.WRITE,
    ("POST", "/schedules/<name>/resume"): Access.WRITE,
    ("DELETE", "/schedules/<name>"): Access.WRITE,
    # event sources (issue 12): their URLs carry broker credentials, shown masked
    ("POST", "/sources"): Access.WRITE,
    ("GET", "/sources"): Access.READ,
    ("GET", "/sources/<name>"): Access.READ,
    ("PATCH", "/sources/<name>"): Access.WRITE,
    ("POST", "/sources/<name>/pause"): Access.WRITE,
    ("POST", "/sources/<name>/resume"): Access.WRITE,
    ("DELETE", "/sources/<name>"): Access.WRITE,
    ("GET", "/sources/<name>/rejections"): Access.READ,
    # the console's own views (machinery.web): data, so a scope like the API's; its sign-in is open
    ("GET", "/ui/api/workflows"): Access.READ,
    ("GET", "/ui/api/workflows/<ref>/graph"): Access.READ,
    ("GET", "/ui/api/executions/<event_id>/dataflow"): Access.READ,
    ("GET", "/ui/api/session"): Access.PUBLIC,
    ("POST", "/ui/api/session"): Access.PUBLIC,
    ("DELETE", "/ui/api/session"): Access.PUBLIC,
    # API tokens
    ("GET", "/tokens"): Access.ADMIN,
    ("POST", "/tokens"): Access.ADMIN,
    ("DELETE", "/tokens/<ref>"): Access.ADMIN,
    # Prometheus' scrapes (docs/observability.md): counts and latencies, no execution data
    ("GET", "/metrics"): Access.READ,
}

#: ``(rule prefix, methods, access)`` for whole trees of routes: the console's pages and assets are
#: static and open (they hold no data: the data comes from the API routes above, which need a session
#: or a token). Its state-changing routes are listed one by one in :data:`ROUTE_ACCESS`.
PREFIX_ACCESS: tuple[tuple[str, frozenset[str], Access], ...] = (("/ui", frozenset({"GET"}), Access.PUBLIC),)

_READ = Access.READ
_WRITE = Access.WRITE
#: Actions of the Step Functions API → access. Unknown actions need ``admin`` (they then fail as AWS
#: fails them, ``UnknownOperationException``), so an action implemented without an entry here is never
#: open to a read or write token by mistake.
AWS_ACTIONS: dict[str, Access] = {
    **dict.fromkeys(
        (
            "DescribeActivity",
            "DescribeExecution",
            "DescribeMapRun",
            "DescribeStateMachine",
            "DescribeStateMachineAlias",
            "DescribeStateMachineForExecution",
            "GetExecutionHistory",
            "ListActivities",
            "ListExecutions",
            "ListMapRuns",
            "ListStateMachineAliases",
            "ListStateMachineVersions",
            "ListStateMachines",
            "ListTagsForResource",
            "ValidateStateMachineDefinition",
        ),
        _READ,
    ),
    **dict.fromkeys(
        (
            "CreateActivity",
            "CreateStateMachine",
            "CreateStateMachineAlias",
            "DeleteActivity",
            "DeleteStateMachine",
            "DeleteStateMachineAlias",
            "DeleteStateMachineVersion",
            # Claims a task of an activity: a worker's call, not a read.
            "GetActivityTask",
            "PublishStateMachineVersion",
            "RedriveExecution",
            "StartExecution",
            "StartSyncExecution",
            "StopExecution",
            "TagResource",
            # Runs a state, HTTP calls included.
            "TestState",
            "UntagResource",
            "UpdateMapRun",
            "UpdateStateMachine",
            "UpdateStateMachineAlias",
        ),
        _WRITE,
    ),
    **dict.fromkeys(("SendTaskFailure", "SendTaskHeartbeat", "SendTaskSuccess"), Access.TASK_TOKEN),
}

AWS_TARGET_PREFIX = "AWSStepFunctions."


def route_access(method: str, rule: str) -> Access | None:
    """The access a request with ``method`` to the URL rule ``rule`` needs; None when undecided (closed)."""
    if method == "OPTIONS":
        return Access.PUBLIC
    if method == "HEAD":
        method = "GET"
    found = ROUTE_ACCESS.get((method, rule))
    if found is not None:
        return found
    for prefix, methods, access in PREFIX_ACCESS:
        if (rule == prefix or rule.startswith(prefix + "/")) and method in methods:
            return access
    return None


def aws_action_access(target: str | None) -> Access:
    """The access an AWS protocol request needs, from its ``X-Amz-Target`` header."""
    if target and target.startswith(AWS_TARGET_PREFIX):
        return AWS_ACTIONS.get(target[len(AWS_TARGET_PREFIX) :], Access.ADMIN)
    return Access.ADMIN
