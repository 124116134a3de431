// The console: a router over four pages, drawn in the browser from the HTTP API.
import { api, ApiError } from "./api.js";
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

let session = null; // {signed_in, name, scope, required} from /ui/api/session

async function signOut() {
  await api("/ui/api/session", { method: "DELETE" });
  session = null;
  render();
}

function header(url) {
  const here = url.pathname;
  const item = (href, label, active) => h("a", { href, "aria-current": active ? "page" : null }, label);
  return h("header", { class: "top" },
    h("a", { href: "/ui/", class: "brand" }, "machinery"),
    h("nav", { "aria-label": "main" },
      item("/ui/", "Workflows", here === "/ui/" || here.startsWith("/ui/workflows")),
      item("/ui/executions", "Executions", here.startsWith("/ui/executions"))),
    h("span", { class: "spacer" }),
    session && session.signed_in
      ? h("span", { class: "who", dataset: { signedIn: session.name } }, `${session.name} (${session.scope}) `,
        h("button", { type: "button", class: "link", dataset: { action: "sign-out" }, onclick: signOut }, "Sign out"))
      : null);
}

/** The sign-in page: the server has API tokens and this browser has no session. */
function signInPage(message) {
  const token = h("input", { type: "password", id: "token", autocomplete: "off", dataset: { field: "token" }, required: true });
  const error = h("p", { class: "form-error", role: "alert", dataset: { fieldError: "token" } }, message || "");
  const form = h("form", { class: "sign-in", dataset: { form: "sign-in" } },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "This server requires an API token. Paste one (", h("code", {}, "machinery tokens create"),
      " makes one); the console keeps a session cookie, not the token."),
    h("label", { for: "token" }, "API token"), token, error,
    h("button", { type: "submit", class: "primary", dataset: { action: "sign-in" } }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/ui/api/session", { method: "POST", body: { token: token.value } });
      session = null;
      render();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      error.textContent = e.message;
      token.focus();
    }
  });
  setTimeout(() => token.focus(), 0);
  return h("main", { dataset: { page: "sign-in" } }, form);
}

let rendering = 0;

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const ticket = ++rendering;
  const url = new URL(window.location.href);
  const page = h("div", { class: "page" });
  // Who is signed in is asked for beside the page's own data, not before it.
  const asked = session ? Promise.resolve(session) : api("/ui/api/session").catch((error) => {
    console.warn("the session could not be read", error);
    return null;
  });
  const loading = route(url)();
  loading.catch(() => {}); // its failure is handled below, once the session is known
  session = await asked;
  if (ticket !== rendering) return;
  clear(root, header(url), page);
  if (session && session.required) {
    clear(page, signInPage());
    return;
  }
  try {
    const result = await loading;
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
    if (error instanceof ApiError && error.status === 401) {
      // The session expired or its token was revoked.
      session = null;
      clear(page, signInPage(error.message));
      return;
    }
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
