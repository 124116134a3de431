// A workflow: its graph beside its definition, a version selector and diff, and the start form.
import { api, ApiError, enc } from "../api.js";
import { clear, h, time } from "../dom.js";
import { graphView } from "../graph.js";
import { jsonBlock, lineDiff, pretty } from "../json.js";
import { navigate } from "../nav.js";
import { schedulesPanel } from "./schedules.js";

export async function workflowPage(name, params) {
  const asked = Number(params.get("version")) || null;
  // Without a version in the URL the latest is drawn: its graph is fetched beside the versions.
  const [{ versions }, latestGraph] = await Promise.all([
    api(`/w/${enc(name)}/versions`),
    asked ? null : api(`/ui/api/workflows/${enc(name)}/graph`),
  ]);
  const latest = versions[versions.length - 1];
  const workflow = versions.find((v) => v.version === (asked || latest.version)) || latest;
  const graph = latestGraph && latestGraph.version === workflow.version
    ? latestGraph
    : await api(`/ui/api/workflows/${enc(name)}/graph?version=${workflow.version}`);

  const graphHost = h("div", { class: "graph-host", dataset: { graph: "workflow" } });
  const selection = h("div", { class: "selection muted" }, "Select a state to see its definition.");
  const view = graphView(graphHost, graph, {
    direction: params.get("layout") === "LR" ? "LR" : "TB",
    onSelect: (node) => selection.replaceChildren(stateDetails(workflow, node)),
  });

  const versionSelect = h("select", { "aria-label": "Version", dataset: { control: "version" } },
    versions.map((v) => h("option", { value: v.version, selected: v.version === workflow.version }, `v${v.version} · ${time(v.updated_at)}`)));
  versionSelect.addEventListener("change", () => navigate(`/ui/workflows/${enc(name)}?version=${versionSelect.value}`));

  const element = h("main", { dataset: { page: "workflow", workflow: workflow.name, version: String(workflow.version) } },
    h("div", { class: "page-head" },
      h("h1", {}, workflow.name),
      h("span", { class: "tag" }, workflow.form === "simple" ? "simple" : "ASL"),
      workflow.express ? h("span", { class: "tag" }, "express") : null,
      versionSelect,
      h("a", { href: `/ui/executions?workflow=${enc(workflow.name)}`, class: "button" }, "Executions")),
    graph.issues.length
      ? h("div", { class: "notice warn", dataset: { typeCheck: "issues" } }, h("strong", {}, "Type check: "), graph.issues.join("; "))
      : workflow.form === "simple" ? h("div", { class: "notice ok", dataset: { typeCheck: "ok" } }, "Type check: every service input is provided with a compatible type.") : null,
    h("div", { class: "split" },
      h("section", { class: "pane graph-pane", "aria-label": "Graph" }, graphHost, selection),
      h("section", { class: "pane side" },
        startForm(workflow),
        workflow.express ? null : schedulesPanel(workflow),
        h("details", { open: true }, h("summary", {}, "Definition"), jsonBlock(workflow.definition, { dataset: { definition: "" } })),
        versions.length > 1 ? versionDiff(versions, workflow) : null)));
  return { element, title: workflow.name, cleanup: () => view.element.remove() };
}

function stateDetails(workflow, node) {
  const definition = findState(workflow.definition, node.name);
  return h("div", { class: "state-details", dataset: { selected: node.name } },
    h("h3", {}, node.name, " ", h("span", { class: "tag" }, node.type)),
    node.retry.length ? h("p", {}, "Retry: ", node.retry.map((r) => `${r.errors.join(", ")} × ${r.max_attempts}`).join("; ")) : null,
    jsonBlock(definition));
}

function findState(container, name) {
  for (const [stateName, state] of Object.entries(container.States || {})) {
    if (stateName === name) return state;
    for (const branch of state.Branches || []) {
      const found = findState(branch, name);
      if (found) return found;
    }
    const processor = state.ItemProcessor || state.Iterator;
    if (processor) {
      const found = findState(processor, name);
      if (found) return found;
    }
  }
  return null;
}

function versionDiff(versions, current) {
  const options = (selected) => versions.map((v) => h("option", { value: v.version, selected: v.version === selected }, `v${v.version}`));
  const base = Math.max(1, current.version - 1);
  const from = h("select", { "aria-label": "Compare from version", dataset: { control: "diff-from" } }, options(base === current.version ? versions[0].version : base));
  const to = h("select", { "aria-label": "Compare to version", dataset: { control: "diff-to" } }, options(current.version));
  const out = h("div", { class: "line-diff", dataset: { diff: "versions" } });
  function draw() {
    const a = versions.find((v) => String(v.version) === from.value);
    const b = versions.find((v) => String(v.version) === to.value);
    const lines = lineDiff(pretty(a.definition), pretty(b.definition));
    const changed = lines.filter((l) => l.op !== "same").length;
    clear(out, 
      h("p", { class: "muted" }, changed ? `${changed} changed lines` : "Identical definitions."),
      h("pre", { class: "json" }, lines.map((l) => h("span", { class: `line-${l.op}` }, `${l.op === "added" ? "+" : l.op === "removed" ? "−" : " "} ${l.text}\n`))));
  }
  from.addEventListener("change", draw);
  to.addEventListener("change", draw);
  draw();
  return h("details", {}, h("summary", {}, "Compare versions"), h("div", { class: "row" }, from, " → ", to), out);
}

const INPUT_TYPES = { integer: "number", int: "number", number: "number", float: "number" };

function fieldInput(field) {
  const type = String(field.type || "any").toLowerCase();
  const common = { id: `field-${field.name}`, name: field.name, dataset: { field: field.name, type }, "aria-describedby": `error-${field.name}` };
  if (type === "boolean" || type === "bool") {
    return h("select", common, h("option", { value: "" }, "—"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
  }
  if (["object", "dict", "array", "list", "any"].includes(type)) {
    return h("textarea", { ...common, rows: 2, placeholder: type === "any" ? "JSON value" : `JSON ${type}` });
  }
  return h("input", { ...common, type: "text", inputmode: INPUT_TYPES[type] ? "decimal" : null, placeholder: type });
}

/** The value typed into a field, as the declared type reads it (kept as typed when it does not parse). */
function fieldValue(field, el) {
  const type = String(field.type || "any").toLowerCase();
  const raw = el.value;
  if (raw === "") return undefined;
  if (type === "boolean" || type === "bool") return raw === "true";
  if (["integer", "int", "number", "float"].includes(type)) {
    const n = Number(raw);
    return raw.trim() !== "" && Number.isFinite(n) ? n : raw;
  }
  if (["object", "dict", "array", "list", "any"].includes(type)) {
    try {
      return JSON.parse(raw);
    } catch {
      return type === "any" ? raw : raw;
    }
  }
  return raw;
}

function startForm(workflow) {
  const declared = workflow.inputs || [];
  const fields = new Map();
  const errors = new Map();
  const raw = h("textarea", { rows: 6, class: "raw", "aria-label": "Input as JSON", dataset: { field: "(raw)" } }, "{}");
  const rawError = h("p", { class: "field-error", role: "alert", dataset: { fieldError: "(body)" } });
  const general = h("p", { class: "form-error", role: "alert", dataset: { formError: "" } });
  const nameInput = h("input", { type: "text", id: "field-execution-name", placeholder: "optional", dataset: { field: "(name)" } });
  let useRaw = declared.length === 0;
  const formFields = h("div", { class: "fields" },
    declared.map((field) => {
      const input = fieldInput(field);
      const error = h("p", { class: "field-error", id: `error-${field.name}`, role: "alert", dataset: { fieldError: field.name } });
      fields.set(field.name, input);
      errors.set(field.name, error);
      const required = field.required !== false;
      return h("div", { class: "field" },
        h("label", { for: input.id }, field.name, required ? h("span", { class: "required", title: "required" }, " *") : null, " ", h("span", { class: "muted" }, field.type)),
        input, field.description ? h("p", { class: "muted small" }, field.description) : null, error);
    }));
  const rawBlock = h("div", { class: "raw-block" }, raw, rawError);
  const toggle = h("button", { type: "button", class: "link", dataset: { action: "toggle-raw" } });
  function show() {
    formFields.hidden = useRaw;
    rawBlock.hidden = !useRaw;
    toggle.textContent = useRaw ? "Use the form" : "Raw JSON";
    toggle.hidden = declared.length === 0;
  }
  toggle.addEventListener("click", () => {
    if (!useRaw) raw.value = JSON.stringify(collect(), null, 2);
    useRaw = !useRaw;
    show();
  });
  show();
  function collect() {
    const data = {};
    for (const field of declared) {
      const value = fieldValue(field, fields.get(field.name));
      if (value !== undefined) data[field.name] = value;
    }
    return data;
  }
  function clearErrors() {
    for (const el of [...errors.values(), rawError, general]) el.textContent = "";
    for (const input of fields.values()) input.removeAttribute("aria-invalid");
  }
  const submit = h("button", { type: "submit", class: "primary", dataset: { action: "start" } }, "Start execution");
  const form = h("form", { class: "start-form", dataset: { form: "start" }, novalidate: true },
    h("h2", {}, "Start an execution"), formFields, rawBlock, toggle,
    h("div", { class: "field" }, h("label", { for: nameInput.id }, "Execution name"), nameInput),
    general, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let data;
    if (useRaw) {
      try {
        data = JSON.parse(raw.value || "null");
      } catch (error) {
        rawError.textContent = `Not valid JSON: ${error.message}`;
        return;
      }
    } else {
      data = collect();
    }
    const body = nameInput.value.trim() ? { data, name: nameInput.value.trim() } : data;
    submit.disabled = true;
    try {
      const record = await api(`/e/${enc(workflow.name)}?wait=0`, { method: "POST", body });
      navigate(`/ui/executions/${enc(record.event_id)}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      let placed = false;
      for (const issue of error.issues) {
        const where = String(issue.field ?? issue.pointer ?? issue.name ?? "").replace(/^\/?(data\/)?/, "");
        const message = issue.message ?? issue.detail ?? issue.reason ?? "invalid";
        const target = errors.get(where);
        if (target && !useRaw) {
          target.textContent = message;
          fields.get(where).setAttribute("aria-invalid", "true");
          placed = true;
        } else if (where === "name") {
          general.textContent = `Execution name ${message}`;
          placed = true;
        } else {
          rawError.textContent += `${where ? where + ": " : ""}${message} `;
          placed = placed || useRaw;
        }
      }
      if (!placed || !error.issues.length) general.textContent = error.message;
      const first = [...errors.values()].find((e) => e.textContent);
      if (first) fields.get(first.dataset.fieldError).focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}


