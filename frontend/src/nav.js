// Navigation without reloads: the router registers how to draw the current URL.
let draw = () => {};

export function onNavigate(fn) {
  draw = fn;
}

/** Go to a console URL without reloading (``replace``: without a new history entry). */
export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  draw();
}
