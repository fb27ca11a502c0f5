// dom.js - building the page from data. Every value goes in as text (text
// nodes, textContent, attribute values): nothing from an event, an endpoint
// or the API is ever parsed as HTML, so it cannot add markup or run script.

// h("a", {href: "#/x", class: "c", onclick: fn}, "text", child, [more]) -> element
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "disabled" || k === "hidden" || k === "selected")
      el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  add(el, kids);
  return el;
}

function add(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) add(el, k);
    else if (k instanceof Node) el.appendChild(k);
    else el.appendChild(document.createTextNode(String(k)));
  }
}

// Replaces el's children.
export function fill(el, ...kids) {
  el.replaceChildren();
  add(el, kids);
  return el;
}

// A table: columns [{label, num}], rows of cells (values or nodes).
export function table(label, columns, rows) {
  return h("table", {"aria-label": label},
    h("thead", {}, h("tr", {}, columns.map(c =>
      h("th", {scope: "col", class: c.num ? "num" : null}, c.label)))),
    h("tbody", {}, rows));
}

export function stateBadge(state) {
  return h("span", {class: "state state-" + String(state).replace(/[^a-z_]/g, "")}, state);
}

// A time in ms (or an RFC 3339 string) as the browser's local time; "" for none.
export function when(t) {
  if (t === null || t === undefined || t === 0 || t === "") return "";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

export function percent(rate) {
  return rate === null || rate === undefined ? "no attempts" : (rate * 100).toFixed(1) + " %";
}

export function notice(kind, ...kids) {
  return h("div", {class: "notice " + kind, role: kind === "error" ? "alert" : null}, kids);
}

// A labelled control: field("Endpoint URL", input, "hint").
let nextId = 0;
export function field(label, control, hint) {
  if (!control.id) control.id = "f" + (++nextId);
  const kids = [h("label", {for: control.id}, label), control];
  if (hint) {
    const hid = control.id + "-hint";
    control.setAttribute("aria-describedby", hid);
    kids.push(h("span", {class: "hint", id: hid}, hint));
  }
  return h("div", {class: "field"}, kids);
}

// Says something to screen readers and sighted users for a few seconds.
export function status(text) {
  const el = document.getElementById("status");
  el.textContent = text;
  clearTimeout(status.timer);
  status.timer = setTimeout(() => { el.textContent = ""; }, 4000);
}

// A button that copies text; the text stays selectable when the clipboard is refused.
export function copyButton(getText, label) {
  return h("button", {type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(getText());
      status("Copied to the clipboard");
    } catch (e) {
      status("Copy refused by the browser: select the text and copy it");
    }
  }}, label || "Copy");
}
