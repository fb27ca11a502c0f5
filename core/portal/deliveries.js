// deliveries.js - deliveries (filtered by state, endpoint, event type and
// time, newest first, keyset pages), each with its attempt history and a
// replay for dead ones; and the org's event feed, pretty-printed as text.
import {api} from "./app.js";
import {fill, h, notice, stateBadge, status, table, when} from "./dom.js";

const PAGE = 50;
const enc = encodeURIComponent;

// The cursors of the pages before the current one (keyset paging walks back with them).
let trail = [];
let trailKey = "";

function localInput(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

async function attemptsRow(d, row, button) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("attempts-row")) {
    next.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const r = await api("GET", "/deliveries/" + d.id + "/attempts?limit=1000");
  const list = r.status === 200 ? r.data : [];
  const cell = h("td", {colspan: 9},
    r.status !== 200 ? notice("error", r.data.error) :
    list.length ? table("Attempts of delivery " + d.id, [
      {label: "#", num: true}, {label: "Started"}, {label: "Duration", num: true},
      {label: "Status", num: true}, {label: "Outcome"}, {label: "Detail"}],
      list.map(a => h("tr", {},
        h("td", {class: "num"}, String(a.attempt)), h("td", {}, when(a.started_ms)),
        h("td", {class: "num"}, a.duration_ms + " ms"), h("td", {class: "num"}, a.status ? String(a.status) : "–"),
        h("td", {}, stateBadge(a.outcome)), h("td", {class: "detail"}, a.detail))))
    : h("p", {class: "muted"}, "No attempts yet."));
  row.after(h("tr", {class: "attempts-row", id: "attempts-" + d.id}, cell));
  button.setAttribute("aria-expanded", "true");
}

export async function deliveriesPage(main, params) {
  const key = ["state", "endpoint", "event_type", "since", "until"].map(k => params.get(k) || "").join("|");
  if (key !== trailKey) { trail = []; trailKey = key; }
  const before = params.get("before") || "";
  const q = new URLSearchParams({order: "desc", limit: String(PAGE)});
  for (const k of ["state", "endpoint", "event_type", "since", "until"])
    if (params.get(k)) q.set(k, params.get(k));
  if (before) q.set("before", before);
  const [list, eps, types] = await Promise.all([
    api("GET", "/deliveries?" + q), api("GET", "/endpoints"), api("GET", "/event-types")]);

  const sel = (name, label, values, names) => h("select", {name, "aria-label": label},
    h("option", {value: ""}, "any"),
    values.map((v, i) => h("option", {value: v, selected: params.get(name) === v}, names ? names[i] : v)));
  const state = sel("state", "State", ["pending", "done", "dead"]);
  const endpoint = sel("endpoint", "Endpoint", eps.data.map(e => e.id));
  const type = sel("event_type", "Event type", types.data.event_types || []);
  const since = h("input", {type: "datetime-local", name: "since", value: localInput(params.get("since"))});
  const until = h("input", {type: "datetime-local", name: "until", value: localInput(params.get("until"))});
  const lab = (text, control) => h("div", {class: "field"}, h("label", {for: control.id = "flt-" + control.name}, text), control);
  const filters = h("form", {class: "filters", role: "search", onsubmit: e => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, el] of [["state", state], ["endpoint", endpoint], ["event_type", type]])
      if (el.value) p.set(k, el.value);
    if (since.value) p.set("since", String(new Date(since.value).getTime()));
    if (until.value) p.set("until", String(new Date(until.value).getTime()));
    location.hash = "#/deliveries" + (p.toString() ? "?" + p : "");
  }}, lab("State", state), lab("Endpoint", endpoint), lab("Event type", type),
    lab("From", since), lab("Until", until), h("button", {type: "submit", class: "primary"}, "Filter"));

  const out = h("div", {"aria-live": "polite", id: "deliveries-result", tabindex: "-1"});
  if (list.status !== 200) {
    fill(main, h("h2", {}, "Deliveries"), filters, notice("error", list.data.error));
    return;
  }
  const rows = list.data.map(d => {
    const more = h("button", {type: "button", "aria-expanded": "false",
      "aria-controls": "attempts-" + d.id, onclick: () => attemptsRow(d, row, more)}, "Attempts");
    const replay = d.state === "dead" ? h("button", {type: "button", onclick: async () => {
      const r = await api("POST", "/deliveries/" + d.id + "/replay");
      if (r.status === 200) {
        status("Delivery " + d.id + " goes out again");
        fill(stateCell, stateBadge("pending"));
        replay.remove();
      } else fill(out, notice("error", r.data.error));
    }}, "Replay") : null;
    const stateCell = h("td", {}, stateBadge(d.state));
    const row = h("tr", {"data-delivery": String(d.id)},
      h("td", {class: "num"}, String(d.id)), h("td", {}, when(d.received_ms)),
      h("td", {}, h("a", {href: "#/endpoints/" + enc(d.endpoint)}, d.endpoint)),
      h("td", {}, d.event_type), h("td", {}, d.event_id), stateCell,
      h("td", {class: "num"}, String(d.attempts)),
      h("td", {class: "detail"}, d.last_detail || (d.last_status ? "HTTP " + d.last_status : "")),
      h("td", {}, h("div", {class: "actions"}, more, replay)));
    return row;
  });
  const base = new URLSearchParams(params);
  base.delete("before");
  const link = cursor => {
    const p = new URLSearchParams(base);
    if (cursor) p.set("before", cursor);
    return "#/deliveries" + (p.toString() ? "?" + p : "");
  };
  const last = list.data.length ? list.data[list.data.length - 1].id : null;
  const pager = h("nav", {class: "pager", "aria-label": "Pages of deliveries"},
    before ? h("a", {class: "button", href: link(trail[trail.length - 1] || ""), onclick: () => trail.pop()}, "Newer") : null,
    list.data.length === PAGE ? h("a", {class: "button", href: link(String(last)), onclick: () => trail.push(before)}, "Older") : null,
    h("span", {class: "muted"}, list.data.length ? "Deliveries " + list.data[0].id + " to " + last : ""));
  const replayAll = params.get("endpoint") ? h("button", {type: "button", onclick: async () => {
    const r = await api("POST", "/endpoints/" + enc(params.get("endpoint")) + "/replay-dead");
    fill(out, r.status === 200 ? notice("ok", String(r.data.replayed), " dead deliveries of ",
      params.get("endpoint"), " go out again.") : notice("error", r.data.error));
    out.focus();
  }}, "Replay all dead of " + params.get("endpoint")) : null;
  fill(main, h("h2", {}, "Deliveries"), filters, h("div", {class: "actions"}, replayAll), out,
    rows.length ? table("Deliveries, newest first", [
      {label: "Id", num: true}, {label: "Received"}, {label: "Endpoint"}, {label: "Event type"},
      {label: "Event id"}, {label: "State"}, {label: "Attempts", num: true}, {label: "Last answer"},
      {label: "Actions"}], rows) : h("p", {}, "No deliveries match."),
    pager);
}

let eventTrail = [];

export async function eventsPage(main, before) {
  const q = new URLSearchParams({order: "desc", limit: "20"});
  if (before) q.set("before", String(before)); else eventTrail = [];
  const r = await api("GET", "/events?" + q);
  if (r.status !== 200) {
    fill(main, h("h2", {}, "Events"), notice("error", r.data.error));
    return;
  }
  const items = r.data.events.map(x => {
    const ev = x.event || {};
    return h("article", {class: "event", "data-cursor": String(x.cursor)},
      h("h3", {}, String(ev.event_type ?? ""), " · ", h("code", {}, String(ev.event_id ?? "")),
        ev.occurred_at ? [" · ", when(ev.occurred_at)] : null),
      h("pre", {tabindex: "0", "aria-label": "Event " + (ev.event_id ?? "")}, JSON.stringify(ev, null, 2)));
  });
  const page = n => async () => { await eventsPage(main, n); main.focus(); };
  fill(main, h("h2", {}, "Events"),
    items.length ? items : h("p", {}, "No events yet."),
    h("nav", {class: "pager", "aria-label": "Pages of events"},
      before ? h("button", {type: "button", onclick: () => { eventTrail.pop(); return page(eventTrail[eventTrail.length - 1])(); }}, "Newer") : null,
      items.length === 20 ? h("button", {type: "button", onclick: () => { eventTrail.push(r.data.next); return page(r.data.next)(); }}, "Older") : null));
}
