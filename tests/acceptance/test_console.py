"""The web console in a real browser (Debian's Chromium through Playwright) against a real server.

Every test reads the page through the stable DOM contract (``data-state``, ``data-status``,
``data-from``/``data-to``, ``data-execution-status``), waits for what it expects (never sleeps), checks
that the browser console logged no error, and saves a screenshot under ``test-output/console/``.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from examples.demo import load_definition, machinery_process, request
from examples.demo import text_services as run_text_services
from examples.workflows import CONSOLE_TOUR
from tests.acceptance.browser import OUTPUT, Gates, chromium, require_chromium

pytestmark = pytest.mark.browser

SCREENSHOTS = OUTPUT / "console"
WAIT_MS = 15_000
#: Retry back-off and Wait states run 100 times faster than written.
FAST_CLOCK = {"MACHINERY_TIME_SCALE": "0.01"}


@pytest.fixture(scope="module")
def gates() -> Iterator[Gates]:
    service = Gates()
    yield service
    service.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, gates: Gates) -> Iterator[str]:
    require_chromium()
    directory = tmp_path_factory.mktemp("console-server")
    with (
        (directory / "server.log").open("w") as log,
        run_text_services() as urls,
        machinery_process(f"sqlite:///{directory / 'db.sqlite'}", log, settings=FAST_CLOCK) as base,
    ):
        for kind, url in urls.items():
            service = load_definition(f"service-{kind}.json")
            service["address"] = f"{url}/event"
            assert request("POST", f"{base}/s", service)[0] in (200, 201)
        for name in ("workflow-process-text.json", "workflow-process-text-asl.json"):
            assert request("POST", f"{base}/w", load_definition(name))[0] == 201
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, server: str) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, context: Any, base: str) -> None:
        self.base = base
        self.page = context.new_page()
        self.errors: list[str] = []
        #: Network errors a test provokes on purpose (Chromium logs every 4xx reply of a fetch).
        self.expected: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.page.close()
        unexpected = [e for e in self.errors if not any(e.startswith(x) for x in self.expected)]
        assert unexpected == [], f"the browser console logged errors: {unexpected}"

    def expect_rejection(self, status: int) -> None:
        """The test makes the API answer ``status`` once: that network error is no console error."""
        self.expected.append(f"Failed to load resource: the server responded with a status of {status} ")


@pytest.fixture
def tab(browser: Any, server: str) -> Iterator[Page]:
    page = Page(browser, server)
    yield page
    page.close()


def post_workflow(server: str, body: dict[str, Any]) -> None:
    status, reply = request("POST", f"{server}/w", body)
    assert status == 201, reply


def start(server: str, workflow: str, data: Any) -> str:
    status, reply = request("POST", f"{server}/e/{workflow}?wait=0", data)
    assert status in (201, 202), reply
    event_id: str = reply["event_id"]
    return event_id


def wait_ended(server: str, event_id: str) -> dict[str, Any]:
    status, record = request("GET", f"{server}/e/{event_id}?wait=60")
    assert status == 200 and record["status"] != "RUNNING", record
    return dict(record)


def node_statuses(page: Any) -> dict[str, str]:
    found: dict[str, str] = page.eval_on_selector_all(
        "svg.graph [data-state]",
        "els => Object.fromEntries(els.map(e => [e.dataset.state, e.dataset.status]))",
    )
    return found


def edges(page: Any) -> list[tuple[str, str, str]]:
    return [
        tuple(e)
        for e in page.eval_on_selector_all(
            "svg.graph [data-from]", "els => els.map(e => [e.dataset.from, e.dataset.to, e.dataset.kind])"
        )
    ]


def click_container(page: Any, name: str) -> None:
    """Click a Parallel or Map node on its header (its middle holds its nested states)."""
    page.click(f"svg.graph [data-state='{name}']", position={"x": 12, "y": 8})


# pages ---------------------------------------------------------------------------------------------------


def test_a_browser_at_the_root_lands_on_the_workflows_page(tab: Page, server: str) -> None:
    start(server, "process-text", {"message": "a b"})
    page = tab.open("/")
    page.wait_for_selector("[data-page=workflows] tr[data-workflow='process-text']", timeout=WAIT_MS)
    assert page.url == server + "/ui/"
    rows = page.eval_on_selector_all("tr[data-workflow]", "els => els.map(e => e.dataset.workflow)")
    assert rows == ["process-text", "process-text-asl"]
    row = page.locator("tr[data-workflow='process-text']")
    assert "simple" in row.inner_text() and "v1" in row.inner_text()
    page.locator("[data-count]").first.wait_for(timeout=WAIT_MS)
    tab.shot("workflows")
    page.fill("[data-filter=name]", "asl")
    expect(page.locator("tr[data-workflow]")).to_have_count(1, timeout=WAIT_MS)
    assert page.url.endswith("/ui/?q=asl")  # the search is part of the link


def test_the_seed_workflow_graph_has_its_three_states_in_order(tab: Page) -> None:
    page = tab.open("/ui/workflows/process-text")
    page.wait_for_selector("svg.graph[data-drawn]", timeout=WAIT_MS)
    names = ["upper", "reverse", "space-counter"]
    assert set(node_statuses(page)) == set(names)
    assert set(node_statuses(page).values()) == {"not-started"}
    tops = [page.locator(f"svg.graph [data-state='{n}']").bounding_box()["y"] for n in names]
    assert tops == sorted(tops) and len(set(tops)) == 3
    assert edges(page) == [("upper", "reverse", "next"), ("reverse", "space-counter", "next")]
    assert page.locator("[data-type-check=ok]").is_visible()
    # Declared fields: each service node lists its inputs and outputs; edges carry the fields' types.
    assert page.locator("[data-state='space-counter'] [data-output='space_count']").count() == 1
    assert "message: string" in page.locator("[data-from='upper'][data-to='reverse']").text_content()
    page.click("[data-action=direction]")
    page.wait_for_selector(".graph-view[data-direction=LR]", timeout=WAIT_MS)
    lefts = [page.locator(f"svg.graph [data-state='{n}']").bounding_box()["x"] for n in names]
    assert lefts == sorted(lefts) and len(set(lefts)) == 3
    tab.shot("workflow-seed")


def test_versions_are_selectable_and_compared(tab: Page, server: str) -> None:
    one = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    two = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}}
    post_workflow(server, {"name": "versioned", "definition": one})
    status, reply = request("PUT", f"{server}/w/versioned", {"name": "versioned", "definition": two})
    assert status == 200, reply
    page = tab.open("/ui/workflows/versioned")
    page.wait_for_selector("[data-page=workflow][data-version='2'] svg.graph[data-drawn]", timeout=WAIT_MS)
    assert set(node_statuses(page)) == {"A", "B"}
    page.click("details:has([data-diff=versions]) summary")
    added = page.locator("[data-diff=versions] .line-added")
    assert any('"B"' in text for text in added.all_inner_texts())
    page.select_option("[data-control=version]", "1")
    page.wait_for_selector("[data-page=workflow][data-version='1'] svg.graph[data-drawn]", timeout=WAIT_MS)
    assert set(node_statuses(page)) == {"A"}
    assert page.url.endswith("/ui/workflows/versioned?version=1")


def test_an_asl_workflow_renders_every_state_and_edge(tab: Page, server: str) -> None:
    post_workflow(server, {"name": "rich", "definition": CONSOLE_TOUR})
    page = tab.open("/ui/workflows/rich")
    page.wait_for_selector("svg.graph[data-drawn]", timeout=WAIT_MS)
    assert set(node_statuses(page)) == {"Route", "Single", "Fan", "Each", "Work", "Pause", "Broken", "Done"}
    assert sorted(edges(page)) == sorted(
        [
            ("Route", "Fan", "choice"),
            ("Route", "Done", "choice"),
            ("Route", "Single", "default"),
            ("Single", "Done", "next"),
            ("Fan", "Done", "next"),
            ("Fan", "Broken", "catch"),
        ]
    )
    assert page.locator("[data-from='Route'][data-to='Fan'] .label").text_content() == '$.kind == "fan"'
    assert (
        page.locator("[data-from='Fan'][data-to='Broken'] .label").text_content() == "States.Timeout, Custom"
    )
    assert page.locator("[data-state='Fan'] > .retry-badge").get_attribute("data-retry") == "2"
    assert page.locator("[data-group]").count() == 3  # two branches, one item processor
    click_container(page, "Each")
    page.wait_for_selector("[data-selected='Each']", timeout=WAIT_MS)
    page.click("[data-action=zoom-in]")
    tab.shot("workflow-asl")

    event_id = start(server, "rich", {"kind": "fan", "items": [1, 2, 3]})
    assert wait_ended(server, event_id)["status"] == "SUCCEEDED"
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector("[data-execution-status=SUCCEEDED] svg.graph[data-drawn]", timeout=WAIT_MS)
    statuses = node_statuses(page)
    assert statuses == {
        "Route": "succeeded", "Fan": "succeeded", "Each": "succeeded", "Work": "succeeded",
        "Pause": "succeeded", "Done": "succeeded", "Single": "not-started", "Broken": "not-started",
    }  # fmt: skip
    click_container(page, "Each")
    page.wait_for_selector("[data-iterations='3']", timeout=WAIT_MS)
    assert (
        page.eval_on_selector_all("[data-iteration]", "els => els.map(e => e.dataset.status)")
        == ["succeeded"] * 3
    )
    page.click("[data-iteration='1']")
    # Only that iteration's events: its start, its state's entry and exit, its end.
    expect(page.locator("[data-table=history] tbody tr")).to_have_count(4, timeout=WAIT_MS)
    assert page.locator("[data-table=history] [data-event-type=MapIterationStarted]").count() == 1
    click_container(page, "Fan")
    page.wait_for_selector(".branches [data-status=succeeded]", timeout=WAIT_MS)
    tab.shot("execution-asl")


def test_a_distributed_maps_child_executions_are_reachable(tab: Page, server: str) -> None:
    definition = {
        "StartAt": "Spread",
        "States": {
            "Spread": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    post_workflow(server, {"name": "spread", "definition": definition})
    event_id = start(server, "spread", {"items": ["a", "b", "c"]})
    assert wait_ended(server, event_id)["status"] == "SUCCEEDED"
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector("[data-execution-status=SUCCEEDED] svg.graph[data-drawn]", timeout=WAIT_MS)
    click_container(page, "Spread")
    page.wait_for_selector("[data-iterations='3']", timeout=WAIT_MS)
    page.click("[data-iteration='1']")
    page.wait_for_selector("[data-page=execution] [data-link=parent]", timeout=WAIT_MS)
    child = page.url.rsplit("/", 1)[-1]
    record = request("GET", f"{server}/e/{child}")[1]
    assert (record["parent_event_id"], record["name"].rsplit("/", 1)[-1]) == (event_id, "1")
    assert page.locator("[data-execution-status=SUCCEEDED]").count() == 1
    page.click("[data-link=parent]")
    page.wait_for_selector(f"[data-execution='{event_id}']", timeout=WAIT_MS)
    page = tab.open(f"/ui/executions?parent={event_id}")
    expect(page.locator("tr[data-execution]")).to_have_count(3, timeout=WAIT_MS)


# live ----------------------------------------------------------------------------------------------------


def gated(gates: Gates, key: str) -> dict[str, Any]:
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {
                "Type": "Pass",
                "Result": {"ready": True},
                "ResultPath": "$.prepared",
                "Next": "Gate",
            },
            "Gate": {"Type": "Task", "Resource": f"{gates.url}/gate/{key}", "Next": "After"},
            "After": {"Type": "Pass", "End": True},
        },
    }


def test_a_gated_execution_turns_from_running_to_succeeded_without_reload(
    tab: Page, server: str, gates: Gates
) -> None:
    post_workflow(server, {"name": "gated", "definition": gated(gates, "live")})
    event_id = start(server, "gated", {"n": 1})
    assert gates.reached("live").wait(15)
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector(
        "[data-execution-status=RUNNING] [data-state='Gate'][data-status=running]", timeout=WAIT_MS
    )
    assert node_statuses(page) == {"Prepare": "succeeded", "Gate": "running", "After": "not-started"}
    page.evaluate("window.__sameDocument = true")
    tab.shot("execution-running")
    gates.open("live")
    page.wait_for_selector("[data-execution-status=SUCCEEDED]", timeout=WAIT_MS)
    page.wait_for_selector("[data-state='After'][data-status=succeeded]", timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert node_statuses(page) == {"Prepare": "succeeded", "Gate": "succeeded", "After": "succeeded"}
    assert page.locator("[data-event-type=ExecutionSucceeded]").count() == 1
    tab.shot("execution-succeeded-live")


def test_stop_aborts_a_running_execution(tab: Page, server: str, gates: Gates) -> None:
    post_workflow(server, {"name": "stoppable", "definition": gated(gates, "stop")})
    event_id = start(server, "stoppable", {})
    assert gates.reached("stop").wait(15)
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector(
        "[data-execution-status=RUNNING] [data-state='Gate'][data-status=running]", timeout=WAIT_MS
    )
    page.click("[data-action=open-stop]")
    page.fill("[data-field=stop-error]", "Operator")
    page.fill("[data-field=stop-cause]", "stopped from the console")
    page.click("[data-action=stop]")
    page.wait_for_selector("[data-execution-status=ABORTED]", timeout=WAIT_MS)
    page.wait_for_selector("[data-state='Gate'][data-status=aborted]", timeout=WAIT_MS)
    assert "Operator" in page.locator("[data-banner=error]").inner_text()
    record = request("GET", f"{server}/e/{event_id}")[1]
    assert (record["status"], record["error"], record["cause"]) == (
        "ABORTED",
        "Operator",
        "stopped from the console",
    )
    tab.shot("execution-aborted")


def test_failed_and_caught_states_are_coloured_and_the_failure_selected(
    tab: Page, server: str, gates: Gates
) -> None:
    definition = {
        "StartAt": "Try",
        "States": {
            "Try": {
                "Type": "Task",
                "Resource": f"{gates.url}/fail/Flaky",
                "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["Flaky"], "Next": "Recover"}],
                "Next": "Done",
            },
            "Recover": {"Type": "Pass", "Next": "Finally"},
            "Finally": {"Type": "Task", "Resource": f"{gates.url}/fail/Fatal", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    post_workflow(server, {"name": "failing", "definition": definition})
    event_id = start(server, "failing", {"x": 1})
    assert wait_ended(server, event_id)["status"] == "FAILED"
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector("[data-execution-status=FAILED] svg.graph[data-drawn]", timeout=WAIT_MS)
    assert node_statuses(page) == {
        "Try": "caught", "Recover": "succeeded", "Finally": "failed", "Done": "not-started"
    }  # fmt: skip
    # The failing state is selected on open, with its error and cause.
    page.wait_for_selector("[data-state='Finally'].selected", timeout=WAIT_MS)
    assert page.locator("[data-panel=state] [data-state-error]").get_attribute("data-state-error") == "Fatal"
    assert "Fatal on purpose" in page.locator("[data-panel=state]").inner_text()
    assert "Fatal" in page.locator("[data-banner=error]").inner_text()
    tab.shot("execution-failed")
    page.emulate_media(color_scheme="dark")
    tab.shot("execution-failed-dark")
    page.emulate_media(color_scheme="light")
    # Every attempt of the retried task, with its error and the back-off waited.
    page.click("svg.graph [data-state='Try']")
    page.wait_for_selector("[data-attempts='3']", timeout=WAIT_MS)
    assert (
        page.eval_on_selector_all("[data-attempt]", "els => els.map(e => e.dataset.outcome)")
        == ["failed"] * 3
    )
    assert "state=Try" in page.url  # a deep link to the state
    page.click("[data-dataflow] summary")
    page.wait_for_selector("[data-dataflow] [data-step=InputPath]", timeout=WAIT_MS)
    page.click("[data-tab=timeline]")
    page.wait_for_selector("[data-lane='Try'] .attempt >> nth=2", timeout=WAIT_MS)
    tab.shot("execution-caught-timeline")
    deep = tab.open(f"/ui/executions/{event_id}?state=Recover")
    deep.wait_for_selector("[data-state='Recover'].selected", timeout=WAIT_MS)
    # From the keyboard: a state takes the focus and Enter selects it.
    deep.focus("svg.graph [data-state='Done']")
    deep.keyboard.press("Enter")
    deep.wait_for_selector("[data-state='Done'].selected", timeout=WAIT_MS)
    assert deep.locator("[data-panel=state] h2").inner_text().startswith("Done")
    # The whole history as one JSON file.
    with deep.expect_download(timeout=WAIT_MS) as download:
        deep.click("[data-action=download]")
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["event_id"] == event_id
    assert [e["type"] for e in saved["events"]] == [
        e["type"] for e in request("GET", f"{server}/e/{event_id}/history")[1]["events"]
    ]


def test_redrive_reruns_a_failed_execution_from_the_failed_state(
    tab: Page, server: str, gates: Gates
) -> None:
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Next": "Flaky"},
            "Flaky": {"Type": "Task", "Resource": f"{gates.url}/once/redrive", "End": True},
        },
    }
    post_workflow(server, {"name": "redrivable", "definition": definition})
    event_id = start(server, "redrivable", {})
    assert wait_ended(server, event_id)["status"] == "FAILED"
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector(
        "[data-execution-status=FAILED] [data-state='Flaky'][data-status=failed]", timeout=WAIT_MS
    )
    tab.expect_rejection(404)  # until the server has the redrive route
    page.click("[data-action=redrive]")
    page.wait_for_selector(
        "[data-execution-status=RUNNING], [data-execution-status=SUCCEEDED],"
        " [data-form-error=redrive]:not(:empty)",
        timeout=WAIT_MS,
    )
    if page.locator("[data-form-error=redrive]:not(:empty)").count():
        pytest.skip("this server has no POST /e/<id>/redrive yet")
    page.wait_for_selector("[data-execution-status=SUCCEEDED]", timeout=WAIT_MS)
    page.wait_for_selector("[data-state='Flaky'][data-status=succeeded]", timeout=WAIT_MS)
    assert node_statuses(page) == {"First": "succeeded", "Flaky": "succeeded"}
    assert page.locator("[data-event-type=ExecutionRedriven]").count() == 1
    tab.shot("execution-redriven")


# start form ----------------------------------------------------------------------------------------------


def test_the_start_form_rejects_a_wrong_type_at_the_field_then_starts(tab: Page, server: str) -> None:
    post_workflow(
        server,
        {
            "name": "typed",
            "inputs": [{"name": "message", "type": "string"}, {"name": "count", "type": "integer"}],
            "definition": {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}},
        },
    )
    page = tab.open("/ui/workflows/typed")
    page.wait_for_selector("[data-form=start] [data-field=count]", timeout=WAIT_MS)
    page.fill("[data-field=message]", "hello")
    page.fill("[data-field=count]", "three")
    tab.expect_rejection(422)
    page.click("[data-action=start]")
    error = page.wait_for_selector("[data-field-error=count]:not(:empty)", timeout=WAIT_MS)
    assert "integer" in error.inner_text()
    assert page.locator("[data-field=count]").get_attribute("aria-invalid") == "true"
    assert page.locator("[data-field-error=message]").inner_text() == ""
    tab.shot("start-form-error")
    page.fill("[data-field=count]", "3")
    page.click("[data-action=start]")
    page.wait_for_selector("[data-page=execution][data-execution-status=SUCCEEDED]", timeout=WAIT_MS)
    event_id = page.url.rsplit("/", 1)[-1]
    record = request("GET", f"{server}/e/{event_id}")[1]
    assert record["output"] == {"message": "hello", "count": 3}
    # Raw JSON works too.
    page = tab.open("/ui/workflows/typed")
    page.click("[data-action=toggle-raw]")
    page.fill("[data-field='(raw)']", json.dumps({"message": "x", "count": 1}))
    page.click("[data-action=start]")
    page.wait_for_selector("[data-page=execution][data-execution-status=SUCCEEDED]", timeout=WAIT_MS)


# large histories -----------------------------------------------------------------------------------------


def test_a_ten_thousand_event_history_opens(tab: Page, server: str) -> None:
    definition = {
        "StartAt": "Many",
        "States": {
            "Many": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 50,
                "ItemProcessor": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    post_workflow(server, {"name": "many", "definition": definition})
    event_id = start(server, "many", {"items": list(range(2500))})
    assert wait_ended(server, event_id)["status"] == "SUCCEEDED"
    count = len(request("GET", f"{server}/e/{event_id}/history")[1]["events"])
    assert count >= 10_000
    page = tab.open(f"/ui/executions/{event_id}")
    page.wait_for_selector(
        "[data-execution-status=SUCCEEDED] [data-state='One'][data-status=succeeded]", timeout=WAIT_MS
    )
    assert page.locator("[data-history-info]").inner_text().startswith(f"{count} events")
    assert page.locator("[data-table=history] tbody tr").count() == 100  # one page, never all of it
    page.click("[data-action=history-next]")
    page.wait_for_selector(f"[data-event-id='{101}']", timeout=WAIT_MS)
    page.select_option("[data-filter=type]", "MapIterationSucceeded")
    expect(page.locator("[data-history-info]")).to_contain_text("2500 events · page 1 of 25", timeout=WAIT_MS)
    click_container(page, "Many")
    page.wait_for_selector("[data-iterations='2500']", timeout=WAIT_MS)
    tab.shot("execution-large")


def test_the_executions_page_filters_and_pages(tab: Page, server: str) -> None:
    for n in range(3):
        wait_ended(server, start(server, "process-text", {"data": {"message": f"m {n}"}, "name": f"run-{n}"}))
    page = tab.open("/ui/executions?workflow=process-text")
    page.wait_for_selector("[data-page=executions] tr[data-execution]", timeout=WAIT_MS)
    names = page.eval_on_selector_all(
        "tr[data-execution] td:first-child", "els => els.map(e => e.textContent)"
    )
    assert names[:3] == ["run-2", "run-1", "run-0"]
    page.fill("[data-filter=name]", "run-1")
    page.press("[data-filter=name]", "Enter")
    expect(page.locator("tr[data-execution]")).to_have_count(1, timeout=WAIT_MS)
    page.select_option("[data-filter=status]", "FAILED")
    page.wait_for_selector("[data-empty]", timeout=WAIT_MS)
    tab.shot("executions")


# authentication ------------------------------------------------------------------------------------------


def test_with_api_tokens_the_console_signs_in_and_keeps_a_session(
    browser: Any, tmp_path: Path, server: str
) -> None:
    with (
        (tmp_path / "server.log").open("w") as log,
        machinery_process(f"sqlite:///{tmp_path / 'db.sqlite'}", log) as base,
    ):
        status, issued = request("POST", f"{base}/tokens", {"name": "operator", "scope": "write"})
        assert status == 201, issued
        assert request("GET", f"{base}/w")[0] == 401  # the server now wants a token
        tab = Page(browser, base)
        try:
            page = tab.open("/ui/")
            page.wait_for_selector("[data-page=sign-in]", timeout=WAIT_MS)
            tab.shot("sign-in")
            tab.expect_rejection(401)
            page.fill("[data-field=token]", "not-a-token")
            page.click("[data-action=sign-in]")
            page.wait_for_selector("[data-field-error=token]:not(:empty)", timeout=WAIT_MS)
            page.fill("[data-field=token]", issued["token"])
            page.click("[data-action=sign-in]")
            page.wait_for_selector("[data-page=workflows]", timeout=WAIT_MS)
            assert page.locator("[data-signed-in]").get_attribute("data-signed-in") == "operator"
            cookies = {c["name"]: c for c in browser.cookies(base)}
            assert (
                cookies["machinery_session"]["httpOnly"]
                and cookies["machinery_session"]["sameSite"] == "Strict"
            )
            assert issued["token"] not in json.dumps(list(cookies.values()))
            # A state-changing request through the session carries the CSRF token: start an execution.
            one = {
                "name": "one",
                "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
            }
            created = urllib.request.Request(
                f"{base}/w",
                data=json.dumps(one).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {issued['token']}"},
            )
            with urllib.request.urlopen(created, timeout=30) as response:
                assert response.status == 201
            page = tab.open("/ui/workflows/one")
            page.click("[data-action=start]")
            page.wait_for_selector("[data-page=execution][data-execution-status=SUCCEEDED]", timeout=WAIT_MS)
            # Without the CSRF header, the session's state-changing requests are refused.
            status = page.evaluate(
                """() => fetch("/e/one", {method: "POST", headers: {"Content-Type": "application/json"},
                    body: "{}"}).then(r => r.status)"""
            )
            tab.expect_rejection(403)
            assert status == 403
            page.click("[data-action=sign-out]")
            page.wait_for_selector("[data-page=sign-in]", timeout=WAIT_MS)
        finally:
            tab.close()


def test_the_workflow_page_lists_creates_pauses_and_resumes_schedules(tab: Page, server: str) -> None:
    typed = {
        "name": "scheduled",
        "inputs": [{"name": "n", "type": "integer"}],
        "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    post_workflow(server, typed)
    body = {"name": "nightly", "workflow": "scheduled", "expression": "0 3 * * *", "timezone": "Asia/Tokyo",
            "input": {"n": 1}}  # fmt: skip
    assert request("POST", f"{server}/schedules", body)[0] == 201
    page = tab.open("/ui/workflows/scheduled")
    page.wait_for_selector("[data-schedule=nightly] [data-next-runs] li", timeout=WAIT_MS)
    assert page.locator("[data-schedule=nightly] [data-next-runs] li").count() == 5
    assert page.locator("[data-schedule=nightly] code").first.text_content() == "0 3 * * *"

    # A new schedule whose input the workflow refuses: the API's field error shows at the input.
    tab.expect_rejection(422)
    page.fill("[data-schedule-field=name]", "every-5")
    page.fill("[data-schedule-field=expression]", "rate(5 minutes)")
    page.fill("[data-schedule-field=input]", '{"n": "five"}')
    page.click("[data-action=create-schedule]")
    page.wait_for_selector("[data-field-error='schedule/input']:text('integer')", timeout=WAIT_MS)
    page.fill("[data-schedule-field=input]", '{"n": 5, "at": "<machinery.scheduled-time>"}')
    page.select_option("[data-schedule-field=overlap]", "buffer_one")
    page.click("[data-action=create-schedule]")
    page.wait_for_selector("[data-schedule=every-5][data-paused=false]", timeout=WAIT_MS)
    status, created = request("GET", f"{server}/schedules/every-5")
    assert status == 200 and created["overlap"] == "buffer_one" and created["input"]["n"] == 5

    page.click("[data-schedule=nightly] [data-action=pause-schedule]")
    page.wait_for_selector("[data-schedule=nightly][data-paused=true]", timeout=WAIT_MS)
    assert request("GET", f"{server}/schedules/nightly")[1]["paused"] is True
    tab.shot("workflow-schedules")
    page.click("[data-schedule=nightly] [data-action=resume-schedule]")
    page.wait_for_selector("[data-schedule=nightly][data-paused=false] [data-next-runs]", timeout=WAIT_MS)
    assert request("GET", f"{server}/schedules/nightly")[1]["paused"] is False
