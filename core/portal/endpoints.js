// endpoints.js - the endpoints list with health, one endpoint (health,
// actions, edit form, how to verify), and the form that creates one.
import {api, refresh, sinks} from "./app.js";
import {copyButton, field, fill, h, notice, percent, stateBadge, status, table, when} from "./dom.js";
import {verifySection} from "./verify.js";

const enc = encodeURIComponent;

export async function endpointsPage(main) {
  const r = await api("GET", "/endpoints");
  const eps = r.data;
  const rows = await Promise.all(eps.map(async ep => {
    const st = (await api("GET", "/endpoints/" + enc(ep.id) + "/stats")).data;
    const err = st.last_error;
    return h("tr", {"data-endpoint": ep.id},
      h("th", {scope: "row"}, h("a", {href: "#/endpoints/" + enc(ep.id)}, ep.id)),
      h("td", {}, stateBadge(st.state || ep.state)),
      h("td", {class: "num"}, percent(st.success_rate_24h)),
      h("td", {class: "detail"}, err ? [when(err.at), " · ", err.detail || "HTTP " + err.status] : "none"),
      h("td", {class: "num"}, st.pending ?? ep.pending),
      h("td", {class: "num"}, st.dead ? h("a", {href: "#/deliveries?state=dead&endpoint=" + enc(ep.id)}, String(st.dead)) : "0"));
  }));
  fill(main,
    h("h2", {}, "Endpoints"),
    h("div", {class: "actions"}, h("a", {class: "button", href: "#/endpoints/new"}, "New endpoint")),
    eps.length ? table("Endpoints and their health", [
      {label: "Endpoint"}, {label: "State"}, {label: "Success (24 h)", num: true},
      {label: "Last error"}, {label: "Pending", num: true}, {label: "Dead", num: true}], rows)
      : h("p", {}, "No endpoints yet."));
}

// The form's controls, filled from ep (an endpoint as GET shows it) when editing.
async function endpointForm(ep, onSubmit) {
  const types = (await api("GET", "/event-types")).data.event_types || [];
  const chosen = new Set(ep ? ep.enabled_events || ["*"] : []);
  const known = new Set(types);
  const url = h("input", {type: "url", name: "url", required: true, value: ep ? ep.url || "" : "",
                          placeholder: "https://example.com/webhooks", autocomplete: "off"});
  const id = ep ? null : h("input", {type: "text", name: "id", required: true,
    pattern: "[A-Za-z0-9._-]{1,128}", autocomplete: "off"});
  const desc = h("input", {type: "text", name: "description", value: ep ? ep.description || "" : ""});
  const prefix = h("select", {name: "header_prefix"},
    ["svix", "webhook"].map(p => h("option", {value: p, selected: (ep && ep.header_prefix || "svix") === p}, p)));
  const boxes = ["*", ...types].map(t => h("label", {},
    h("input", {type: "checkbox", name: "event_type", value: t, checked: chosen.has(t)}),
    " ", t === "*" ? "every event type (*)" : t));
  const others = [...chosen].filter(t => t !== "*" && !known.has(t));
  const more = h("input", {type: "text", name: "more_types", value: others.join(", "),
                           placeholder: "job.*, invoice.paid"});
  const spec = ep && ep.filter ? JSON.stringify(ep.filter, null, 2) : "";
  const filter = h("textarea", {name: "filter", spellcheck: "false", value: spec});
  filter.value = spec;
  const filterMsg = h("div", {"aria-live": "polite", id: "filter-check"});
  const sinkSel = ep || sinks().length <= 1 ? null : h("select", {name: "sink"},
    sinks().map(s => h("option", {value: s}, s)));
  const formMsg = h("div", {"aria-live": "assertive", id: "form-message"});

  // The filter as JSON, checked by the API: {ok, value} or {ok: false} after saying why.
  async function checkFilter() {
    const text = filter.value.trim();
    if (!text) { fill(filterMsg); return {ok: true, value: null}; }
    let value;
    try { value = JSON.parse(text); } catch (e) {
      fill(filterMsg, notice("error", "The filter is not JSON: " + e.message));
      return {ok: false};
    }
    const r = await api("POST", "/filters/validate", {filter: value});
    if (r.status !== 200) {
      fill(filterMsg, notice("error", "The filter is refused at ", h("code", {}, r.data.path || "filter"), ": ", r.data.error));
      return {ok: false};
    }
    fill(filterMsg, notice("ok", "The filter is valid."));
    return {ok: true, value};
  }

  const form = h("form", {novalidate: false, onsubmit: async e => {
    e.preventDefault();
    fill(formMsg);
    const f = await checkFilter();
    if (!f.ok) { filter.focus(); return; }
    const events = boxes.map(l => l.querySelector("input")).filter(i => i.checked).map(i => i.value);
    for (const t of more.value.split(",").map(s => s.trim()).filter(Boolean)) events.push(t);
    const body = {url: url.value.trim(), header_prefix: prefix.value,
                  enabled_events: events.length ? events : ["*"]};
    if (desc.value.trim() || ep) body.description = desc.value.trim() || null;
    body.filter = f.value;
    if (!ep) {
      body.id = id.value.trim();
      body.sink = sinkSel ? sinkSel.value : sinks()[0];
      if (body.filter === null) delete body.filter;
    }
    const r = await onSubmit(body);
    if (r.status >= 300)
      fill(formMsg, notice("error", r.data.error, r.data.path ? [" (", h("code", {}, r.data.path), ")"] : null));
  }},
    id ? field("Endpoint id", id, "letters, digits, '.', '_' or '-'; it cannot change later") : null,
    field("URL", url, "where the events are POSTed, signed"),
    field("Description", desc),
    sinkSel ? field("Sink", sinkSel) : null,
    h("fieldset", {}, h("legend", {}, "Event types"),
      types.length ? null : h("p", {class: "hint"}, "No events seen yet for your organization."),
      boxes, field("Other types or patterns (comma-separated)", more)),
    field("Signature headers", prefix, "svix-id/-timestamp/-signature or webhook-id/-timestamp/-signature"),
    field("Filter (JSON)", filter, 'optional, e.g. {"data.status": {"$eq": "failed"}}'),
    h("div", {class: "actions"},
      h("button", {type: "button", onclick: checkFilter}, "Check filter"),
      h("button", {type: "submit", class: "primary"}, ep ? "Save changes" : "Create endpoint")),
    filterMsg, formMsg);
  return form;
}

// Shows a secret once, with a copy button (and when the previous one stops signing).
function secretBox(secret, previousExpires) {
  return notice("ok",
    h("p", {}, h("strong", {}, "Signing secret (shown only this once):")),
    h("p", {}, h("code", {class: "secret", id: "new-secret"}, secret), " ", copyButton(() => secret, "Copy secret")),
    previousExpires ? h("p", {id: "old-expires"}, "The previous secret keeps signing too until ",
      h("time", {datetime: previousExpires}, when(previousExpires)), ".") : null);
}

export async function newEndpointPage(main) {
  const out = h("div", {});
  const form = await endpointForm(null, async body => {
    const r = await api("POST", "/endpoints", body);
    if (r.status === 201) {
      fill(out, h("h2", {}, "Endpoint " + r.data.id + " created"), secretBox(r.data.secret),
        h("p", {}, h("a", {href: "#/endpoints/" + enc(r.data.id)}, "Open endpoint " + r.data.id)));
      out.querySelector("a").focus();
    }
    return r;
  });
  fill(out, h("h2", {}, "New endpoint"), form);
  fill(main, out);
}

export async function endpointPage(main, id) {
  const r = await api("GET", "/endpoints/" + enc(id));
  if (r.status !== 200) {
    fill(main, h("h2", {}, "Endpoint"), notice("error", r.data.error));
    return;
  }
  const ep = r.data;
  const st = (await api("GET", "/endpoints/" + enc(id) + "/stats")).data;
  const result = h("div", {"aria-live": "polite", id: "action-result"});
  const api_made = ep.source === "api";
  const grace = h("input", {type: "text", name: "grace", value: "24h", class: "short"});
  const health = h("dl", {class: "health"},
    h("dt", {}, "State"), h("dd", {}, stateBadge(st.state)),
    h("dt", {}, "Success rate, 24 h"), h("dd", {}, st.attempts_24h ? [percent(st.success_rate_24h), " of ", String(st.attempts_24h), " attempts"] : "no attempts"),
    h("dt", {}, "Success rate, 1 h"), h("dd", {}, percent(st.success_rate_1h)),
    h("dt", {}, "Last error"), h("dd", {class: "detail"}, st.last_error ? [when(st.last_error.at), " · ",
      st.last_error.detail || "HTTP " + st.last_error.status] : "none"),
    h("dt", {}, "Pending"), h("dd", {}, String(st.pending)),
    h("dt", {}, "Dead"), h("dd", {}, st.dead ? h("a", {href: "#/deliveries?state=dead&endpoint=" + enc(id)}, String(st.dead)) : "0"),
    h("dt", {}, "URL"), h("dd", {class: "detail"}, ep.url || ""),
    h("dt", {}, "Event types"), h("dd", {}, (ep.enabled_events || ["*"]).join(", ")),
    h("dt", {}, "Secrets"), h("dd", {}, (ep.secrets || []).map(s => h("div", {},
      h("code", {}, s.prefix + "…"), s.expires_at ? " (stops signing " + when(s.expires_at) + ")" : ""))));

  const act = async (label, method, path, body, show) => {
    const x = await api(method, path, body);
    fill(result, x.status < 300 ? show(x.data) : notice("error", label + ": " + x.data.error));
    result.focus();
    return x;
  };
  const actions = h("div", {class: "actions"},
    h("button", {type: "button", onclick: () => act("Test event", "POST", "/endpoints/" + enc(id) + "/test", undefined,
      d => notice("ok", "Test event ", h("code", {}, d.event_id), " sent."))}, "Send test event"),
    h("button", {type: "button", disabled: !st.dead, onclick: () => act("Replay", "POST",
      "/endpoints/" + enc(id) + "/replay-dead", undefined,
      d => notice("ok", String(d.replayed), " dead deliveries go out again."))}, "Replay all dead (" + st.dead + ")"),
    api_made ? [h("label", {for: "grace"}, "Old secret valid for"), Object.assign(grace, {id: "grace"}),
      h("button", {type: "button", onclick: () => act("Rotate", "POST", "/endpoints/" + enc(id) + "/rotate-secret",
        {grace: grace.value.trim() || "24h"}, d => secretBox(d.secret, d.previous_expires_at))}, "Rotate secret")] : null,
    api_made ? h("button", {type: "button", class: "danger", onclick: () => fill(result, notice("error",
      h("p", {}, "Delete endpoint " + id + "? Its pending deliveries become dead letters."),
      h("div", {class: "actions"},
        h("button", {type: "button", class: "danger", id: "confirm-delete", onclick: async () => {
          const x = await api("DELETE", "/endpoints/" + enc(id));
          if (x.status === 200) { status("Endpoint " + id + " deleted"); location.hash = "#/endpoints"; }
          else fill(result, notice("error", x.data.error));
        }}, "Delete " + id),
        h("button", {type: "button", onclick: () => fill(result)}, "Cancel"))))}, "Delete") : null,
    h("a", {class: "button", href: "#/deliveries?endpoint=" + enc(id)}, "Deliveries"));
  result.tabIndex = -1;

  const edit = api_made ? await endpointForm(ep, async body => {
    const x = await api("PATCH", "/endpoints/" + enc(id), body);
    if (x.status === 200) { status("Saved"); await refresh(); }
    return x;
  }) : h("p", {class: "muted"}, "This endpoint is defined by the platform's configuration; it cannot be edited here.");

  fill(main, h("h2", {}, "Endpoint " + id), ep.description ? h("p", {}, ep.description) : null,
    health, actions, result, h("h3", {}, "Edit"), edit,
    ep.url ? verifySection(ep.header_prefix || "svix") : null);
}
