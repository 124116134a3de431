// Folds an execution's history (Step Functions' event types) into what happened to each state: its visits
// (input, output, every task attempt with its error and the back-off waited), Map iterations and a status
// per state: not-started, running, succeeded, failed, caught (failed, then handled by a Catch), aborted.
// Events arrive page by page while an execution runs: ``apply`` takes each new event once, in id order.

const FAILURES = /(Failed|TimedOut)$/;
const TASK_EVENT = /^(Task|LambdaFunction)(Scheduled|Started|Succeeded|Failed|TimedOut|StartFailed|SubmitFailed)$/;

function parse(text) {
  if (typeof text !== "string") return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function detailsOf(event) {
  const key = Object.keys(event).find((k) => k.endsWith("EventDetails"));
  return key ? event[key] || {} : {};
}

export class ExecutionFold {
  constructor(graph) {
    this.types = new Map(graph.nodes.map((n) => [n.name, n.type]));
    this.resources = new Map(graph.nodes.map((n) => [n.name, n.resource]));
    this.visits = new Map(); // state name -> [visit]
    this.open = []; // visits entered and not yet left, in entry order
    this.lastId = 0;
    this.input = undefined;
    this.output = undefined;
    this.end = null; // {type, error, cause, at}
    this.startedAt = null;
    this.failedState = null;
    this.count = 0;
  }

  apply(events) {
    for (const event of events) {
      if (event.id <= this.lastId) continue;
      this.lastId = event.id;
      this.count += 1;
      this.applyOne(event, detailsOf(event), Date.parse(event.timestamp) / 1000);
    }
  }

  newest(types) {
    for (let i = this.open.length - 1; i >= 0; i -= 1) {
      if (types.includes(this.open[i].type)) return this.open[i];
    }
    return null;
  }

  applyOne(event, details, at) {
    const type = event.type;
    if (type === "ExecutionStarted") {
      this.input = parse(details.input);
      this.startedAt = at;
      return;
    }
    if (type.endsWith("StateEntered")) {
      const visit = {
        name: details.name, type: this.types.get(details.name) || type.replace("StateEntered", ""),
        enteredId: event.id, enteredAt: at, input: parse(details.input), attempts: [], iterations: new Map(),
        status: "running", error: null, cause: null, mapRunArn: null,
      };
      if (visit.type === "Fail") {
        visit.status = "failed";
        this.failedState = visit;
      }
      if (!this.visits.has(visit.name)) this.visits.set(visit.name, []);
      this.visits.get(visit.name).push(visit);
      if (visit.type !== "Fail") this.open.push(visit);
      return;
    }
    if (type.endsWith("StateExited")) {
      const index = this.open.findLastIndex((v) => v.name === details.name);
      if (index < 0) return;
      const [visit] = this.open.splice(index, 1);
      visit.output = parse(details.output);
      visit.exitedAt = at;
      visit.exitedId = event.id;
      visit.status = visit.error ? "caught" : "succeeded";
      return;
    }
    const task = TASK_EVENT.exec(type);
    if (task) {
      this.taskEvent(task[2], details, at, event.id);
      return;
    }
    if (type === "MapIterationStarted" || type === "MapIterationSucceeded" || type === "MapIterationFailed") {
      const map = this.newest(["Map"]);
      if (map) map.iterations.set(details.index, type.replace("MapIteration", "").toLowerCase());
      return;
    }
    if (type === "MapRunStarted") {
      const map = this.newest(["Map"]);
      if (map) map.mapRunArn = details.mapRunArn;
      return;
    }
    if (type === "MapStateFailed" || type === "ParallelStateFailed" || type === "MapRunFailed") {
      const visit = this.newest(type.startsWith("Parallel") ? ["Parallel"] : ["Map"]);
      if (visit && !visit.error) {
        visit.error = details.error || "States.BranchFailed";
        visit.cause = details.cause || "";
      }
      return;
    }
    if (type === "EvaluationFailed") {
      const visit = (details.state && this.newestNamed(details.state)) || this.open[this.open.length - 1];
      if (visit) Object.assign(visit, { error: details.error, cause: details.cause });
      return;
    }
    if (type === "ExecutionRedriven") {
      // The execution runs again from what did not finish: its failed and aborted visits are history now
      // (a state entered again shows its new visit's status).
      for (const visits of this.visits.values()) {
        for (const visit of visits) if (visit.status === "failed" || visit.status === "aborted") visit.superseded = true;
      }
      this.end = null;
      this.output = undefined;
      this.failedState = null;
      this.redriven = (this.redriven || 0) + 1;
      return;
    }
    if (type.startsWith("Execution") && type !== "ExecutionStarted") this.finish(type, details, at);
  }

  newestNamed(name) {
    return this.open.findLast((v) => v.name === name) || null;
  }

  taskEvent(phase, details, at, id) {
    if (phase === "Scheduled") {
      const candidates = this.open.filter((v) => v.type === "Task" && !v.attempts.some((a) => !a.outcome));
      const byResource = candidates.filter((v) => !details.resource || this.resources.get(v.name) === details.resource);
      const visit = (byResource.length ? byResource : candidates).at(-1);
      if (!visit) return;
      const previous = visit.attempts.at(-1);
      visit.attempts.push({
        scheduledAt: at, scheduledId: id, parameters: parse(details.parameters ?? details.input), resource: details.resource,
        backoff: previous && previous.endedAt ? at - previous.endedAt : null,
        outcome: null,
      });
      return;
    }
    // Outcomes go to the oldest attempt still waiting for one.
    const visit = this.open.find((v) => v.type === "Task" && v.attempts.some((a) => !a.outcome));
    if (!visit) return;
    const attempt = visit.attempts.find((a) => !a.outcome);
    if (phase === "Started") {
      attempt.startedAt = at;
      return;
    }
    attempt.endedAt = at;
    if (phase === "Succeeded") {
      attempt.outcome = "succeeded";
      attempt.resultId = id;
      attempt.result = parse(details.output);
      visit.error = null;
      visit.cause = null;
    } else {
      attempt.outcome = phase === "TimedOut" ? "timed out" : "failed";
      attempt.error = details.error;
      attempt.cause = details.cause;
      visit.error = details.error;
      visit.cause = details.cause;
    }
  }

  finish(type, details, at) {
    const status = type.replace("Execution", "");
    this.end = { type, status, error: details.error, cause: details.cause, at };
    if (type === "ExecutionSucceeded") this.output = parse(details.output);
    const aborted = type === "ExecutionAborted" || type === "ExecutionTimedOut";
    for (const visit of this.open) {
      visit.status = aborted ? "aborted" : "failed";
      if (!aborted && !this.failedState && visit.error) this.failedState = visit;
    }
    if (!aborted && !this.failedState && this.open.length) this.failedState = this.open.at(-1);
    this.open = [];
  }

  /** The status of each state by name (states never entered are absent: not started). */
  statuses() {
    const rank = ["running", "failed", "aborted", "caught", "succeeded"];
    const found = new Map();
    for (const [name, visits] of this.visits) {
      let best = "succeeded";
      const current = visits.filter((v) => !v.superseded);
      for (const visit of current.length ? current : visits) {
        if (rank.indexOf(visit.status) < rank.indexOf(best)) best = visit.status;
      }
      found.set(name, best);
    }
    return found;
  }
}

export function isFailure(type) {
  return FAILURES.test(type);
}
