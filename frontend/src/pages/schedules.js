// The workflow page's schedules panel: the workflow's schedules with their next runs and state, pause and
// resume, and a form that creates one (the same /schedules routes any client calls).
import { api, ApiError, enc } from "../api.js";
import { clear, h, time } from "../dom.js";

export function schedulesPanel(workflow) {
  const list = h("div", { class: "schedules", dataset: { schedules: "" } }, h("p", { class: "muted" }, "Loading…"));
  const panel = h("details", { open: true, dataset: { panel: "schedules" } },
    h("summary", {}, "Schedules"), list, scheduleForm(workflow, () => refresh()));

  async function refresh() {
    let schedules;
    try {
      ({ schedules } = await api(`/schedules?workflow=${enc(workflow.name)}`));
    } catch (error) {
      clear(list, h("p", { class: "form-error" }, `Schedules: ${error.message}`));
      return;
    }
    clear(list, schedules.length
      ? schedules.map((schedule) => scheduleRow(schedule, refresh))
      : h("p", { class: "muted", dataset: { schedules: "none" } }, "No schedule starts this workflow."));
  }
  refresh();
  return panel;
}

function scheduleRow(schedule, refresh) {
  const state = schedule.state;
  const action = schedule.paused ? "resume" : "pause";
  const button = h("button", { type: "button", dataset: { action: `${action}-schedule` } }, schedule.paused ? "Resume" : "Pause");
  const error = h("p", { class: "form-error", role: "alert" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/schedules/${enc(schedule.name)}/${action}`, { method: "POST" });
      await refresh();
    } catch (failure) {
      error.textContent = failure.message;
      button.disabled = false;
    }
  });
  return h("div", { class: "schedule", dataset: { schedule: schedule.name, paused: String(schedule.paused) } },
    h("h3", {}, schedule.name, " ", h("span", { class: "tag" }, schedule.kind), schedule.paused ? h("span", { class: "tag" }, "paused") : null),
    h("p", {}, h("code", {}, schedule.expression), schedule.kind === "cron" ? ` (${schedule.timezone})` : "",
      ` · overlap ${schedule.overlap} · catch up ${schedule.catch_up}`),
    h("p", { class: "muted small", dataset: { counts: "" } },
      `${state.started} started · ${state.skipped} skipped`,
      state.last_tick_at ? ` · last tick ${time(state.last_tick_at)}` : "",
      state.buffered_tick_at ? ` · buffered ${time(state.buffered_tick_at)}` : ""),
    state.last_error ? h("p", { class: "notice warn", dataset: { scheduleError: "" } }, state.last_error) : null,
    schedule.next_runs.length
      ? h("ol", { class: "next-runs", dataset: { nextRuns: "" } }, schedule.next_runs.map((run) => h("li", {}, time(run))))
      : h("p", { class: "muted small" }, "No next run."),
    button, error);
}

function scheduleForm(workflow, created) {
  const field = (name, label, attrs) => {
    const input = h("input", { type: "text", id: `schedule-${name}`, name, dataset: { scheduleField: name }, ...attrs });
    return [input, h("div", { class: "field" }, h("label", { for: input.id }, label), input,
      h("p", { class: "field-error", role: "alert", dataset: { fieldError: `schedule/${name}` } }))];
  };
  const [name, nameField] = field("name", "Name", { placeholder: "nightly" });
  const [expression, expressionField] = field("expression", "Cron or rate", { placeholder: "0 2 * * * or rate(5 minutes)" });
  const [timezone, timezoneField] = field("timezone", "Time zone", { value: "UTC" });
  const overlap = h("select", { id: "schedule-overlap", dataset: { scheduleField: "overlap" } },
    ["skip", "buffer_one", "allow"].map((policy) => h("option", { value: policy }, policy)));
  const [catchUp, catchUpField] = field("catch_up", "Catch up (missed ticks to run)", { value: "0", inputmode: "numeric" });
  const input = h("textarea", { rows: 3, id: "schedule-input", dataset: { scheduleField: "input" } }, "{}");
  const general = h("p", { class: "form-error", role: "alert", dataset: { formError: "schedule" } });
  const submit = h("button", { type: "submit", dataset: { action: "create-schedule" } }, "Add schedule");
  const form = h("form", { class: "schedule-form", dataset: { form: "schedule" }, novalidate: true },
    h("h3", {}, "New schedule"), nameField, expressionField, timezoneField,
    h("div", { class: "field" }, h("label", { for: overlap.id }, "Overlap"), overlap), catchUpField,
    h("div", { class: "field" }, h("label", { for: input.id }, "Input (JSON; ", h("code", {}, "<machinery.scheduled-time>"), " is replaced)"), input,
      h("p", { class: "field-error", role: "alert", dataset: { fieldError: "schedule/input" } })),
    general, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
    let data;
    try {
      data = JSON.parse(input.value || "{}");
    } catch (error) {
      form.querySelector('[data-field-error="schedule/input"]').textContent = `Not valid JSON: ${error.message}`;
      return;
    }
    const body = {
      name: name.value.trim(), workflow: workflow.name, expression: expression.value.trim(),
      timezone: timezone.value.trim() || "UTC", overlap: overlap.value, catch_up: Number(catchUp.value || 0), input: data,
    };
    submit.disabled = true;
    try {
      await api("/schedules", { method: "POST", body });
      name.value = "";
      expression.value = "";
      await created();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      let placed = false;
      for (const issue of error.issues) {
        const where = String(issue.field ?? issue.pointer ?? "").replace(/^\//, "").split("/")[0];
        const target = form.querySelector(`[data-field-error="schedule/${where}"]`);
        if (target) {
          target.textContent = issue.message ?? issue.detail ?? "invalid";
          placed = true;
        }
      }
      if (!placed) general.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
