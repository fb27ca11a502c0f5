// app.js - the portal's entry: the session (a one-time code from the link,
// traded for an org token kept in memory only), calls to /api/v1, and the
// hash router. A reload forgets the token on purpose: the platform hands
// out a new link.
import {fill, h} from "./dom.js";
import {endpointsPage, endpointPage, newEndpointPage} from "./endpoints.js";
import {deliveriesPage, eventsPage} from "./deliveries.js";

const session = {token: null, org: null, expires: null, sinks: []};
const main = document.getElementById("main");

export function org() { return session.org; }
export function sinks() { return session.sinks; }

// One API call: {status, data}. A 401 ends the session (expired or revoked).
export async function api(method, path, body) {
  const opts = {method, headers: {Authorization: "Bearer " + session.token},
                cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer"};
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/api/v1" + path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = {error: "the server answered " + r.status}; }
  if (r.status === 401) {
    session.token = null;
    message("Your session has ended",
            "It expired or was revoked. Open the portal again from your platform's page.");
    throw new Error("session ended");
  }
  return {status: r.status, data};
}

// A whole-page message (bad link, ended session): no navigation, nothing else.
function message(title, text) {
  document.getElementById("nav").hidden = true;
  document.getElementById("session").textContent = "";
  fill(main, h("section", {class: "message", "data-message": "1"},
    h("h2", {}, title), h("p", {}, text)));
  document.body.dataset.view = "message";
  main.focus();
}

const routes = [
  [/^#\/endpoints\/new$/, () => newEndpointPage(main)],
  [/^#\/endpoints\/([^/?]+)$/, m => endpointPage(main, decodeURIComponent(m[1]))],
  [/^#\/deliveries(?:\?(.*))?$/, m => deliveriesPage(main, new URLSearchParams(m[1] || ""))],
  [/^#\/events$/, () => eventsPage(main)],
  [/^#\/endpoints$/, () => endpointsPage(main)],
];

async function render() {
  if (!session.token) return;
  let hash = location.hash;
  let route = routes.find(r => r[0].test(hash));
  if (!route) {
    history.replaceState(null, "", "#/endpoints");
    hash = "#/endpoints";
    route = routes[routes.length - 1];
  }
  const section = hash.split(/[/?]/)[1];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  delete document.body.dataset.view;
  fill(main, h("p", {class: "muted"}, "Loading…"));
  try {
    await route[1](hash.match(route[0]));
    document.body.dataset.view = section;
  } catch (e) {
    if (session.token)
      fill(main, h("div", {class: "notice error", role: "alert"}, "Something failed: " + e.message));
    document.body.dataset.view = session.token ? "error" : "message";
  }
}

// Re-renders the current page (after a change made on it).
export function refresh() { return render(); }

async function start() {
  const m = location.hash.match(/^#code=([A-Za-z0-9_-]+)$/);
  // The code leaves the address bar (and the history) before anything else happens.
  history.replaceState(null, "", location.pathname + "#/endpoints");
  if (!m) {
    message("Open the portal from your platform",
            "This page works with a one-time link that your platform makes for you.");
    return;
  }
  const r = await fetch("/api/v1/portal-sessions/exchange", {
    method: "POST", headers: {"Content-Type": "application/json"}, cache: "no-store",
    credentials: "omit", body: JSON.stringify({code: m[1]})});
  let data = {};
  try { data = await r.json(); } catch (e) { /* answered below */ }
  if (r.status !== 200) {
    message("This link cannot be used", data.error || ("The server answered " + r.status + "."));
    return;
  }
  Object.assign(session, {token: data.token, org: data.org_id, expires: data.expires_at,
                          sinks: data.sinks || []});
  document.getElementById("nav").hidden = false;
  document.getElementById("session").textContent =
    "Organization " + session.org + " · session ends " + new Date(session.expires).toLocaleString();
  window.addEventListener("hashchange", render);
  await render();
  main.focus();
}

// The skip link moves focus without touching the hash, which is the router's.
document.querySelector(".skip").addEventListener("click", e => {
  e.preventDefault();
  main.focus();
});

start();
