// The console: a router over four pages, drawn in the browser from the HTTP API.
import { clear, h } from "./dom.js";
import { workflowsPage } from "./pages/workflows.js";
import { workflowPage } from "./pages/workflow.js";
import { executionsPage } from "./pages/executions.js";
import { executionPage } from "./pages/execution.js";
import { navigate, onNavigate } from "./nav.js";

const root = document.getElementById("app");
let cleanup = null;

function route(url) {
  const path = url.pathname.replace(/^\/ui\/?/, "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "workflows" && parts[1]) return () => workflowPage(parts[1], url.searchParams);
  if (parts[0] === "executions" && parts[1]) return () => executionPage(parts[1], url.searchParams);
  if (parts[0] === "executions") return () => executionsPage(url.searchParams);
  return () => workflowsPage(url.searchParams);
}

function header(url) {
  const here = url.pathname;
  const item = (href, label, active) => h("a", { href, "aria-current": active ? "page" : null }, label);
  return h("header", { class: "top" },
    h("a", { href: "/ui/", class: "brand" }, "machinery"),
    h("nav", { "aria-label": "main" },
      item("/ui/", "Workflows", here === "/ui/" || here.startsWith("/ui/workflows")),
      item("/ui/executions", "Executions", here.startsWith("/ui/executions"))));
}

let rendering = 0;

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const ticket = ++rendering;
  const url = new URL(window.location.href);
  const page = h("div", { class: "page" });
  clear(root, header(url), page);
  try {
    const result = await route(url)();
    if (ticket !== rendering) {
      // A newer navigation started while this page loaded: it wins.
      if (result.cleanup) result.cleanup();
      return;
    }
    clear(page, result.element);
    cleanup = result.cleanup || null;
    if (result.title) document.title = `${result.title} · machinery`;
  } catch (error) {
    if (ticket !== rendering) return;
    console.warn(error);
    clear(page, h("main", { class: "error-page", dataset: { page: "error" } },
      h("h1", {}, error.status === 404 ? "Not found" : "Something went wrong"),
      h("p", {}, error.message || String(error))));
  }
}


document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || a.target || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  const url = new URL(a.href, window.location.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith("/ui/") || a.hasAttribute("download")) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});
window.addEventListener("popstate", render);
onNavigate(render);
render();
