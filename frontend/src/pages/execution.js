// An execution: its graph coloured by what happened to each state, the selected state's data, the history
// (table and timeline), and actions. Follows a running execution live by polling the history for events
// after the last one it has (300 ms after a change, backing off to 1 s while nothing happens).
import { api, ApiError, enc } from "../api.js";
import { clear, duration, h, statusBadge, time } from "../dom.js";
import { detailsOf, ExecutionFold, isFailure } from "../fold.js";
import { graphView, legend } from "../graph.js";
import { diffView, jsonBlock } from "../json.js";
import { dataFlow } from "./dataflow.js";

const HISTORY_PAGE = 100;
const TIMELINE_ROWS = 200;
const ITERATIONS_PAGE = 500;
const POLL_FAST = 300;
const POLL_SLOW = 1000;

export async function executionPage(id, params) {
  // The record (for its workflow version) and the first history page are fetched together.
  const [fetched, first] = await Promise.all([api(`/e/${enc(id)}`), api(`/e/${enc(id)}/history?limit=1000`)]);
  let record = fetched;
  // Then its graph, and the rest of a long history in one request, also together.
  const [graph, rest] = await Promise.all([
    api(`/ui/api/workflows/${enc(record.workflow_id)}/graph?version=${record.workflow_version}`),
    first.next_cursor ? api(`/e/${enc(id)}/history?after=${first.next_cursor}`) : { events: [] },
  ]);
  const fold = new ExecutionFold(graph);
  const events = [...first.events, ...rest.events];
  fold.apply(events);

  const root = h("main", { dataset: { page: "execution", execution: id, executionStatus: record.status } });
  const head = h("div", { class: "page-head" });
  const banner = h("div", { class: "banner-host" });
  const graphHost = h("div", { class: "graph-host", dataset: { graph: "execution" } });
  const statePanel = h("section", { class: "pane side state-panel", "aria-label": "Selected state", dataset: { panel: "state" } });
  const historyHost = h("section", { class: "history", "aria-label": "History" });
  const timelineHost = h("section", { class: "timeline", "aria-label": "Timeline", hidden: true });
  const live = h("span", { class: "live", role: "status", "aria-live": "polite" });

  let selectedName = params.get("state");
  const view = graphView(graphHost, graph, {
    direction: params.get("layout") === "LR" ? "LR" : "TB",
    onSelect: (node) => selectState(node.name, true),
  });

  function selectState(name, push) {
    if (name !== selectedName) params.delete("visit");
    selectedName = name;
    const node = graph.nodes.find((n) => n.name === name);
    if (node) view.select(node.id);
    if (push) {
      const url = new URL(window.location.href);
      url.searchParams.set("state", name);
      history.replaceState(null, "", url);
    }
    drawState();
  }

  function drawHead() {
    root.dataset.executionStatus = record.status;
    const stopForm = record.status === "RUNNING" ? stopControl() : null;
    clear(head, 
      h("h1", {}, record.name),
      statusBadge(record.status),
      h("a", { href: `/ui/workflows/${enc(record.workflow_name)}?version=${record.workflow_version}` }, `${record.workflow_name} v${record.workflow_version}`),
      record.parent_event_id ? h("a", { href: `/ui/executions/${enc(record.parent_event_id)}`, dataset: { link: "parent" } }, "↑ parent execution") : null,
      h("span", { class: "muted" }, `started ${time(record.acknowledged_at)}`,
        record.finished_at ? ` · took ${duration((Date.parse(record.finished_at) - Date.parse(record.acknowledged_at)) / 1000)}` : ""),
      live,
      h("span", { class: "spacer" }),
      h("button", { type: "button", dataset: { action: "download" }, onclick: download }, "Download history"),
      h("button", { type: "button", dataset: { action: "copy-link" }, onclick: () => navigator.clipboard?.writeText(window.location.href) }, "Copy link"),
      stopForm,
      redrivable(record) ? redriveControl() : null);
    banner.replaceChildren();
    if (record.status !== "RUNNING" && record.status !== "SUCCEEDED") {
      banner.append(h("div", { class: "notice error", role: "alert", dataset: { banner: "error" } },
        h("strong", {}, `${record.status}: ${record.error || ""}`), record.cause ? h("div", { class: "cause" }, record.cause) : null));
    }
  }

  function stopControl() {
    const error = h("input", { type: "text", placeholder: "error (optional)", "aria-label": "Stop error", dataset: { field: "stop-error" } });
    const cause = h("input", { type: "text", placeholder: "cause (optional)", "aria-label": "Stop cause", dataset: { field: "stop-cause" } });
    const message = h("span", { class: "form-error", role: "alert" });
    const form = h("form", { class: "stop-form", dataset: { form: "stop" } }, error, cause,
      h("button", { type: "submit", class: "danger", dataset: { action: "stop" } }, "Stop"), message);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      if (error.value.trim()) body.error = error.value.trim();
      if (cause.value.trim()) body.cause = cause.value.trim();
      try {
        record = await api(`/e/${enc(id)}/stop`, { method: "POST", body });
        drawHead();
        poll.now();
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        message.textContent = e.message;
      }
    });
    return h("details", { class: "stop" }, h("summary", { dataset: { action: "open-stop" } }, "Stop…"), form);
  }

  function redriveControl() {
    const message = h("span", { class: "form-error", role: "alert", dataset: { formError: "redrive" } });
    const button = h("button", { type: "button", dataset: { action: "redrive" }, title: "Run again from what did not finish" }, "Redrive");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        record = await api(`/e/${enc(id)}/redrive`, { method: "POST" });
        fold.end = null; // it runs again: follow it until the end its ExecutionRedriven leads to
        drawHead();
        poll.restart();
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        message.textContent = e.status === 404 || e.status === 405 ? "This server cannot redrive executions." : (e.body.reason || e.message);
        button.disabled = false;
      }
    });
    return h("span", { class: "redrive" }, button, message);
  }

  async function download() {
    // The whole history, page by page with the cursor, saved as one JSON file.
    const all = [];
    let after = null;
    do {
      const page = await api(`/e/${enc(id)}/history?limit=1000${after ? `&after=${after}` : ""}`);
      all.push(...page.events);
      after = page.next_cursor;
    } while (after);
    const blob = new Blob([JSON.stringify({ event_id: id, events: all }, null, 2)], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `${id}-history.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  function statusesById() {
    const byName = fold.statuses();
    const byId = new Map();
    for (const node of graph.nodes) if (byName.has(node.name)) byId.set(node.id, byName.get(node.name));
    return byId;
  }

  let drawnSignature = null;

  function panelSignature() {
    const last = (fold.visits.get(selectedName) || []).at(-1);
    const seen = last && [last.status, last.attempts.length, last.exitedId, last.iterations.size];
    return JSON.stringify([selectedName, params.get("visit"), (fold.visits.get(selectedName) || []).length, seen, fold.end && fold.end.type]);
  }

  /** What the state panel shows changed (a new visit, attempt or outcome): redraw it, else keep it. */
  function drawStateIfChanged() {
    if (panelSignature() !== drawnSignature) drawState();
  }

  function drawState() {
    const name = selectedName;
    drawnSignature = panelSignature();
    if (!name) {
      clear(statePanel, h("p", { class: "muted" }, "Select a state to see its input, output, data flow and attempts."),
        h("h3", {}, "Execution input"), jsonBlock(fold.input, { dataset: { json: "execution-input" } }),
        fold.output !== undefined ? [h("h3", {}, "Execution output"), jsonBlock(fold.output, { dataset: { json: "execution-output" } })] : null);
      return;
    }
    const node = graph.nodes.find((n) => n.name === name);
    const visits = fold.visits.get(name) || [];
    const pick = Math.min(Number(params.get("visit") || visits.length) || visits.length, visits.length);
    const visit = visits[pick - 1];
    const status = fold.statuses().get(name) || "not-started";
    const parts = [h("h2", {}, name, " ", h("span", { class: "tag" }, node ? node.type : ""), " ", h("span", { class: "status-text", dataset: { status } }, status))];
    if (visits.length > 1) {
      const select = h("select", { "aria-label": "Visit", dataset: { control: "visit" } },
        visits.map((v, i) => h("option", { value: i + 1, selected: i + 1 === pick }, `visit ${i + 1} of ${visits.length} · ${v.status}`)));
      select.addEventListener("change", () => {
        params.set("visit", select.value);
        drawState();
      });
      parts.push(select);
    }
    if (!visit) {
      parts.push(h("p", { class: "muted" }, "Not started."));
      clear(statePanel, ...parts);
      return;
    }
    if (visit.error) {
      parts.push(h("div", { class: `notice ${visit.status === "caught" ? "warn" : "error"}`, dataset: { stateError: visit.error } },
        h("strong", {}, visit.status === "caught" ? `Caught ${visit.error}` : visit.error), visit.cause ? h("div", { class: "cause" }, visit.cause) : null));
    }
    parts.push(h("p", { class: "muted" }, `entered ${time(new Date(visit.enteredAt * 1000).toISOString())}`,
      visit.exitedAt ? ` · ${duration(visit.exitedAt - visit.enteredAt)}` : ""));
    parts.push(h("div", { class: "io" },
      h("div", {}, h("h3", {}, "Input"), jsonBlock(visit.input, { dataset: { json: "input" } })),
      h("div", {}, h("h3", {}, "Output"), jsonBlock(visit.output, { dataset: { json: "output" } }))));
    if (visit.output !== undefined) parts.push(h("h3", {}, "Input → output"), diffView(visit.input, visit.output));
    parts.push(dataFlow(record, node, visit));
    if (visit.attempts.length) parts.push(attemptsTable(visit));
    if (node && node.type === "Map") parts.push(iterations(visit, node));
    if (node && node.type === "Parallel") parts.push(branches(node));
    clear(statePanel, ...parts);
  }

  function attemptsTable(visit) {
    return h("div", { class: "attempts", dataset: { attempts: String(visit.attempts.length) } },
      h("h3", {}, `Attempts (${visit.attempts.length})`),
      h("table", { class: "list compact" },
        h("thead", {}, h("tr", {}, ["#", "Outcome", "Error", "Back-off before", "Took"].map((t) => h("th", {}, t)))),
        h("tbody", {}, visit.attempts.map((a, i) => h("tr", { dataset: { attempt: String(i + 1), outcome: a.outcome || "running" } },
          h("td", {}, String(i + 1)),
          h("td", {}, a.outcome || "running"),
          h("td", {}, a.error ? [h("code", {}, a.error), a.cause ? h("div", { class: "cause small" }, a.cause) : null] : ""),
          h("td", {}, a.backoff !== null ? duration(a.backoff) : "—"),
          h("td", {}, a.endedAt ? duration(a.endedAt - a.scheduledAt) : "…"))))));
  }

  /** A Map's iterations: index and status; an inline one shows its events, a distributed one is a link. */
  function iterations(visit, node) {
    const box = h("div", { class: "iterations" });
    const grid = h("div", { class: "iteration-grid", role: "list" });
    const more = h("button", { type: "button", dataset: { action: "more-iterations" } }, "More iterations");
    const summary = h("p", { class: "muted" });
    box.append(h("h3", {}, "Iterations"), summary, grid, more);
    function show(entries, cell, note) {
      box.dataset.iterations = String(entries.length);
      box.querySelector("h3").textContent = `Iterations (${entries.length})`;
      const counts = {};
      for (const [, status] of entries) counts[status] = (counts[status] || 0) + 1;
      summary.replaceChildren(Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · "), " · ", note);
      let offset = 0;
      const page = () => {
        grid.append(...entries.slice(offset, offset + ITERATIONS_PAGE).map(([index, status]) => cell(index, status)));
        offset += ITERATIONS_PAGE;
        more.hidden = offset >= entries.length;
      };
      more.onclick = page;
      page();
    }
    const attrs = (index, status) => ({ class: "iteration button", role: "listitem", title: `iteration ${index}: ${status}`, dataset: { iteration: String(index), status: status === "started" ? "running" : status.toLowerCase() } });
    if (node.mode !== "DISTRIBUTED") {
      const entries = [...visit.iterations.entries()].sort((a, b) => a[0] - b[0]);
      show(entries, (index, status) => {
        const cell = h("button", { type: "button", ...attrs(index, status) }, String(index));
        cell.addEventListener("click", () => historyTable.showIteration(index));
        return cell;
      }, "select one to see its events");
      return box;
    }
    // Each item of a distributed Map is a child execution, named "<parent>/<label>/<index>".
    summary.textContent = "Loading the child executions…";
    (async () => {
      const children = [];
      let cursor = null;
      do {
        const page = await api(`/e?parent=${enc(id)}&limit=1000${cursor ? `&cursor=${enc(cursor)}` : ""}`);
        children.push(...page.events);
        cursor = page.next_cursor;
      } while (cursor);
      const byIndex = new Map(children.map((c) => [Number(c.name.split("/").at(-1)), c]));
      const entries = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([index, c]) => [index, c.status]);
      show(entries, (index, status) => h("a", { href: `/ui/executions/${enc(byIndex.get(index).event_id)}`, ...attrs(index, status) }, String(index)),
        h("a", { href: `/ui/executions?parent=${enc(id)}`, dataset: { link: "children" } }, "child executions"));
    })().catch((error) => {
      summary.textContent = `The child executions could not be read: ${error.message}`;
    });
    return box;
  }

  function branches(node) {
    const byName = fold.statuses();
    return h("div", { class: "branches" }, h("h3", {}, "Branches"),
      h("ul", {}, node.groups.map((group) => {
        const members = graph.nodes.filter((n) => n.group === group.id);
        const states = members.map((n) => byName.get(n.name) || "not-started");
        const status = states.includes("failed") ? "failed" : states.includes("running") ? "running" : states.every((s) => s === "not-started") ? "not-started" : "succeeded";
        return h("li", { dataset: { branch: group.id, status } }, h("span", { class: "swatch", dataset: { status } }), ` ${group.label}: `,
          members.map((n, i) => [i ? ", " : "", h("button", { type: "button", class: "link", onclick: () => selectState(n.name, true) }, n.name)]));
      })));
  }

  const historyTable = historyView(events, (name) => selectState(name, true));
  const tabs = h("div", { class: "tabs", role: "tablist" },
    h("button", { type: "button", role: "tab", "aria-selected": "true", dataset: { tab: "history" } }, "History"),
    h("button", { type: "button", role: "tab", "aria-selected": "false", dataset: { tab: "timeline" } }, "Timeline"));
  tabs.addEventListener("click", (event) => {
    const tab = event.target.closest("[data-tab]");
    if (!tab) return;
    for (const b of tabs.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b === tab));
    historyHost.hidden = tab.dataset.tab !== "history";
    timelineHost.hidden = tab.dataset.tab !== "timeline";
    if (!timelineHost.hidden) drawTimeline();
  });
  historyHost.append(historyTable.element);

  function drawTimeline() {
    timelineHost.replaceChildren(timeline(fold, record));
  }

  function refresh() {
    view.setStatuses(statusesById());
    historyTable.update();
    drawStateIfChanged();
    if (!timelineHost.hidden) drawTimeline();
  }

  drawHead();
  root.append(head, banner,
    h("div", { class: "split" },
      h("section", { class: "pane graph-pane", "aria-label": "Graph" }, graphHost, legend()),
      statePanel),
    tabs, historyHost, timelineHost);
  view.setStatuses(statusesById());
  if (!selectedName && fold.failedState) selectedName = fold.failedState.name;
  if (selectedName) selectState(selectedName, false);
  else drawState();
  requestAnimationFrame(() => {
    const node = graph.nodes.find((n) => n.name === selectedName);
    if (node) view.reveal(node.id);
  });

  const poll = follower(id, fold, events, async (changed, ended) => {
    if (ended) {
      record = await api(`/e/${enc(id)}`);
      drawHead();
      if (!params.get("state") && fold.failedState) selectState(fold.failedState.name, false);
    }
    if (changed || ended) refresh();
    live.textContent = record.status === "RUNNING" ? "● live" : "";
  }, record.status === "RUNNING");
  live.textContent = record.status === "RUNNING" ? "● live" : "";
  requestAnimationFrame(() => performance.mark("machinery:execution-ready"));
  return { element: root, title: record.name, cleanup: () => poll.stop() };
}

/** Polls for new history events while the execution runs; stops when it ends or the page closes. */
function follower(id, fold, events, onChange, running) {
  let timer = null;
  let delay = POLL_FAST;
  let stopped = !running;
  let busy = false;
  async function tick() {
    timer = null;
    if (stopped || busy) return;
    busy = true;
    let changed = false;
    let ended = false;
    try {
      let more = true;
      while (more) {
        const page = await api(`/e/${enc(id)}/history?after=${fold.lastId}&limit=1000`);
        if (page.events.length) {
          events.push(...page.events);
          fold.apply(page.events);
          changed = true;
        }
        more = Boolean(page.next_cursor);
      }
      ended = fold.end !== null;
      if (!ended && !changed && delay >= POLL_SLOW) {
        // An execution that ends without a history event (none today) must not be followed forever.
        const record = await api(`/e/${enc(id)}`);
        ended = record.status !== "RUNNING";
      }
    } catch (error) {
      console.warn("following the execution failed; retrying", error);
    } finally {
      busy = false;
    }
    if (stopped) return;
    delay = changed ? POLL_FAST : Math.min(POLL_SLOW, delay * 1.5);
    await onChange(changed, ended);
    if (ended) stopped = true;
    else timer = setTimeout(tick, delay);
  }
  function restart() {
    stopped = false;
    clearTimeout(timer);
    delay = POLL_FAST;
    tick();
  }
  if (!stopped) timer = setTimeout(tick, POLL_FAST);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    now() {
      if (!stopped) restart();
    },
    /** Follow again (a redriven execution runs again). */
    restart,
  };
}

/** Whether the console offers a redrive: an ended, unsuccessful, durable top-level execution. */
function redrivable(record) {
  return ["FAILED", "TIMED_OUT", "ABORTED"].includes(record.status) && !record.express && !record.parent_event_id;
}

/** The history as a table: filter by type, expand a row, one page of rows at a time (never all). */
function historyView(events, onState) {
  let pageIndex = 0;
  let filter = "";
  let range = null;
  const expanded = new Set();
  const typeSelect = h("select", { "aria-label": "Event type", dataset: { filter: "type" } });
  const body = h("tbody");
  const info = h("span", { class: "muted", dataset: { historyInfo: "" } });
  const prev = h("button", { type: "button", dataset: { action: "history-previous" } }, "← Previous");
  const next = h("button", { type: "button", dataset: { action: "history-next" } }, "Next →");
  const rangeNote = h("span", { class: "muted" });
  let knownTypes = new Set();

  function rows() {
    let list = events;
    if (range) list = list.filter((e) => e.id >= range[0] && e.id <= range[1]);
    return filter ? list.filter((e) => e.type === filter) : list;
  }
  function update() {
    const types = new Set(events.map((e) => e.type));
    if (types.size !== knownTypes.size) {
      knownTypes = types;
      clear(typeSelect, h("option", { value: "" }, "All types"),
        [...types].sort().map((t) => h("option", { value: t, selected: t === filter }, t)));
    }
    const list = rows();
    const pages = Math.max(1, Math.ceil(list.length / HISTORY_PAGE));
    pageIndex = Math.min(pageIndex, pages - 1);
    const shown = list.slice(pageIndex * HISTORY_PAGE, (pageIndex + 1) * HISTORY_PAGE);
    clear(body, ...shown.map(row));
    info.textContent = `${list.length} events · page ${pageIndex + 1} of ${pages}`;
    prev.disabled = pageIndex === 0;
    next.disabled = pageIndex >= pages - 1;
  }
  function row(event) {
    const details = detailsOf(event);
    const name = details.name;
    const open = expanded.has(event.id);
    const summary = name || details.error || details.resource || (details.index !== undefined ? `index ${details.index}` : "");
    const tr = h("tr", { dataset: { eventId: String(event.id), eventType: event.type }, class: isFailure(event.type) ? "failure" : "" },
      h("td", {}, h("button", { type: "button", class: "link", "aria-expanded": String(open), dataset: { action: "expand" } }, open ? "▾" : "▸", ` ${event.id}`)),
      h("td", {}, event.type),
      h("td", {}, name ? h("button", { type: "button", class: "link", onclick: () => onState(name) }, name) : summary),
      h("td", { class: "muted" }, time(event.timestamp)));
    tr.querySelector("[data-action=expand]").addEventListener("click", () => {
      if (expanded.has(event.id)) expanded.delete(event.id);
      else expanded.add(event.id);
      update();
    });
    if (!open) return tr;
    return [tr, h("tr", { class: "expanded", dataset: { details: String(event.id) } }, h("td", { colspan: 4 }, jsonBlock(details)))];
  }
  typeSelect.addEventListener("change", () => {
    filter = typeSelect.value;
    pageIndex = 0;
    update();
  });
  prev.addEventListener("click", () => {
    pageIndex -= 1;
    update();
  });
  next.addEventListener("click", () => {
    pageIndex += 1;
    update();
  });
  const clearRange = h("button", { type: "button", class: "link", hidden: true, onclick: () => { range = null; clearRange.hidden = true; rangeNote.textContent = ""; update(); } }, "show all");
  update();
  return {
    element: h("div", {},
      h("div", { class: "row" }, typeSelect, info, rangeNote, clearRange, h("span", { class: "spacer" }), prev, next),
      h("table", { class: "list compact", dataset: { table: "history" } },
        h("thead", {}, h("tr", {}, ["Id", "Type", "State / detail", "Time"].map((t) => h("th", { scope: "col" }, t)))), body)),
    update,
    /** Only the events from an inline Map iteration's start to its end. */
    showIteration(index) {
      const start = events.find((e) => e.type === "MapIterationStarted" && detailsOf(e).index === index);
      const end = events.find((e) => /^MapIteration(Succeeded|Failed)$/.test(e.type) && detailsOf(e).index === index);
      if (!start) return;
      range = [start.id, end ? end.id : Infinity];
      filter = "";
      pageIndex = 0;
      rangeNote.textContent = `iteration ${index}`;
      clearRange.hidden = false;
      update();
      body.closest("table").scrollIntoView({ block: "start" });
    },
  };
}

/** One bar per state visit and task attempt, on a common time axis; the gaps between attempts are back-off. */
function timeline(fold, record) {
  const start = fold.startedAt ?? Date.parse(record.acknowledged_at) / 1000;
  const end = fold.end ? fold.end.at : Date.now() / 1000;
  const span = Math.max(end - start, 0.001);
  const visits = [...fold.visits.values()].flat().sort((a, b) => a.enteredId - b.enteredId);
  const rows = visits.slice(0, TIMELINE_ROWS);
  const pct = (t) => `${(((t - start) / span) * 100).toFixed(3)}%`;
  const width = (a, b) => `${Math.max(((b - a) / span) * 100, 0.15).toFixed(3)}%`;
  return h("div", { class: "timeline-body", dataset: { timeline: String(visits.length) } },
    h("div", { class: "axis muted" }, h("span", {}, "0"), h("span", {}, duration(span))),
    rows.map((visit) => {
      const until = visit.exitedAt ?? (visit.status === "running" ? end : visit.attempts.at(-1)?.endedAt ?? visit.enteredAt);
      const bar = h("div", { class: "bar", dataset: { status: visit.status }, title: `${visit.name}: ${visit.status} (${duration(until - visit.enteredAt)})` });
      bar.style.left = pct(visit.enteredAt);
      bar.style.width = width(visit.enteredAt, until);
      const attempts = visit.attempts.map((a, i) => {
        const el = h("div", { class: "attempt", dataset: { outcome: a.outcome || "running" }, title: `attempt ${i + 1}: ${a.outcome || "running"}${a.error ? " " + a.error : ""}${a.backoff ? `, after ${duration(a.backoff)} back-off` : ""}` });
        el.style.left = pct(a.scheduledAt);
        el.style.width = width(a.scheduledAt, a.endedAt ?? end);
        return el;
      });
      return h("div", { class: "lane", dataset: { lane: visit.name } }, h("span", { class: "lane-name" }, visit.name), h("div", { class: "track" }, bar, attempts));
    }),
    visits.length > rows.length ? h("p", { class: "muted" }, `The first ${rows.length} of ${visits.length} state visits.`) : null);
}
