// JSON shown as text, and a structural diff between two JSON values (paths added, removed, changed).
import { h } from "./dom.js";

export function pretty(value) {
  if (value === undefined) return "—";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function jsonBlock(value, attrs = {}) {
  return h("pre", { class: "json", tabindex: 0, ...attrs }, pretty(value));
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function key(path, name) {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`;
}

/** ``[{op: "added"|"removed"|"changed", path, before?, after?}]`` from ``before`` to ``after``. */
export function diff(before, after, path = "$", out = []) {
  if (out.length > 500) return out;
  if (isObject(before) && isObject(after)) {
    for (const name of Object.keys(before)) {
      if (!(name in after)) out.push({ op: "removed", path: key(path, name), before: before[name] });
      else diff(before[name], after[name], key(path, name), out);
    }
    for (const name of Object.keys(after)) {
      if (!(name in before)) out.push({ op: "added", path: key(path, name), after: after[name] });
    }
  } else if (Array.isArray(before) && Array.isArray(after)) {
    const common = Math.min(before.length, after.length);
    for (let i = 0; i < common; i += 1) diff(before[i], after[i], `${path}[${i}]`, out);
    for (let i = common; i < before.length; i += 1) out.push({ op: "removed", path: `${path}[${i}]`, before: before[i] });
    for (let i = common; i < after.length; i += 1) out.push({ op: "added", path: `${path}[${i}]`, after: after[i] });
  } else if (JSON.stringify(before) !== JSON.stringify(after)) {
    out.push({ op: "changed", path, before, after });
  }
  return out;
}

function short(value) {
  const text = JSON.stringify(value);
  return text === undefined ? "undefined" : text.length > 120 ? text.slice(0, 119) + "…" : text;
}

export function diffView(before, after) {
  const changes = diff(before, after);
  if (!changes.length) return h("p", { class: "muted", dataset: { diff: "none" } }, "No difference.");
  return h("ul", { class: "diff", dataset: { diff: String(changes.length) } },
    changes.map((c) => h("li", { class: `diff-${c.op}`, dataset: { op: c.op, path: c.path } },
      h("code", {}, c.path), " ",
      c.op === "added" ? ["+ ", h("code", {}, short(c.after))]
        : c.op === "removed" ? ["− ", h("code", {}, short(c.before))]
          : [h("code", {}, short(c.before)), " → ", h("code", {}, short(c.after))])));
}

/** A line diff of two texts (for definition versions): longest common subsequence, small inputs. */
export function lineDiff(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  if (x.length * y.length > 4_000_000) return [{ op: "changed", text: "(too large to compare line by line)" }];
  const dp = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i -= 1) {
    for (let j = y.length - 1; j >= 0; j -= 1) {
      dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    if (x[i] === y[j]) {
      out.push({ op: "same", text: x[i] });
      i += 1;
      j += 1;
    } else if (dp[i + 1][j] >= dp[i][j + 1]) out.push({ op: "removed", text: x[i++] });
    else out.push({ op: "added", text: y[j++] });
  }
  while (i < x.length) out.push({ op: "removed", text: x[i++] });
  while (j < y.length) out.push({ op: "added", text: y[j++] });
  return out;
}
