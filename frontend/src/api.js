// The HTTP API as the console uses it: the same routes any client calls.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }

  /** The API's field errors: ``[{field, message}]`` (problem details' ``errors`` or our ``issues``). */
  get issues() {
    const body = this.body;
    return body.issues || body.errors || body.invalid_params || [];
  }
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") {
    // A session cookie authenticates this browser; its state-changing requests prove they come from the
    // console with the CSRF token the server set beside it.
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("machinery_csrf="));
    if (csrf) init.headers["X-CSRF-Token"] = decodeURIComponent(csrf.slice("machinery_csrf=".length));
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const enc = encodeURIComponent;
