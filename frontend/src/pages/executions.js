// Executions: filtered by workflow and status (by the API), by name and time range (on each page),
// paginated with the API's cursor; ``parent`` lists a distributed Map's child executions.
import { api, enc } from "../api.js";
import { duration, h, statusBadge, time } from "../dom.js";
import { navigate } from "../nav.js";

const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
const PAGE = 50;

export async function executionsPage(params) {
  const { workflows } = await api("/w");
  const query = new URLSearchParams();
  for (const key of ["workflow", "status", "cursor", "parent"]) if (params.get(key)) query.set(key, params.get(key));
  query.set("limit", String(PAGE));
  const page = await api(`/e?${query}`);
  const name = (params.get("name") || "").trim().toLowerCase();
  const since = params.get("since") ? Date.parse(params.get("since")) : null;
  const until = params.get("until") ? Date.parse(params.get("until")) : null;
  const shown = page.events.filter((e) => {
    const at = Date.parse(e.acknowledged_at);
    return (!name || e.name.toLowerCase().includes(name) || e.event_id.includes(name))
      && (since === null || at >= since) && (until === null || at <= until);
  });

  const control = (key, el) => {
    el.dataset.filter = key;
    el.addEventListener("change", () => apply());
    return el;
  };
  const workflowSelect = control("workflow", h("select", { "aria-label": "Workflow" },
    h("option", { value: "" }, "All workflows"),
    workflows.map((w) => h("option", { value: w.name, selected: w.name === params.get("workflow") }, w.name))));
  const statusSelect = control("status", h("select", { "aria-label": "Status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === params.get("status") }, s))));
  const nameInput = control("name", h("input", { type: "search", placeholder: "Name or id", "aria-label": "Name or id", value: params.get("name") || "" }));
  const sinceInput = control("since", h("input", { type: "datetime-local", "aria-label": "Started after", value: params.get("since") || "" }));
  const untilInput = control("until", h("input", { type: "datetime-local", "aria-label": "Started before", value: params.get("until") || "" }));

  function apply(extra = {}) {
    const next = new URLSearchParams();
    const values = { workflow: workflowSelect.value, status: statusSelect.value, name: nameInput.value.trim(), since: sinceInput.value, until: untilInput.value, parent: params.get("parent") || "", ...extra };
    for (const [key, value] of Object.entries(values)) if (value) next.set(key, value);
    navigate(`/ui/executions${next.toString() ? "?" + next : ""}`);
  }

  const trail = (params.get("trail") || "").split(",").filter(Boolean);
  const previous = params.get("cursor") ? h("button", { type: "button", dataset: { action: "previous-page" }, onclick: () => apply({ cursor: trail.at(-1) || "", trail: trail.slice(0, -1).join(",") }) }, "← Newer") : null;
  const next = page.next_cursor ? h("button", { type: "button", dataset: { action: "next-page" }, onclick: () => apply({ cursor: page.next_cursor, trail: [...trail, params.get("cursor") || ""].join(",") }) }, "Older →") : null;

  const parent = params.get("parent");
  const element = h("main", { dataset: { page: "executions" } },
    h("div", { class: "page-head" }, h("h1", {}, parent ? "Child executions" : "Executions"),
      parent ? h("a", { href: `/ui/executions/${enc(parent)}` }, "← parent execution") : null),
    h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); apply(); } },
      workflowSelect, statusSelect, nameInput, h("label", {}, "from ", sinceInput), h("label", {}, "to ", untilInput)),
    shown.length === 0
      ? h("p", { class: "muted", dataset: { empty: "" } }, page.events.length ? "No execution on this page matches the name or time range." : "No execution.")
      : h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Name", "Workflow", "Status", "Started", "Duration"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, shown.map((e) => h("tr", { dataset: { execution: e.event_id } },
          h("td", {}, h("a", { href: `/ui/executions/${enc(e.event_id)}` }, e.name)),
          h("td", {}, h("a", { href: `/ui/workflows/${enc(e.workflow_name)}?version=${e.workflow_version}` }, `${e.workflow_name} v${e.workflow_version}`)),
          h("td", {}, statusBadge(e.status)),
          h("td", {}, time(e.acknowledged_at)),
          h("td", {}, e.finished_at ? duration((Date.parse(e.finished_at) - Date.parse(e.acknowledged_at)) / 1000) : "…"))))),
    h("div", { class: "pager" }, previous, next));
  return { element, title: "Executions" };
}
