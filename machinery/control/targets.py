"""What a definition says it will call, checked before it is stored: addresses against the outbound
policy (``MACHINERY_ALLOWED_TARGETS`` / ``MACHINERY_DENIED_TARGETS``) and headers for CR, LF and NUL.

Only what is written out is checked here (a service's address and headers, a URL resource, a static
``ApiEndpoint`` or header of an HTTP task or ItemReader); what paths and expressions compute is checked
when the call is made, and host names are resolved only then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from machinery.errors import FieldIssue
from machinery.runtime.outbound import OutboundPolicy, header_problem
from machinery.runtime.publish import DestinationProblem, broker_refusal, destination, is_broker_url

HTTP_INVOKE = "arn:aws:states:::http:invoke"


def service_issues(body: dict[str, Any], policy: OutboundPolicy) -> list[FieldIssue]:
    """Problems with a (schema-valid) service body's address and headers."""
    issues = []
    refusal = policy.refusal(str(body["address"]))
    if refusal is not None:
        issues.append(FieldIssue("address", refusal))
    for name, value in (body.get("headers") or {}).items():
        problem = header_problem(name, value)
        if problem is not None:
            issues.append(FieldIssue(f"headers/{name}", problem))
    return issues


def callback_issue(url: str, policy: OutboundPolicy) -> FieldIssue | None:
    """What keeps the final record from being sent to ``url``: a webhook's or a broker's (issue 12)."""
    if is_broker_url(url):
        try:
            destination(url)
        except DestinationProblem as exc:
            return FieldIssue("callback_url", str(exc))
        refusal = broker_refusal(url, policy)
    else:
        refusal = policy.refusal(url)
    return None if refusal is None else FieldIssue("callback_url", refusal)


def definition_issues(definition: dict[str, Any], policy: OutboundPolicy) -> list[FieldIssue]:
    """Problems with the targets and headers an ASL definition writes out."""
    issues = []
    for path, state in _states(definition, "definition"):
        resource = state.get("Resource")
        if state.get("Type") == "Task" and isinstance(resource, str):
            base = resource.removesuffix(".waitForTaskToken").removesuffix(".sync")
            if base.startswith(("http://", "https://")):
                refusal = policy.refusal(base)
                if refusal is not None:
                    issues.append(FieldIssue(f"{path}/Resource", refusal))
            elif base == HTTP_INVOKE:
                issues.extend(_http_parameters(state, path, policy))
        reader = state.get("ItemReader")
        if isinstance(reader, dict) and reader.get("Resource") == HTTP_INVOKE:
            issues.extend(_http_parameters(reader, f"{path}/ItemReader", policy))
    return issues


def _http_parameters(holder: dict[str, Any], path: str, policy: OutboundPolicy) -> Iterator[FieldIssue]:
    for key in ("Parameters", "Arguments"):
        params = holder.get(key)
        if not isinstance(params, dict):
            continue
        endpoint = params.get("ApiEndpoint")
        if isinstance(endpoint, str) and not _expression(endpoint):
            refusal = policy.refusal(endpoint)
            if refusal is not None:
                yield FieldIssue(f"{path}/{key}/ApiEndpoint", refusal)
        headers = params.get("Headers")
        if not isinstance(headers, dict):
            continue
        for name, value in headers.items():
            computed = name.endswith(".$")
            header = name.removesuffix(".$") if computed else name
            static = not computed and isinstance(value, str) and not _expression(value)
            problem = header_problem(header, value if static else "")
            if problem is not None:
                yield FieldIssue(f"{path}/{key}/Headers/{name}", problem)


def _expression(text: str) -> bool:
    """A JSONata expression (``{% ... %}``), whose value is known only at run time."""
    return text.startswith("{%") and text.endswith("%}")


def _states(container: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(container, dict) or not isinstance(container.get("States"), dict):
        return
    for name, state in container["States"].items():
        if not isinstance(state, dict):
            continue
        here = f"{path}/States/{name}"
        yield here, state
        for index, branch in enumerate(state.get("Branches") or []):
            yield from _states(branch, f"{here}/Branches/{index}")
        for key in ("ItemProcessor", "Iterator"):
            yield from _states(state.get(key), f"{here}/{key}")
