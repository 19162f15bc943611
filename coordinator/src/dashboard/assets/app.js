// The mailfleet dashboard: one page of plain JavaScript over the HTTP API at /api/v1, so it needs
// no build step and does nothing the API does not allow (the API checks every role and tenant;
// this page only hides what a role cannot do). The token lives in sessionStorage: it is gone
// when the tab closes and never reaches a URL, a cookie or a log.
"use strict";

// Relative, so the page also works behind a proxy that serves it under a path prefix.
const API = "api/v1";
const TOKEN_KEY = "mailfleet.token";
const TENANT_KEY = "mailfleet.tenant";
const PAGE_SIZE = 50;
const POLL_MS = 3000;
const ROLES = ["viewer", "operator", "admin", "provider"];

// ---------------------------------------------------------------- formatting
// The same rules as the HTML report: times to the second in UTC, sizes in MB/GB (powers of
// 1024, as the CLI prints them), durations as "1 h 12 min".

function formatTime(iso) {
  if (!iso) return "never";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return String(iso);
  return at.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

function formatBytes(bytes) {
  const n = Number(bytes || 0);
  if (n >= 1024 ** 3) return (n / 1024 ** 3).toFixed(1) + " GB";
  if (n >= 1024 ** 2) return (n / 1024 ** 2).toFixed(1) + " MB";
  if (n >= 1024) return (n / 1024).toFixed(1) + " KB";
  return n + " B";
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "not yet";
  let s = Math.round(Number(seconds));
  if (s < 60) return s + " s";
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  s -= minutes * 60;
  const parts = [];
  if (days) parts.push(days + " d");
  if (hours) parts.push(hours + " h");
  if (minutes && !days) parts.push(minutes + " min");
  if (s && !days && !hours) parts.push(s + " s");
  return parts.join(" ");
}

function formatCount(n) {
  return Number(n || 0).toLocaleString("en");
}

// "IncrementalSynced" → "Incremental synced"; states stay recognisable as the CLI's names.
function stateLabel(state) {
  if (!state) return "";
  const words = String(state).replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// ---------------------------------------------------------------- DOM helpers

// Builds an element. Text is always set as text (never parsed as HTML), so nothing the API
// returns can inject markup.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replaces a region's content; keeps the keyboard focus on the element with the same id if
// the focused element was inside the region (live updates must not throw the user out).
function fill(region, ...children) {
  const focused = document.activeElement;
  const keep = focused && region.contains(focused) && focused.id ? focused.id : null;
  region.replaceChildren();
  append(region, ...children);
  if (keep) document.getElementById(keep)?.focus();
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

// A table whose first column names the row. Each cell carries its column's name
// (data-label), which narrow screens show beside the value when rows become cards.
function table(caption, columns, rows, emptyText) {
  if (!rows.length) return empty(emptyText);
  const labels = columns.map((c) => (c instanceof Node ? c.dataset.label || c.textContent : c));
  return h("div", { class: "table-wrap", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => (c instanceof Node ? c : h("th", { scope: "col" }, c))))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) =>
        i === 0 ? h("th", { scope: "row" }, c) : h("td", { "data-label": labels[i] }, c)))))));
}

function definitions(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function badge(state) {
  return h("span", { class: "badge state-" + String(state || "").toLowerCase() }, stateLabel(state));
}

let flashTimer = null;
function flash(message, kind) {
  const region = document.getElementById("flash");
  region.className = "flash " + (kind || "info");
  region.textContent = message;
  clearTimeout(flashTimer);
  if (kind !== "error") flashTimer = setTimeout(() => { region.textContent = ""; region.className = "flash"; }, 8000);
}

// A field with its label bound by id; `control` is an input, select or textarea element.
function field(label, control, hint) {
  const hintId = hint ? control.id + "-hint" : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null);
}

// Asks before anything that changes a batch or removes something. Resolves true on Confirm.
function confirmAction(title, text, confirmLabel) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel || "Confirm";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

// ---------------------------------------------------------------- session and API

const session = { whoami: null };

function token() { return sessionStorage.getItem(TOKEN_KEY); }
function actingTenant() {
  if (!session.whoami) return null;
  return session.whoami.tenant || sessionStorage.getItem(TENANT_KEY);
}
function isProvider() { return session.whoami?.role === "provider"; }
function can(role) {
  const mine = ROLES.indexOf(String(session.whoami?.role || "").toLowerCase());
  return mine >= ROLES.indexOf(role);
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || "HTTP " + status);
    this.status = status;
    this.problem = problem;
  }
}

function apiHeaders(extra) {
  const headers = Object.assign({ Accept: "application/json" }, extra || {});
  if (token()) headers.Authorization = "Bearer " + token();
  if (isProvider() && sessionStorage.getItem(TENANT_KEY)) {
    headers["Mailfleet-Tenant"] = sessionStorage.getItem(TENANT_KEY);
  }
  return headers;
}

// Calls the API; returns parsed JSON (or the Response when `raw`), throws ApiError with the
// problem+json detail — the message the CLI prints for the same error.
async function api(method, path, body, options) {
  const init = { method, headers: apiHeaders(options?.accept ? { Accept: options.accept } : {}) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 401 && path !== "/whoami") {
    signOut("Your token was not accepted any more (revoked or expired). Sign in again.");
    throw new ApiError(401, { title: "Unauthorized" });
  }
  if (!response.ok) {
    let problem = { title: response.statusText };
    try { problem = await response.json(); } catch (_) { /* not JSON: keep the status text */ }
    throw new ApiError(response.status, problem);
  }
  if (options?.raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function listOf(payload, key) {
  if (Array.isArray(payload)) return payload;
  return (payload && payload[key]) || [];
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TENANT_KEY);
  session.whoami = null;
  live.stop();
  showChrome();
  location.hash = "#/signin";
  if (message) flash(message, "error");
}

function showChrome() {
  const who = session.whoami;
  document.getElementById("nav").hidden = !who;
  document.getElementById("session").hidden = !who;
  document.querySelectorAll("[data-provider]").forEach((el) => { el.hidden = !isProvider(); });
  if (!who) return;
  const tenant = actingTenant();
  document.getElementById("who").textContent =
    stateLabel(who.role) + (tenant ? " · tenant " + tenant : " · no tenant chosen");
}

// ---------------------------------------------------------------- live updates
// Server-Sent Events from /api/v1/events, read with fetch (EventSource cannot send the
// Authorization header). While the stream is down the current view is polled instead.

const live = {
  controller: null,
  pollTimer: null,
  refreshTimer: null,
  connected: false,

  start() {
    this.stop();
    if (!token() || !actingTenant()) return;
    this.controller = new AbortController();
    this.read(this.controller.signal);
  },

  stop() {
    this.controller?.abort();
    this.controller = null;
    this.setConnected(false);
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  },

  setConnected(connected) {
    this.connected = connected;
    const badgeEl = document.getElementById("live");
    badgeEl.textContent = connected ? "Live" : token() ? "Updating every " + POLL_MS / 1000 + " s" : "";
    clearInterval(this.pollTimer);
    this.pollTimer = connected || !token() ? null : setInterval(() => view.refresh?.(), POLL_MS);
  },

  async read(signal) {
    try {
      const response = await fetch(API + "/events", { headers: apiHeaders({ Accept: "text/event-stream" }), signal });
      if (!response.ok || !response.body) throw new Error("events: HTTP " + response.status);
      this.setConnected(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^(event|data):/m.test(block)) this.changed();
        }
      }
    } catch (_) {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    this.setConnected(false);
    setTimeout(() => { if (!signal.aborted) this.read(signal); }, 5000);
  },

  // Many events arrive together during a pass: refresh once for all of them.
  changed() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => view.refresh?.(), 300);
  },
};

// ---------------------------------------------------------------- routing

const view = { refresh: null };

const routes = [
  [/^#\/signin$/, signInView],
  [/^#\/tenants$/, tenantsView],
  [/^#\/endpoints$/, endpointsView],
  [/^#\/audit$/, auditView],
  [/^#\/batches$/, batchesView],
  [/^#\/batches\/([^/]+)$/, batchView],
  [/^#\/batches\/([^/]+)\/users\/([^/]+)$/, userView],
];

async function route() {
  const hash = location.hash || "#/batches";
  view.refresh = null;
  if (!token() && hash !== "#/signin") {
    location.hash = "#/signin";
    return;
  }
  if (token() && !session.whoami) {
    try {
      session.whoami = await api("GET", "/whoami");
    } catch (error) {
      signOut("Sign in again: " + error.message);
      return;
    }
    showChrome();
    live.start();
  }
  let handler = null;
  let params = [];
  for (const [pattern, fn] of routes) {
    const match = hash.match(pattern);
    if (match) { handler = fn; params = match.slice(1).map(decodeURIComponent); break; }
  }
  if (!handler) { location.hash = "#/batches"; return; }
  if (token() && isProvider() && !actingTenant() && ![signInView, tenantsView].includes(handler)) {
    flash("Choose a tenant to act in first.", "info");
    location.hash = "#/tenants";
    return;
  }
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (hash.startsWith("#/" + a.dataset.nav)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  const main = document.getElementById("main");
  main.replaceChildren();
  await handler(main, ...params);
  const heading = main.querySelector("h1");
  document.title = (heading ? heading.textContent + " · " : "") + "mailfleet";
  if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
}

// Runs an async action from a button: the button is disabled while it runs, errors are shown.
async function busy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (error) {
    if (error.status !== 401) flash(error.message, "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- sign in

function signInView(main) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { id: "signin-error", class: "error", role: "alert" });
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "Paste an API token (", h("code", {}, "mf_…"), "), as printed once by ",
      h("code", {}, "mailfleet token create"), ". It is kept in this tab only."),
    field("API token", input),
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    sessionStorage.removeItem(TENANT_KEY);
    try {
      session.whoami = await api("GET", "/whoami");
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      session.whoami = null;
      error.textContent = e.status === 401 ? "This token is not valid (unknown or revoked)." : e.message;
      input.focus();
      return;
    }
    showChrome();
    live.start();
    location.hash = isProvider() ? "#/tenants" : "#/batches";
  });
  main.append(form);
  input.focus();
}

// ---------------------------------------------------------------- tenants (provider)

function tenantsView(main) {
  const list = h("section", { "aria-labelledby": "tenants-list" }, h("h2", { id: "tenants-list" }, "All tenants"), h("div"));
  const region = list.lastChild;
  const name = h("input", { id: "tenant-name", required: true, pattern: "[a-z0-9\\-]+", autocomplete: "off" });
  const migrations = h("input", { id: "tenant-migrations", type: "number", min: "1" });
  const users = h("input", { id: "tenant-users", type: "number", min: "1" });
  const form = h("form", { class: "card", "aria-labelledby": "tenant-create" },
    h("h2", { id: "tenant-create" }, "Create a tenant"),
    h("div", { class: "grid" },
      field("Name", name, "Lowercase letters, digits and -."),
      field("Max concurrent migrations", migrations, "Optional; shared by all its batches."),
      field("Max users", users, "Optional.")),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create tenant")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim() };
    if (migrations.value) body.max_concurrent_migrations = Number(migrations.value);
    if (users.value) body.max_users = Number(users.value);
    await busy(event.submitter || form, async () => {
      await api("POST", "/tenants", body);
      flash("Tenant " + body.name + " created.", "ok");
      form.reset();
      await load();
    });
  });

  async function load() {
    const tenants = listOf(await api("GET", "/tenants"), "tenants");
    const current = sessionStorage.getItem(TENANT_KEY);
    fill(region, table("Tenants", ["Name", "Max concurrent migrations", "Max users", "Created", "Actions"],
      tenants.map((t) => [
        t.name + (t.name === current ? " (acting)" : ""),
        t.max_concurrent_migrations ?? "no limit",
        t.max_users ?? "no limit",
        formatTime(t.created_at),
        h("span", { class: "row-actions" },
          h("button", { type: "button", id: "open-tenant-" + t.name, onclick: () => {
            sessionStorage.setItem(TENANT_KEY, t.name);
            showChrome();
            live.start();
            location.hash = "#/batches";
          } }, "Act in " + t.name),
          h("button", { type: "button", class: "danger", id: "remove-tenant-" + t.name, onclick: async (e) => {
            if (!await confirmAction("Remove tenant " + t.name + "?",
              "Its endpoints, batches and tokens are removed and its sealed passwords become unreadable. This cannot be undone.", "Remove tenant")) return;
            await busy(e.target, async () => {
              await api("DELETE", "/tenants/" + encodeURIComponent(t.name));
              if (current === t.name) sessionStorage.removeItem(TENANT_KEY);
              showChrome();
              flash("Tenant " + t.name + " removed.", "ok");
              await load();
            });
          } }, "Remove")),
      ]), "No tenants yet: create the first one below."));
  }

  append(main, h("h1", {}, "Tenants"), list, form);
  view.refresh = () => load().catch(() => {});
  return load().catch((e) => fill(region, h("p", { class: "error" }, e.message)));
}

// ---------------------------------------------------------------- endpoints

const ADMIN_FORMATS = ["", "exchange", "dovecot", "mirapoint", "courier", "cyrus"];
const PROFILES = ["auto", "generic", "m365"];

function select(id, options, selected) {
  return h("select", { id }, options.map(([value, label]) =>
    h("option", { value, selected: value === selected }, label)));
}

function testResult(name, result) {
  const lines = [];
  if (Array.isArray(result)) {
    for (const check of result) lines.push([check.check, (check.ok ? "ok: " : "FAILED: ") + check.detail]);
  } else if (result && typeof result === "object") {
    for (const [key, value] of Object.entries(result)) {
      lines.push([stateLabel(key.replace(/_/g, " ")), typeof value === "object" ? JSON.stringify(value) : String(value)]);
    }
  } else {
    lines.push(["Result", String(result)]);
  }
  return h("section", { class: "card", "aria-labelledby": "test-title" },
    h("h2", { id: "test-title" }, "Test of " + name), definitions(lines));
}

function endpointsView(main) {
  const region = h("div");
  const results = h("div", { id: "endpoint-test", "aria-live": "polite" });

  async function runTest(name, button) {
    await busy(button, async () => {
      fill(results, h("p", {}, "Testing " + name + "…"));
      try {
        const result = await api("POST", "/endpoints/" + encodeURIComponent(name) + "/test");
        fill(results, testResult(name, result));
      } catch (e) {
        fill(results, h("section", { class: "card" }, h("h2", {}, "Test of " + name),
          h("p", { class: "error", role: "alert" }, e.message)));
      }
    });
  }

  async function load() {
    const endpoints = listOf(await api("GET", "/endpoints"), "endpoints");
    fill(region, table("Endpoints", ["Name", "Server", "Admin", "Migrations at once", "Incremental syncs at once", "Profile", "Actions"],
      endpoints.map((e) => [
        e.name,
        e.description ?? "",
        e.record?.endpoint?.admin?.user ?? "none",
        e.record?.max_concurrent_migrations ?? "",
        e.record?.max_concurrent_incremental_syncs ?? "",
        e.record?.profile ?? "auto",
        h("span", { class: "row-actions" },
          h("button", { type: "button", id: "test-" + e.name, onclick: (ev) => runTest(e.name, ev.target) }, "Test " + e.name),
          can("admin") ? h("button", { type: "button", class: "danger", id: "remove-endpoint-" + e.name, onclick: async (ev) => {
            if (!await confirmAction("Remove endpoint " + e.name + "?", "Batches that use it can no longer sync.", "Remove endpoint")) return;
            await busy(ev.target, async () => {
              await api("DELETE", "/endpoints/" + encodeURIComponent(e.name));
              flash("Endpoint " + e.name + " removed.", "ok");
              await load();
            });
          } }, "Remove") : null),
      ]), "No endpoints yet." + (can("admin") ? " Create one below." : "")));
  }

  append(main, h("h1", {}, "Endpoints"), region, results);
  if (can("admin")) main.append(endpointForm(load, runTest));
  view.refresh = () => load().catch(() => {});
  return load().catch((e) => fill(region, h("p", { class: "error" }, e.message)));
}

function endpointForm(reload, runTest) {
  const name = h("input", { id: "endpoint-name", required: true, autocomplete: "off" });
  const url = h("input", { id: "endpoint-url", required: true, placeholder: "imaps://mail.example.com:993", autocomplete: "off" });
  const admin = h("input", { id: "endpoint-admin", autocomplete: "off" });
  const password = h("input", { id: "endpoint-password", type: "password", autocomplete: "new-password" });
  const format = select("endpoint-admin-format", ADMIN_FORMATS.map((f) => [f, f || "none"]), "");
  const migrations = h("input", { id: "endpoint-migrations", type: "number", min: "1", placeholder: "20" });
  const incremental = h("input", { id: "endpoint-incremental", type: "number", min: "1", placeholder: "10" });
  const profile = select("endpoint-profile", PROFILES.map((p) => [p, p]), "auto");
  const form = h("form", { class: "card", "aria-labelledby": "endpoint-create" },
    h("h2", { id: "endpoint-create" }, "Create an endpoint"),
    h("div", { class: "grid" },
      field("Name", name),
      field("Server URL", url, "imap://, imap+starttls:// or imaps://"),
      field("Admin login", admin, "Optional: log in as an admin on each user's behalf."),
      field("Admin password", password),
      field("Admin format", format),
      field("Migrations at once", migrations),
      field("Incremental syncs at once", incremental),
      field("Target profile", profile)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create and test")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), url: url.value.trim() };
    if (admin.value) body.admin_user = admin.value;
    if (password.value) body.admin_password = password.value;
    if (format.value) body.admin_format = format.value;
    if (migrations.value) body.max_concurrent_migrations = Number(migrations.value);
    if (incremental.value) body.max_concurrent_incremental_syncs = Number(incremental.value);
    if (profile.value !== "auto") body.profile = profile.value;
    const button = event.submitter || form.querySelector("button[type=submit]");
    const created = await busy(button, async () => {
      await api("POST", "/endpoints", body);
      flash("Endpoint " + body.name + " created.", "ok");
      form.reset();
      await reload();
      return true;
    });
    if (created) await runTest(body.name, button);
  });
  return form;
}

// ---------------------------------------------------------------- batches

// Users a pass is still working on or waiting for; the rest are done with the current pass.
const PENDING_STATES = ["queued", "syncing", "incremental_syncing", "completing"];

function counts(batch) {
  return batch.counts || {};
}

function progress(batch) {
  const c = counts(batch);
  const total = Number(c.total || 0);
  const pending = PENDING_STATES.reduce((sum, key) => sum + Number(c[key] || 0), 0);
  const done = Math.max(0, total - pending);
  const text = formatCount(done) + " of " + formatCount(total) + " users done";
  return h("span", { class: "progress" },
    h("progress", { max: String(Math.max(total, 1)), value: String(done), "aria-label": "Progress of " + batch.name + ": " + text }),
    h("span", {}, text));
}

function countsText(batch) {
  const c = counts(batch);
  const parts = Object.entries(c).filter(([k, v]) => k !== "total" && !k.startsWith("items_") && Number(v) > 0)
    .map(([k, v]) => formatCount(v) + " " + k.replace(/_/g, " "));
  return parts.length ? parts.join(", ") : "no users";
}

function batchesView(main) {
  const region = h("div");
  async function load() {
    const batches = listOf(await api("GET", "/batches"), "batches");
    fill(region, table("Batches", ["Name", "State", "Progress", "Users", "Failed", "Last sync"],
      batches.map((b) => [
        h("a", { href: "#/batches/" + encodeURIComponent(b.name) }, b.name),
        badge(b.state),
        progress(b),
        countsText(b),
        formatCount(counts(b).failed),
        formatTime(b.last_sync_finished_at),
      ]), "No batches yet." + (can("operator") ? " Create one below." : "")));
  }
  append(main, h("h1", {}, "Batches"), region);
  if (can("operator")) main.append(batchForm());
  view.refresh = () => load().catch(() => {});
  return load().catch((e) => fill(region, h("p", { class: "error" }, e.message)));
}

function batchForm() {
  const name = h("input", { id: "batch-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", autocomplete: "off" });
  const source = select("batch-source", [], "");
  const target = select("batch-target", [], "");
  const csv = h("input", { id: "batch-csv", type: "file", accept: ".csv,text/csv", required: true });
  const startNow = h("input", { id: "batch-start", type: "checkbox" });
  const mirror = h("input", { id: "batch-mirror-deletions", type: "checkbox" });
  const interval = h("input", { id: "batch-interval", placeholder: "24h", autocomplete: "off" });
  const window_ = h("input", { id: "batch-window", placeholder: "72h", autocomplete: "off" });
  const errors = h("div", { id: "batch-csv-errors", role: "alert" });
  csv.setAttribute("aria-describedby", "batch-csv-hint batch-csv-errors");
  const form = h("form", { class: "card", "aria-labelledby": "batch-create" },
    h("h2", { id: "batch-create" }, "Create a batch"),
    h("div", { class: "grid" },
      field("Name", name, "Up to 64 letters, digits, - and _."),
      field("Source endpoint", source),
      field("Target endpoint", target),
      h("div", { class: "field" },
        h("label", { for: "batch-csv" }, "Users (CSV file)"),
        csv,
        h("small", { id: "batch-csv-hint", class: "hint" }, "Header EmailAddress,UserName,Password[,UserRoot]; up to 50,000 rows.")),
      field("Incremental sync every", interval, "Optional, e.g. 24h or 30min."),
      field("Completion window", window_, "Optional, e.g. 72h: syncing goes on this long after Complete."),
      h("div", { class: "field check" }, startNow, h("label", { for: "batch-start" }, "Start the initial sync now")),
      h("div", { class: "field check" }, mirror, h("label", { for: "batch-mirror-deletions" }, "Mirror deletions in incremental syncs"))),
    errors,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "batch-submit" }, "Create batch")));

  api("GET", "/endpoints").then((payload) => {
    const names = listOf(payload, "endpoints").map((e) => e.name);
    for (const [el, pick] of [[source, 0], [target, 1]]) {
      el.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
      if (names[pick]) el.value = names[pick];
    }
    if (!names.length) fill(errors, h("p", { class: "hint" }, "Create the source and target endpoints first."));
  }).catch(() => {});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const file = csv.files[0];
    if (!file) { csv.focus(); return; }
    const body = {
      name: name.value.trim(),
      source_endpoint: source.value,
      target_endpoint: target.value,
      csv: await file.text(),
      mirror_deletions: mirror.checked,
    };
    if (startNow.checked) body.autostart = true;
    if (interval.value.trim()) body.incremental_interval = interval.value.trim();
    if (window_.value.trim()) body.completion_window = window_.value.trim();
    const button = event.submitter || form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", "/batches", body);
      flash("Batch " + body.name + " created.", "ok");
      location.hash = "#/batches/" + encodeURIComponent(body.name);
    } catch (e) {
      const lines = e.problem?.errors || [];
      fill(errors, h("div", { class: "problem" },
        h("p", { class: "error" }, lines.length ? "The CSV has " + lines.length + (lines.length === 1 ? " error" : " errors") + "; nothing was created:" : e.message),
        lines.length ? h("ul", { class: "csv-errors" }, lines.map((l) =>
          h("li", {}, (l.line ? "Line " + l.line + ": " : "") + l.message))) : null));
      (lines.length ? csv : name).focus();
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// The commands of a batch, in the order a migration uses them, with what each one does.
const BATCH_ACTIONS = [
  ["start", "Start", "Start the initial sync of every user."],
  ["resume", "Resume", "Resume the stopped batch."],
  ["sync-now", "Sync now", "Run the next incremental sync now."],
  ["stop", "Stop", "Stop syncing; the running pass finishes its current messages."],
  ["complete", "Complete", "Begin the completion window: syncing goes on until it ends, then a final sync, then Completed."],
  ["verify", "Verify", "Compare both servers now."],
];

function batchView(main, name) {
  const path = "/batches/" + encodeURIComponent(name);
  const heading = h("h1", {}, "Batch " + name);
  const summary = h("div", { class: "card" });
  const actions = h("div", { class: "actions wrap" });
  const reports = h("div", { class: "actions wrap" }, ["csv", "json", "html"].map((format) =>
    h("button", { type: "button", id: "report-" + format, onclick: (e) => busy(e.target, () => download(path + "/report?format=" + format, name + "-users." + format)) },
      "Download " + format.toUpperCase() + " report")));
  const users = usersSection(name, path);

  for (const [command, label, explanation] of BATCH_ACTIONS) {
    actions.append(h("button", { type: "button", id: "action-" + command, class: command === "complete" ? "primary" : null, onclick: async (e) => {
      if (!await confirmAction(label + " batch " + name + "?", explanation, label)) return;
      await busy(e.target, async () => {
        const result = await api("POST", path + "/" + command);
        flash(label + ": done for batch " + name + (result?.state ? " (now " + stateLabel(result.state) + ")" : "") + ".", "ok");
        await load();
      });
    } }, label));
  }
  if (can("operator")) {
    actions.append(h("button", { type: "button", id: "action-remove", class: "danger", onclick: async (e) => {
      if (!await confirmAction("Remove batch " + name + "?", "The batch, its users and their sealed passwords are deleted. Mail already copied stays on the target.", "Remove batch")) return;
      await busy(e.target, async () => {
        await api("DELETE", path);
        flash("Batch " + name + " removed.", "ok");
        location.hash = "#/batches";
      });
    } }, "Remove"));
  }

  async function load() {
    const batch = await api("GET", path);
    fill(summary,
      h("p", { class: "headline" }, badge(batch.state), " ", progress(batch)),
      definitions([
        ["Source → target", (batch.source_endpoint || "") + " → " + (batch.target_endpoint || "")],
        ["Users", countsText(batch)],
        ["Items", formatCount(counts(batch).items_synced) + " synced, " + formatCount(counts(batch).items_skipped) + " skipped"],
        ["Created", formatTime(batch.created_at)],
        ["Start after", batch.start_after ? formatTime(batch.start_after) : "not started"],
        ["Initial sync finished", formatTime(batch.initial_sync_finished_at)],
        ["Last sync finished", formatTime(batch.last_sync_finished_at)],
        ["Next sync", batch.next_sync_at ? formatTime(batch.next_sync_at) : "none planned"],
        ["Completion window ends", batch.completion_deadline ? formatTime(batch.completion_deadline) : "not completing"],
        ["Finished", formatTime(batch.finished_at)],
      ]));
    heading.replaceChildren("Batch " + name);
    await users.load();
  }

  append(main, h("p", {}, h("a", { href: "#/batches" }, "← All batches")), heading, summary,
    can("operator") ? h("section", { "aria-labelledby": "actions-title" }, h("h2", { id: "actions-title" }, "Actions"), actions) : null,
    h("section", { "aria-labelledby": "reports-title" }, h("h2", { id: "reports-title" }, "Reports"), reports),
    users.section);
  view.refresh = () => load().catch(() => {});
  return load().catch((e) => fill(summary, h("p", { class: "error", role: "alert" }, e.message)));
}

// Fetches with the token and hands the body to the browser as a download (a plain link could
// not send the Authorization header).
async function download(path, filename) {
  const response = await api("GET", path, undefined, { raw: true, accept: "*/*" });
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const USER_STATES = ["Queued", "Syncing", "Synced", "IncrementalSyncing", "IncrementalSynced", "Completing",
  "Completed", "CompletedWithWarnings", "Failed", "IncrementalFailed", "Stopped"];
// [key, label, sortable by the API]
const USER_COLUMNS = [
  ["email", "Email", true], ["state", "State", true], ["items_synced", "Items synced", true],
  ["items_skipped", "Items skipped", true], ["bytes_copied_total", "Copied", false],
  ["last_successful_sync", "Last sync", false], ["consistency", "Consistency", false],
];

// A batch's users: sorted, filtered and searched by the API, a page at a time by cursor.
function usersSection(batchName, batchPath) {
  const state = { sort: "email", descending: false, cursors: [null], page: 0 };
  const search = h("input", { id: "users-search", type: "search", autocomplete: "off", placeholder: "name or address" });
  const filter = select("users-state", [["", "All states"], ...USER_STATES.map((s) => [s, stateLabel(s)])], "");
  const region = h("div", { id: "users-table" });
  const pager = h("div", { class: "actions pager" });
  const section = h("section", { "aria-labelledby": "users-title" },
    h("h2", { id: "users-title" }, "Users"),
    h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); restart(); } },
      field("Search", search), field("State", filter)),
    region, pager);
  let typing = null;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(restart, 300); });
  filter.addEventListener("change", restart);

  function restart() {
    state.cursors = [null];
    state.page = 0;
    load().catch((e) => fill(region, h("p", { class: "error" }, e.message)));
  }

  function header([key, label, sortable]) {
    if (!sortable) return h("th", { scope: "col" }, label);
    const active = state.sort === key;
    const direction = active ? (state.descending ? "descending" : "ascending") : null;
    return h("th", { scope: "col", "aria-sort": direction || "none", dataset: { label } },
      h("button", { type: "button", class: "sort", id: "sort-" + key, onclick: () => {
        state.descending = active ? !state.descending : false;
        state.sort = key;
        restart();
      } }, label, h("span", { "aria-hidden": "true" }, active ? (state.descending ? " ▼" : " ▲") : "")));
  }

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), sort: (state.descending ? "-" : "") + state.sort });
    if (filter.value) query.set("state", filter.value);
    if (search.value.trim()) query.set("q", search.value.trim());
    const cursor = state.cursors[state.page];
    if (cursor) query.set("cursor", cursor);
    const payload = await api("GET", batchPath + "/users?" + query);
    const users = listOf(payload, "users");
    state.cursors[state.page + 1] = payload?.next_cursor || null;
    const filtered = filter.value || search.value.trim();
    fill(region, table("Users of batch " + batchName, USER_COLUMNS.map(header),
      users.map((u) => [
        h("a", { href: "#/batches/" + encodeURIComponent(batchName) + "/users/" + encodeURIComponent(u.email) }, u.email),
        badge(u.state),
        formatCount(u.items_synced),
        formatCount(u.items_skipped),
        formatBytes(u.bytes_copied_total),
        formatTime(u.last_successful_sync),
        consistency(u),
      ]), filtered ? "No users match this search." : "This batch has no users."));
    const first = state.page * PAGE_SIZE + 1;
    fill(pager,
      h("button", { type: "button", id: "users-previous", disabled: state.page === 0, onclick: () => { state.page -= 1; load(); } }, "Previous page"),
      h("span", { class: "hint" }, users.length ? "Users " + first + "–" + (first + users.length - 1) : ""),
      h("button", { type: "button", id: "users-next", disabled: !payload?.next_cursor, onclick: () => { state.page += 1; load(); } }, "Next page"));
  }

  return { section, load };
}

// Microsoft's grades from skipped vs synced items, as ConsistencyScore::of computes them.
function consistency(u) {
  const synced = Number(u.items_synced || 0);
  const skipped = Number(u.items_skipped || 0);
  if (!skipped) return "Perfect";
  const ratio = skipped / (synced + skipped);
  return ratio < 0.001 ? "Good" : ratio < 0.01 ? "Investigate" : "Poor";
}

// ---------------------------------------------------------------- one user

function userView(main, batchName, email) {
  const path = "/batches/" + encodeURIComponent(batchName) + "/users/" + encodeURIComponent(email);
  const body = h("div");
  async function load() {
    const u = await api("GET", path);
    const folders = u.folders || [];
    fill(body,
      h("div", { class: "card" },
        h("p", { class: "headline" }, badge(u.state)),
        definitions([
          ["User name", u.user_name || ""],
          ["Items synced", formatCount(u.items_synced)],
          ["Items skipped", formatCount(u.items_skipped)],
          ["Consistency", consistency(u)],
          ["Copied in all passes", formatCount(u.items_copied_total) + " items, " + formatBytes(u.bytes_copied_total)],
          ["Mirrored from the source", formatCount(u.flags_updated_total) + " flag changes, " + formatCount(u.moved_total) + " moves, " + formatCount(u.deleted_total) + " deletions"],
          ["Last sync", formatTime(u.last_successful_sync)],
          ["Initial sync took", formatDuration(u.initial_sync_seconds)],
          ["Last incremental sync took", formatDuration(u.last_incremental_sync_seconds)],
        ])),
      h("section", { "aria-labelledby": "folders-title" }, h("h2", { id: "folders-title" }, "Folders"),
        table("Folders", ["Source folder", "Copied up to source UID"],
          folders.map((f) => [f.folder, String(f.last_source_uid)]),
          "No folders recorded yet.")),
      h("section", { "aria-labelledby": "skipped-title" }, h("h2", { id: "skipped-title" }, "Skipped items"),
        items("Skipped items", u.skipped || [], "Nothing was skipped.")),
      h("section", { "aria-labelledby": "warnings-title" }, h("h2", { id: "warnings-title" }, "Warnings"),
        items("Warnings", u.warnings || [], "No warnings.")),
      h("section", { "aria-labelledby": "kept-title" }, h("h2", { id: "kept-title" }, "Deleted on the source, kept on the target"),
        items("Deleted on the source", u.deleted_on_source_kept || [], "None.")),
      h("section", { "aria-labelledby": "errors-title" }, h("h2", { id: "errors-title" }, "Errors"),
        (u.errors || []).length ? h("ul", { class: "errors" }, u.errors.map((e) => h("li", {}, e))) : empty("No errors.")));
  }
  append(main, h("p", {}, h("a", { href: "#/batches/" + encodeURIComponent(batchName) }, "← Batch " + batchName)),
    h("h1", {}, email), body);
  view.refresh = () => load().catch(() => {});
  return load().catch((e) => fill(body, h("p", { class: "error", role: "alert" }, e.message)));
}

function items(caption, list, emptyText) {
  return table(caption, ["Folder", "Subject", "Date", "Size", "Reason"],
    list.map((i) => [i.folder, i.subject ?? "", i.date ?? "", i.size == null ? "" : formatBytes(i.size), i.reason]), emptyText);
}

// ---------------------------------------------------------------- audit

function auditView(main) {
  const region = h("div");
  async function load() {
    const entries = listOf(await api("GET", "/audit?limit=100"), "entries");
    fill(region, table("Audit log", ["When", "Who", "What", "Subject"],
      entries.map((e) => [formatTime(e.at), e.actor, e.action, e.subject]), "Nothing has been changed yet."));
  }
  append(main, h("h1", {}, "Audit log"), h("p", { class: "hint" }, "The latest 100 changes in this tenant, newest first."), region);
  view.refresh = () => load().catch(() => {});
  return load().catch((e) => fill(region, h("p", { class: "error" }, e.message)));
}

// ---------------------------------------------------------------- start

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
