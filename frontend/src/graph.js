// Draws a workflow graph (from /ui/api/workflows/<x>/graph) as SVG. Layout: @dagrejs/dagre, one layout
// per states container; a Parallel or Map node is sized to hold its containers' layouts, so nesting goes
// to any depth without compound-graph edge cases.
import dagre from "@dagrejs/dagre";
import { h, s } from "./dom.js";

const NODE_HEIGHT = 46;
const FIELD_ROW = 15;
const GROUP_PAD = 14;
const GROUP_HEADER = 20;
const CONTAINER_HEADER = 36;
const CHAR = 7;
const LARGE_CONTAINER = 100; // average glyph width of the node font, for sizing boxes before they exist

export const STATUSES = ["not-started", "running", "succeeded", "failed", "caught", "aborted"];

function textWidth(text, size = CHAR) {
  return String(text || "").length * size;
}

function nodeSize(node) {
  const rows = node.inputs.length + node.outputs.length;
  const widest = Math.max(
    textWidth(node.name) + 36,
    textWidth(node.type) + 40 + (node.retry.length ? 50 : 0),
    ...node.inputs.map((f) => textWidth(`→ ${f.name}: ${f.type}`, 6.2) + 24),
    ...node.outputs.map((f) => textWidth(`← ${f.name}: ${f.type}`, 6.2) + 24),
  );
  const width = Math.max(node.type === "Choice" ? 150 : 130, Math.min(widest, 320));
  return { width, height: NODE_HEIGHT + (rows ? rows * FIELD_ROW + 4 : 0) };
}

function edgeLabel(edge) {
  const fields = edge.fields.map((f) => `${f.name}: ${f.type}`).join(", ");
  const label = [edge.label, fields].filter(Boolean).join(" · ");
  return label.length > 60 ? label.slice(0, 59) + "…" : label;
}

/** Lay out one container (``group`` null for the root): positions of its nodes and edges, and its size. */
function layoutContainer(model, group, rankdir) {
  const nodes = model.byGroup.get(group) || [];
  const g = new dagre.graphlib.Graph({ multigraph: true });
  // dagre's default ranker (network simplex) gives the tidiest ranks; past ~100 states "tight-tree" is
  // close in looks at about two thirds of the CPU time (measured on a 200-state definition).
  const ranker = nodes.length > LARGE_CONTAINER ? "tight-tree" : "network-simplex";
  g.setGraph({ rankdir, ranker, nodesep: 28, ranksep: 38, edgesep: 12, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const inner = new Map();
  for (const node of nodes) {
    let size = nodeSize(node);
    if (node.groups.length) {
      const layouts = node.groups.map((child) => ({ child, layout: layoutContainer(model, child.id, rankdir) }));
      inner.set(node.id, layouts);
      const across = rankdir === "TB";
      let main = 0;
      let cross = 0;
      for (const { layout } of layouts) {
        const w = layout.width + 2 * GROUP_PAD;
        const hgt = layout.height + GROUP_HEADER + GROUP_PAD;
        if (across) {
          main += w + GROUP_PAD;
          cross = Math.max(cross, hgt);
        } else {
          main += hgt + GROUP_PAD;
          cross = Math.max(cross, w);
        }
      }
      size = across
        ? { width: Math.max(size.width, main + GROUP_PAD), height: CONTAINER_HEADER + cross + GROUP_PAD }
        : { width: Math.max(size.width, cross + 2 * GROUP_PAD), height: CONTAINER_HEADER + main };
    }
    g.setNode(node.id, { ...size });
  }
  const edges = model.edgesByGroup.get(group) || [];
  edges.forEach((edge, index) => {
    const label = edgeLabel(edge);
    g.setEdge(
      edge.from,
      edge.to,
      { label, width: label ? textWidth(label, 6) + 8 : 0, height: label ? 16 : 0, labelpos: "c", edge },
      String(index),
    );
  });
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: Math.max(graph.width || 0, 40),
    height: Math.max(graph.height || 0, 40),
    nodes: nodes.map((node) => ({ node, box: g.node(node.id), inner: inner.get(node.id) || [] })),
    edges: g.edges().map((e) => g.edge(e)),
  };
}

function shape(node, width, height) {
  const cls = "shape";
  switch (node.type) {
    case "Choice": {
      const d = 14;
      const points = [[d, 0], [width - d, 0], [width, height / 2], [width - d, height], [d, height], [0, height / 2]];
      return s("polygon", { class: cls, points: points.map((p) => p.join(",")).join(" ") });
    }
    case "Succeed":
    case "Fail":
      return s("rect", { class: cls, width, height, rx: Math.min(20, height / 2) });
    case "Pass":
      return s("rect", { class: cls, width, height, rx: 2 });
    case "Wait":
      return s("rect", { class: `${cls} dashed`, width, height, rx: 10 });
    default:
      return s("rect", { class: cls, width, height, rx: 7 });
  }
}

function drawNode(model, item, ox, oy, rankdir, layer) {
  const { node, box, inner } = item;
  const x = ox + box.x - box.width / 2;
  const y = oy + box.y - box.height / 2;
  const container = node.groups.length > 0;
  const g = s("g", {
    class: `node type-${node.type}${container ? " container" : ""}`,
    transform: `translate(${x},${y})`,
    tabindex: 0,
    role: "button",
    "aria-label": `${node.type} state ${node.name}`,
    dataset: { state: node.name, status: "not-started", nodeId: node.id, type: node.type },
  });
  g.append(shape(node, box.width, box.height));
  g.append(
    s("text", { class: "type", x: 10, y: 13 }, node.type + (node.mode === "DISTRIBUTED" ? " · distributed" : "")),
    s("text", { class: "name", x: container ? 10 : box.width / 2, y: 31, "text-anchor": container ? "start" : "middle" }, node.name),
  );
  if (node.start) g.append(s("title", {}, `${node.name} (start)`));
  if (node.retry.length) {
    const attempts = node.retry.map((r) => r.max_attempts).join("/");
    const title = node.retry.map((r) => `${r.errors.join(", ")}: ${r.max_attempts} attempts, ${r.interval_seconds}s ×${r.backoff_rate}`).join("\n");
    const bw = 44;
    g.append(
      s("g", { class: "retry-badge", transform: `translate(${box.width - bw - 4},3)`, dataset: { retry: attempts } },
        s("rect", { width: bw, height: 14, rx: 7 }),
        s("text", { x: bw / 2, y: 11, "text-anchor": "middle" }, `↻ ${attempts}`),
        s("title", {}, title)),
    );
  }
  let row = 50;
  for (const field of node.inputs) {
    g.append(s("text", { class: `field${field.issue ? " field-issue" : ""}`, x: 10, y: row, dataset: { input: field.name } },
      `→ ${field.name}: ${field.type}${field.issue ? " ⚠" : ""}`, field.issue ? s("title", {}, field.issue) : null));
    row += FIELD_ROW;
  }
  for (const field of node.outputs) {
    g.append(s("text", { class: "field out", x: 10, y: row, dataset: { output: field.name } }, `← ${field.name}: ${field.type}`));
    row += FIELD_ROW;
  }
  layer.nodes.append(g);
  model.elements.set(node.id, g);
  if (container) {
    const across = rankdir === "TB";
    let cursor = GROUP_PAD;
    for (const { child, layout } of inner) {
      const w = layout.width + 2 * GROUP_PAD;
      const hgt = layout.height + GROUP_HEADER + GROUP_PAD;
      const gx = across ? x + cursor : x + GROUP_PAD;
      const gy = across ? y + CONTAINER_HEADER : y + CONTAINER_HEADER + cursor - GROUP_PAD;
      layer.groups.append(
        s("g", { class: "group", dataset: { group: child.id } },
          s("rect", { x: gx, y: gy, width: w, height: hgt, rx: 6 }),
          s("text", { x: gx + 8, y: gy + 14 }, child.label)),
      );
      drawContainer(model, layout, gx + GROUP_PAD, gy + GROUP_HEADER, rankdir, layer);
      cursor += (across ? w : hgt) + GROUP_PAD;
    }
  }
}

function drawContainer(model, layout, ox, oy, rankdir, layer) {
  for (const item of layout.nodes) drawNode(model, item, ox, oy, rankdir, layer);
  for (const e of layout.edges) {
    const { edge } = e;
    const points = e.points.map((p) => `${ox + p.x},${oy + p.y}`);
    const g = s("g", {
      class: `edge kind-${edge.kind}`,
      dataset: { from: model.nodes.get(edge.from).name, to: model.nodes.get(edge.to).name, kind: edge.kind },
    });
    g.append(s("polyline", { points: points.join(" "), "marker-end": `url(#arrow-${edge.kind === "catch" ? "catch" : "normal"})` }));
    if (e.label) {
      const lw = textWidth(e.label, 6) + 8;
      g.append(
        s("rect", { class: "label-bg", x: ox + e.x - lw / 2, y: oy + e.y - 8, width: lw, height: 16, rx: 3 }),
        s("text", { class: "label", x: ox + e.x, y: oy + e.y + 4, "text-anchor": "middle" }, e.label),
      );
    }
    g.append(s("title", {}, [edge.label, ...edge.fields.map((f) => `${f.name}: ${f.type}`)].filter(Boolean).join("\n") || `${edge.kind}`));
    layer.edges.append(g);
  }
}

/**
 * A graph view in ``host``: ``{setStatuses, select, redraw, element}``.
 * ``onSelect(node)`` is called when a state is clicked or chosen with the keyboard.
 */
export function graphView(host, graph, { onSelect, direction = "TB" } = {}) {
  const model = {
    nodes: new Map(graph.nodes.map((n) => [n.id, n])),
    byGroup: new Map(),
    edgesByGroup: new Map(),
    elements: new Map(),
  };
  for (const node of graph.nodes) {
    const key = node.group ?? null;
    if (!model.byGroup.has(key)) model.byGroup.set(key, []);
    model.byGroup.get(key).push(node);
  }
  for (const edge of graph.edges) {
    const key = model.nodes.get(edge.from).group ?? null;
    if (!model.edgesByGroup.has(key)) model.edgesByGroup.set(key, []);
    model.edgesByGroup.get(key).push(edge);
  }
  let statuses = new Map();
  let selected = null;
  let view = { x: 0, y: 0, w: 100, h: 100 };
  let size = { width: 100, height: 100 };

  const svg = s("svg", { class: "graph", role: "group", "aria-label": "workflow graph", tabindex: 0 });
  const toolbar = h("div", { class: "graph-toolbar", role: "toolbar" },
    h("button", { type: "button", dataset: { action: "direction" }, title: "Top-down / left-right", onclick: () => redraw(direction === "TB" ? "LR" : "TB") }, "⇄ Layout"),
    h("button", { type: "button", dataset: { action: "zoom-in" }, title: "Zoom in (+)", onclick: () => zoom(0.8) }, "+"),
    h("button", { type: "button", dataset: { action: "zoom-out" }, title: "Zoom out (-)", onclick: () => zoom(1.25) }, "−"),
    h("button", { type: "button", dataset: { action: "fit" }, title: "Fit (0)", onclick: () => fit() }, "Fit"),
  );
  const element = h("div", { class: "graph-view" }, toolbar, svg);
  host.replaceChildren(element);

  function applyView() {
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }

  let pendingFit = false;
  new ResizeObserver(() => {
    if (pendingFit) fit();
  }).observe(svg);

  function fit() {
    const rect = svg.getBoundingClientRect();
    pendingFit = !(rect.width > 0 && rect.height > 0);
    if (pendingFit) {
      // Not laid out yet (the page is still being built): show it all, fit again once it has a size.
      view = { x: -10, y: -10, w: size.width + 20, h: size.height + 20 };
      applyView();
      return;
    }
    const aspect = rect.width > 0 && rect.height > 0 ? rect.width / rect.height : 1.6;
    let w = size.width + 20;
    let hh = size.height + 20;
    // Big graphs open readable (about the first screenful at 100 %) rather than shrunk to dots.
    const scale = Math.max(w / Math.max(rect.width, 1), hh / Math.max(rect.height, 1));
    if (scale > 2.2) {
      w = rect.width * 1.4;
      hh = rect.height * 1.4;
      view = { x: -10, y: -10, w, h: hh };
    } else {
      // Small graphs are not blown up past 110 %.
      w = Math.max(w, rect.width / 1.1);
      hh = Math.max(hh, rect.height / 1.1);
      if (w / hh > aspect) hh = w / aspect;
      else w = hh * aspect;
      view = { x: (size.width - w) / 2, y: (size.height - hh) / 2, w, h: hh };
    }
    applyView();
  }

  function zoom(factor, cx, cy) {
    const px = cx ?? view.x + view.w / 2;
    const py = cy ?? view.y + view.h / 2;
    const w = Math.min(Math.max(view.w * factor, 50), Math.max(size.width, size.height) * 6 + 200);
    const f = w / view.w;
    view = { x: px - (px - view.x) * f, y: py - (py - view.y) * f, w, h: view.h * f };
    applyView();
  }

  function pan(dx, dy) {
    view = { ...view, x: view.x + dx, y: view.y + dy };
    applyView();
  }

  function toGraph(event) {
    const rect = svg.getBoundingClientRect();
    return { x: view.x + ((event.clientX - rect.left) / rect.width) * view.w, y: view.y + ((event.clientY - rect.top) / rect.height) * view.h };
  }

  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const p = toGraph(event);
    zoom(event.deltaY > 0 ? 1.15 : 1 / 1.15, p.x, p.y);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    if (event.target.closest(".node")) return;
    drag = { x: event.clientX, y: event.clientY };
    svg.setPointerCapture(event.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const rect = svg.getBoundingClientRect();
    pan(((drag.x - event.clientX) / rect.width) * view.w, ((drag.y - event.clientY) / rect.height) * view.h);
    drag = { x: event.clientX, y: event.clientY };
  });
  svg.addEventListener("pointerup", () => {
    drag = null;
    svg.classList.remove("dragging");
  });
  svg.addEventListener("click", (event) => {
    const g = event.target.closest(".node");
    if (g) choose(g.dataset.nodeId);
  });
  svg.addEventListener("keydown", (event) => {
    const step = view.w / 10;
    const keys = {
      "+": () => zoom(0.8), "=": () => zoom(0.8), "-": () => zoom(1.25), "0": () => fit(),
      ArrowLeft: () => pan(-step, 0), ArrowRight: () => pan(step, 0), ArrowUp: () => pan(0, -step), ArrowDown: () => pan(0, step),
    };
    const node = event.target.closest && event.target.closest(".node");
    if ((event.key === "Enter" || event.key === " ") && node) {
      event.preventDefault();
      choose(node.dataset.nodeId);
    } else if (keys[event.key] && !node) {
      event.preventDefault();
      keys[event.key]();
    }
  });

  function choose(id) {
    select(id);
    if (onSelect) onSelect(model.nodes.get(id));
  }

  function select(id) {
    selected = id;
    for (const [nodeId, el] of model.elements) el.classList.toggle("selected", nodeId === id);
  }

  function reveal(id) {
    const el = model.elements.get(id);
    if (!el) return;
    const box = el.getBBox();
    const m = el.transform.baseVal.consolidate();
    const x = (m ? m.matrix.e : 0) + box.width / 2;
    const y = (m ? m.matrix.f : 0) + box.height / 2;
    if (x < view.x || x > view.x + view.w || y < view.y || y > view.y + view.h) {
      view = { ...view, x: x - view.w / 2, y: y - view.h / 2 };
      applyView();
    }
  }

  function setStatuses(next) {
    statuses = next;
    for (const [id, el] of model.elements) {
      const status = statuses.get(id) || "not-started";
      if (el.dataset.status !== status) el.dataset.status = status;
    }
  }

  function redraw(next = direction) {
    direction = next;
    element.dataset.direction = direction;
    model.elements.clear();
    const layout = layoutContainer(model, null, direction);
    size = { width: layout.width, height: layout.height };
    const layer = { groups: s("g", { class: "groups" }), edges: s("g", { class: "edges" }), nodes: s("g", { class: "nodes" }) };
    drawContainer(model, layout, 0, 0, direction, layer);
    svg.replaceChildren(
      s("defs", {},
        s("marker", { id: "arrow-normal", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" })),
        s("marker", { id: "arrow-catch", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow catch" }))),
      layer.groups, layer.edges, layer.nodes,
    );
    setStatuses(statuses);
    if (selected) select(selected);
    fit();
    svg.dataset.drawn = String(graph.nodes.length);
    performance.mark("machinery:graph-drawn");
  }

  redraw(direction);
  return { element, setStatuses, select, reveal, redraw, get direction() { return direction; } };
}

/** The legend of state statuses. */
export function legend() {
  return h("ul", { class: "legend", "aria-label": "legend" },
    STATUSES.map((status) => h("li", { dataset: { legend: status } }, h("span", { class: "swatch", dataset: { status } }), status.replace("-", " "))));
}
