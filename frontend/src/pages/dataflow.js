// The data-flow steps of one state visit. JSONPath: replayed by the server with the engine's own
// functions (InputPath → Parameters → ResultSelector → ResultPath → OutputPath). JSONata: Arguments and
// Output are recorded in the history, shown beside their expressions; Assign is shown as written.
import { api, enc } from "../api.js";
import { h } from "../dom.js";
import { jsonBlock, pretty } from "../json.js";

function expression(value) {
  if (value === undefined || value === null) return value === null ? "null" : "(default)";
  return typeof value === "string" ? value : pretty(value);
}

function stepRow(name, expr, value, error) {
  return h("li", { dataset: { step: name } },
    h("div", { class: "step-head" }, h("strong", {}, name), " ", h("code", {}, expression(expr))),
    error ? h("p", { class: "field-error" }, error) : jsonBlock(value));
}

export function dataFlow(record, node, visit) {
  const box = h("details", { class: "dataflow", dataset: { dataflow: "" } }, h("summary", {}, "Data flow"));
  if (!node) return box;
  const lastSuccess = visit.attempts.findLast((a) => a.outcome === "succeeded");
  const result = lastSuccess ? lastSuccess.result : undefined;
  let loaded = false;
  box.addEventListener("toggle", async () => {
    if (!box.open || loaded) return;
    loaded = true;
    const list = h("ol", { class: "steps" });
    box.append(list);
    try {
      const query = new URLSearchParams({ state: node.name, entered: String(visit.enteredId) });
      if (node.group) query.set("group", node.group);
      if (lastSuccess) query.set("result", String(lastSuccess.resultId));
      const reply = await api(`/ui/api/executions/${enc(record.event_id)}/dataflow?${query}`);
      list.append(...reply.steps.map((s) => stepRow(s.step, s.expression, s.value, s.error)));
      if (node.type === "Task" && result === undefined) list.append(h("li", { class: "muted" }, visit.attempts.some((a) => !a.outcome) ? "No result yet: the task is running." : "No result: the task failed, so its result steps did not run."));
    } catch (error) {
      if (error.status !== 400) throw error;
      // JSONata: what the history recorded, step by step.
      const attempt = visit.attempts.at(-1);
      if (attempt) list.append(stepRow("Arguments", "(as sent)", attempt.parameters));
      if (result !== undefined) list.append(stepRow("Result", "$states.result", result));
      list.append(stepRow("Output", "(recorded)", visit.output));
    }
  });
  return box;
}
