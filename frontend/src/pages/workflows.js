// Workflows: every workflow with its form, express or not, current version, last execution, counts.
import { api, enc } from "../api.js";
import { h, statusBadge, time } from "../dom.js";

const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

export async function workflowsPage(params) {
  const { workflows } = await api("/ui/api/workflows");
  const search = h("input", {
    type: "search", placeholder: "Search by name", "aria-label": "Search workflows by name",
    value: params.get("q") || "", dataset: { filter: "name" },
  });
  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No workflow matches.");
  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = workflows.filter((w) => w.name.toLowerCase().includes(q));
    body.replaceChildren(...shown.map(row));
    empty.hidden = shown.length > 0 || workflows.length === 0;
    const url = new URL(window.location.href);
    if (q) url.searchParams.set("q", search.value.trim());
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  }
  search.addEventListener("input", draw);
  draw();
  const element = h("main", { dataset: { page: "workflows" } },
    h("div", { class: "page-head" }, h("h1", {}, "Workflows"), search),
    workflows.length === 0
      ? h("p", { class: "muted" }, "No workflow yet: register one with ", h("code", {}, "POST /w"), ".")
      : h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Name", "Form", "Express", "Version", "Last execution", "Executions"].map((t) => h("th", { scope: "col" }, t)))),
        body),
    empty);
  return { element, title: "Workflows" };
}

function row(w) {
  const last = w.last_event;
  const counts = STATUSES.filter((s) => w.counts[s]).map((s) =>
    h("a", { href: `/ui/executions?workflow=${enc(w.name)}&status=${s}`, class: `count status-${s.toLowerCase()}`, title: s, dataset: { count: s } }, `${w.counts[s]} ${s.toLowerCase().replace("_", " ")}`));
  return h("tr", { dataset: { workflow: w.name } },
    h("td", {}, h("a", { href: `/ui/workflows/${enc(w.name)}` }, w.name)),
    h("td", {}, w.form === "simple" ? "simple" : "ASL"),
    h("td", {}, w.express ? "express" : "standard"),
    h("td", {}, `v${w.version}`),
    h("td", {}, last ? [h("a", { href: `/ui/executions/${enc(last.event_id)}` }, statusBadge(last.status)), " ", h("span", { class: "muted" }, time(last.acknowledged_at))] : h("span", { class: "muted" }, "none")),
    h("td", {}, h("div", { class: "counts" }, counts.length ? counts : h("span", { class: "muted" }, "0"))));
}
