"""The Python client of machinery's HTTP API, on ``requests``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from machinery.client.errors import Problem, ProtocolError, ServerUnreachable, api_error
from machinery.client.models import (
    Event,
    EventPage,
    HistoryEvent,
    HistoryPage,
    Schedule,
    Service,
    Source,
    Workflow,
)

logger = logging.getLogger(__name__)

#: Where ``machinery serve`` listens by default.
DEFAULT_URL = "http://127.0.0.1:5000"
#: Seconds a request may take to connect and, besides any wait it asks the server for, to be answered.
DEFAULT_TIMEOUT = 30.0
#: The longest wait one request asks the server for (``?wait=`` accepts up to an hour); longer waits are
#: several requests, so that no connection sits idle for an hour.
LONGEST_POLL_SECONDS = 60.0
#: Events per page when an iterator follows the cursors.
DEFAULT_PAGE_SIZE = 100
#: "Not given", where ``None`` is a value (a state's input may be JSON null).
_UNSET: Any = object()


class Client:
    """A client for one machinery server.

    >>> with Client("http://127.0.0.1:5000") as client:
    ...     event = client.start_event("process-text", {"message": "The Sun will rise"})
    ...     event.output

    :param base_url: the server's URL (``http://host:port``, with a path prefix if it has one).
    :param token: an API token, sent as ``Authorization: Bearer <token>``.
    :param timeout: seconds to connect and to be answered (a long-poll adds its wait to it).
    :param session: a ``requests.Session`` to use (its adapters, proxies, certificates); one is made
        otherwise, and closed by :meth:`close`.
    :raises ValueError: for a URL that is not ``http(s)://host...`` or a token with control characters.

    Every method raises :class:`~machinery.client.errors.ApiError` (a subclass per status:
    ``NotFoundError``, ``ConflictError``...) when the server refuses, carrying its problem details;
    :class:`~machinery.client.errors.ServerUnreachable` when it cannot be reached.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the server URL must be http(s)://host[:port][/prefix], not {base_url!r}")
        if token is not None and (not token or any(ord(c) < 0x21 or ord(c) == 0x7F for c in token)):
            raise ValueError("the token must be non-empty, without spaces or control characters")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._owns_session = session is None
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json, application/problem+json"
        self.session.headers["User-Agent"] = "machinery-client"
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the connections (of the session this client made)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- health -------------------------------------------------------------------------------------------

    def health(self) -> bool:
        """``GET /healthcheck``: whether the server and its storage answer (204)."""
        try:
            response = self.session.get(self._url("/healthcheck"), timeout=self.timeout)
        except requests.RequestException:
            return False
        return response.status_code == 204

    # -- services -----------------------------------------------------------------------------------------

    def list_services(self) -> list[Service]:
        """``GET /s``: every registered service."""
        body = self._request("GET", "/s")
        return [Service.from_json(item) for item in _items(body, "services")]

    def get_service(self, ref: str) -> Service:
        """``GET /s/<id or name>``."""
        return Service.from_json(self._request("GET", f"/s/{_segment(ref)}"))

    def create_service(self, definition: Mapping[str, Any]) -> Service:
        """``POST /s``: register a service; a name already registered is updated (and keeps its id)."""
        return Service.from_json(self._request("POST", "/s", body=definition))

    def update_service(self, ref: str, definition: Mapping[str, Any]) -> Service:
        """``PUT /s/<id or name>``: replace the service's whole definition."""
        return Service.from_json(self._request("PUT", f"/s/{_segment(ref)}", body=definition))

    def delete_service(self, ref: str) -> None:
        """``DELETE /s/<id or name>`` (a ``ConflictError`` while a workflow uses it)."""
        self._request("DELETE", f"/s/{_segment(ref)}")

    # -- workflows ----------------------------------------------------------------------------------------

    def list_workflows(self) -> list[Workflow]:
        """``GET /w``: the latest version of every workflow (without their definitions)."""
        body = self._request("GET", "/w")
        return [Workflow.from_json(item) for item in _items(body, "workflows")]

    def get_workflow(self, ref: str, version: int | None = None) -> Workflow:
        """``GET /w/<id or name>``: the latest version, or ``version``."""
        params = None if version is None else {"version": version}
        return Workflow.from_json(self._request("GET", f"/w/{_segment(ref)}", params=params))

    def create_workflow(self, definition: Mapping[str, Any]) -> Workflow:
        """``POST /w`` with either form; a name that exists gets a new version."""
        return Workflow.from_json(self._request("POST", "/w", body=definition))

    def update_workflow(self, ref: str, definition: Mapping[str, Any]) -> Workflow:
        """``PUT /w/<id or name>``: a new version from the whole definition (it may rename the workflow)."""
        return Workflow.from_json(self._request("PUT", f"/w/{_segment(ref)}", body=definition))

    def delete_workflow(self, ref: str) -> None:
        """``DELETE /w/<id or name>``."""
        self._request("DELETE", f"/w/{_segment(ref)}")

    def list_versions(self, ref: str) -> list[Workflow]:
        """``GET /w/<id or name>/versions``: every version, oldest first, with its definition."""
        body = self._request("GET", f"/w/{_segment(ref)}/versions")
        return [Workflow.from_json(item) for item in _items(body, "versions")]

    # -- events -------------------------------------------------------------------------------------------

    def start_event(
        self,
        workflow: str,
        data: Any = None,
        *,
        name: str | None = None,
        callback_url: str | None = None,
        wait: float | None = None,
    ) -> Event:
        """Start an execution of ``workflow`` with ``data`` as its input.

        The data is sent in the seed's envelope (``{"data": ..., "name", "callback_url"}``), so it is the
        input whatever its shape. ``wait``: seconds the server may wait for the result before answering
        (``0``: answer at once, the event ``RUNNING``; ``None``: the server's ``MACHINERY_SYNC_WAIT``).

        :param name: the execution's name (default: its id).
        :param callback_url: where the server POSTs the final record.
        """
        envelope: dict[str, Any] = {"data": {} if data is None else data}
        if name is not None:
            envelope["name"] = name
        if callback_url is not None:
            envelope["callback_url"] = callback_url
        return self.post_event(workflow, envelope, wait=wait)

    def post_event(self, workflow: str, body: Any, *, wait: float | None = None) -> Event:
        """``POST /e/<workflow>`` with ``body`` as the route takes it: the event data, or the seed's
        envelope ``{"data": ...}`` (which the server unwraps), as ``curl -d`` would send it."""
        params = None if wait is None else {"wait": _seconds(wait)}
        record = self._request("POST", f"/e/{_segment(workflow)}", body=body, params=params, wait=wait)
        return Event.from_json(record)

    def get_event(self, event_id: str, *, wait: float | None = None) -> Event:
        """``GET /e/<id>``; with ``wait``, the server answers when the event ends or after that many
        seconds (at most an hour)."""
        params = None if not wait else {"wait": _seconds(wait)}
        return Event.from_json(self._request("GET", f"/e/{_segment(event_id)}", params=params, wait=wait))

    def wait_for_event(self, event_id: str, timeout: float | None = None) -> Event:
        """Long-poll until the event ends, or ``timeout`` seconds pass; returns its latest record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = LONGEST_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            event = self.get_event(event_id, wait=max(0.0, min(remaining, LONGEST_POLL_SECONDS)))
            if not event.running or (deadline is not None and time.monotonic() >= deadline):
                return event

    def list_events(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        parent: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> EventPage:
        """``GET /e``: one page, newest first (top-level events, or ``parent``'s child executions)."""
        params = {"workflow": workflow, "status": status, "parent": parent, "limit": limit, "cursor": cursor}
        body = self._request("GET", "/e", params=params)
        events = tuple(Event.from_json(item) for item in _items(body, "events"))
        return EventPage(events, body.get("next_cursor"))

    def iter_events(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        parent: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Event]:
        """Every event that matches, newest first, reading page after page as the iteration goes."""
        cursor: str | None = None
        while True:
            page = self.list_events(
                workflow=workflow, status=status, parent=parent, limit=page_size, cursor=cursor
            )
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def history_page(
        self, event_id: str, *, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryPage:
        """``GET /e/<id>/history``: the events past ``after`` (an event id), at most ``limit`` of them,
        oldest first (newest first with ``reverse``)."""
        params = {"after": after, "limit": limit, "reverse": "true" if reverse else None}
        body = self._request("GET", f"/e/{_segment(event_id)}/history", params=params)
        events = tuple(HistoryEvent.from_json(item) for item in _items(body, "events"))
        cursor = body.get("next_cursor")
        return HistoryPage(
            str(body.get("event_id", event_id)), events, None if cursor is None else int(cursor)
        )

    def iter_history(
        self,
        event_id: str,
        *,
        after: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        reverse: bool = False,
    ) -> Iterator[HistoryEvent]:
        """The history past ``after``, page after page (what there is now: a running event's history goes
        on growing; poll again with ``after`` set to the last id seen)."""
        while True:
            page = self.history_page(event_id, after=after, limit=page_size, reverse=reverse)
            yield from page.events
            if page.next_cursor is None:
                return
            after = page.next_cursor

    def history(self, event_id: str) -> list[HistoryEvent]:
        """The whole history of an event, oldest first."""
        return list(self.iter_history(event_id))

    def stop_event(self, event_id: str, *, error: str | None = None, cause: str | None = None) -> Event:
        """``POST /e/<id>/stop``: abort a running event (a ``ConflictError`` if it has ended)."""
        body = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
        return Event.from_json(self._request("POST", f"/e/{_segment(event_id)}/stop", body=body))

    def redrive_event(self, event_id: str, *, state_input: Any = _UNSET) -> Event:
        """``POST /e/<id>/redrive``: run a failed, timed-out or aborted event again from what did not
        finish (the event keeps its id and history; it is ``RUNNING`` again).

        :param state_input: the input of the one state that runs again, instead of the one it had.
        """
        body = {} if state_input is _UNSET else {"input": state_input}
        return Event.from_json(self._request("POST", f"/e/{_segment(event_id)}/redrive", body=body))

    # -- task callbacks (.waitForTaskToken) ----------------------------------------------------------------

    def task_success(self, task_token: str, output: Any) -> None:
        """``POST /tasks/success``: the waiting task succeeds with ``output`` as its result."""
        self._request("POST", "/tasks/success", body={"taskToken": task_token, "output": output})

    def task_failure(self, task_token: str, *, error: str | None = None, cause: str | None = None) -> None:
        """``POST /tasks/failure``: the waiting task fails (``error`` defaults to ``States.TaskFailed``)."""
        body: dict[str, Any] = {"taskToken": task_token}
        body.update({key: value for key, value in (("error", error), ("cause", cause)) if value is not None})
        self._request("POST", "/tasks/failure", body=body)

    def task_heartbeat(self, task_token: str) -> None:
        """``POST /tasks/heartbeat``: the task is alive (pushes back its heartbeat deadline)."""
        self._request("POST", "/tasks/heartbeat", body={"taskToken": task_token})

    # -- schedules ----------------------------------------------------------------------------------------

    def list_schedules(self, workflow: str | None = None) -> list[Schedule]:
        """``GET /schedules``: every schedule, or those of ``workflow``."""
        body = self._request("GET", "/schedules", params={"workflow": workflow})
        return [Schedule.from_json(item) for item in _items(body, "schedules")]

    def get_schedule(self, name: str) -> Schedule:
        """``GET /schedules/<name>``: with its state and next five run times."""
        return Schedule.from_json(self._request("GET", f"/schedules/{_segment(name)}"))

    def create_schedule(self, definition: Mapping[str, Any]) -> Schedule:
        """``POST /schedules`` (a ``ConflictError`` when the name is taken)."""
        return Schedule.from_json(self._request("POST", "/schedules", body=definition))

    def update_schedule(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        """``PATCH /schedules/<name>``: change the fields given (not the name)."""
        return Schedule.from_json(self._request("PATCH", f"/schedules/{_segment(name)}", body=changes))

    def pause_schedule(self, name: str) -> Schedule:
        """``POST /schedules/<name>/pause``."""
        return Schedule.from_json(self._request("POST", f"/schedules/{_segment(name)}/pause"))

    def resume_schedule(self, name: str) -> Schedule:
        """``POST /schedules/<name>/resume``: the ticks missed while paused are skipped."""
        return Schedule.from_json(self._request("POST", f"/schedules/{_segment(name)}/resume"))

    def delete_schedule(self, name: str) -> None:
        """``DELETE /schedules/<name>``."""
        self._request("DELETE", f"/schedules/{_segment(name)}")

    # -- event sources ------------------------------------------------------------------------------------

    def list_sources(self) -> list[Source]:
        """``GET /sources``: every event source with its state."""
        body = self._request("GET", "/sources")
        return [Source.from_json(item) for item in _items(body, "sources")]

    def get_source(self, name: str) -> Source:
        """``GET /sources/<name>``: its options and the state its consumers report."""
        return Source.from_json(self._request("GET", f"/sources/{_segment(name)}"))

    def create_source(self, definition: Mapping[str, Any]) -> Source:
        """``POST /sources`` (a ``ConflictError`` when the broker's library is missing on the server)."""
        return Source.from_json(self._request("POST", "/sources", body=definition))

    def update_source(self, name: str, changes: Mapping[str, Any]) -> Source:
        """``PATCH /sources/<name>``: change the fields given; its consumers restart."""
        return Source.from_json(self._request("PATCH", f"/sources/{_segment(name)}", body=changes))

    def pause_source(self, name: str) -> Source:
        """``POST /sources/<name>/pause``: its consumers stop."""
        return Source.from_json(self._request("POST", f"/sources/{_segment(name)}/pause"))

    def resume_source(self, name: str) -> Source:
        """``POST /sources/<name>/resume``."""
        return Source.from_json(self._request("POST", f"/sources/{_segment(name)}/resume"))

    def delete_source(self, name: str) -> None:
        """``DELETE /sources/<name>`` (with its rejected messages)."""
        self._request("DELETE", f"/sources/{_segment(name)}")

    def source_rejections(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /sources/<name>/rejections``: the messages it rejected, newest first."""
        body = self._request("GET", f"/sources/{_segment(name)}/rejections", params={"limit": limit})
        return [dict(item) for item in _items(body, "rejections")]

    # -- the wire -----------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        wait: float | None = None,
    ) -> Any:
        """Send one request; return the reply's decoded JSON (``None`` for 204), or raise its problem."""
        url = self._url(path)
        query = {key: value for key, value in (params or {}).items() if value is not None}
        read_timeout = self.timeout + (wait or 0.0)
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method, url, params=query, data=data, headers=headers, timeout=(self.timeout, read_timeout)
            )
        except requests.RequestException as exc:
            raise ServerUnreachable(f"{method} {url}: {exc}", url=url) from exc
        logger.debug("%s %s -> %s", method, response.url, response.status_code)
        decoded = _decode(response)
        if response.status_code >= 400:
            problem = Problem.from_reply(response.status_code, response.reason or "", decoded)
            raise api_error(problem, method, url)
        if response.status_code != 204 and not isinstance(decoded, dict):
            raise ProtocolError(
                f"{method} {url}: expected a JSON object, got {response.text[:200]!r}", url=url
            )
        return decoded


def _decode(response: requests.Response) -> Any:
    """The reply's JSON, or its text when it is not JSON, or ``None`` when it is empty."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _items(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise ProtocolError(f"the reply has no '{key}' list")
    return value


def _segment(value: str) -> str:
    """A path segment: ids and names are percent-encoded, so ``/`` or ``?`` in a name stays in it."""
    if not value:
        raise ValueError("an id or name must not be empty")
    return quote(value, safe="")


def _seconds(value: float) -> str:
    return f"{max(0.0, value):g}"
