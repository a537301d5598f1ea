// The apitokens web console: plain JavaScript module, no build step, no third-party code.
//
// The signed-in token lives in sessionStorage only (never a cookie, never the URL) and is
// sent to the API, on the same origin, in the X-API-Key header. Everything the server
// returns is put in the page with textContent, never as HTML.

import { validateCidrList } from "./cidr.js";
import { setupLifecycle } from "./lifecycle.js";
import { PERMISSION_GROUPS, PERMISSION_LABELS, PERMISSIONS } from "./permissions.js";

const STORAGE_KEY = "apitokens.console.token";
const PAGE_SIZE = 50;
const MAX_GRACE_SECONDS = 7 * 24 * 3600;
const MAX_NAME_LENGTH = 256;
// The API sits beside /console: resolve it from this module's own URL so the console also
// works when the service is mounted below a path prefix by a reverse proxy.
const API_BASE = new URL("../", import.meta.url);

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
};

let lifecycle = null; // webhooks and usage (lifecycle.js), set up in wire()

const state = {
  token: null, // the signed-in token value (mirrors sessionStorage)
  self: null, // APIToken of the signed-in token
  tokens: [], // loaded rows, in server order
  next: null, // pagination cursor for "Load more"
  loading: false,
};

// ---------------------------------------------------------------- API access

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, { body, query, token = state.token } = {}) {
  const url = new URL(path, API_BASE);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json", "X-API-Key": token ?? "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch (err) {
    throw new ApiError(0, `Cannot reach the server (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data.message === "string" && data.message
        ? data.message
        : `The server answered ${response.status} ${response.statusText}.`.replace(" .", ".");
    throw new ApiError(response.status, message);
  }
  return data;
}

const tokenPath = (id) => `api-tokens/${encodeURIComponent(id)}`;

// ---------------------------------------------------------------- small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child);
  }
  return node;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** "2025-03-04 05:06 UTC" from an RFC 3339 string. */
function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`
  );
}

function timeCell(iso, never) {
  if (!iso) return el("span", { class: "muted", text: never });
  return el("time", { datetime: iso, title: iso, text: formatTime(iso) });
}

function setFieldError(node, message) {
  node.textContent = message ?? "";
  node.hidden = !message;
}

let noticeTimer = null;
function showNotice(message, kind = "error") {
  const box = $("notice");
  $("notice-text").textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(noticeTimer);
  if (kind !== "error") noticeTimer = setTimeout(() => (box.hidden = true), 6000);
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice-text").textContent = "";
}

function announce(message) {
  $("status").textContent = message;
}

/** Run an action that calls the API; 401 signs out, other errors show the server's message. */
async function guarded(action, button) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(`Signed out: ${err.message}`);
    } else {
      showNotice(err.message || String(err));
    }
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------- session

function storedToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function storeToken(value) {
  state.token = value;
  sessionStorage.setItem(STORAGE_KEY, value);
}

function showSignIn(message) {
  $("workspace").hidden = true;
  $("whoami").hidden = true;
  $("signin").hidden = false;
  setFieldError($("signin-error"), message);
  $("signin-token").focus();
}

function signOut(message) {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage unavailable: nothing to clear
  }
  state.token = null;
  state.self = null;
  state.tokens = [];
  state.next = null;
  hideValue();
  hideCreate();
  lifecycle?.reset();
  $("tokens-body").replaceChildren();
  $("signin-token").value = "";
  clearNotice();
  showSignIn(message);
}

async function signIn(value) {
  const self = await api("GET", tokenPath("self"), { token: value });
  storeToken(value);
  state.self = self;
  renderWhoAmI();
  $("signin").hidden = true;
  $("signin-token").value = "";
  setFieldError($("signin-error"), null);
  $("workspace").hidden = false;
  $("whoami").hidden = false;
  renderPermissionPicker();
  await loadTokens();
  await lifecycle?.loadWebhooks();
}

function renderWhoAmI() {
  const self = state.self;
  $("whoami-name").textContent = self.name;
  const perms = heldBy(self);
  const bits = [`${perms.length} permission${perms.length === 1 ? "" : "s"}`];
  bits.push(self.expiresAt ? `expires ${formatTime(self.expiresAt)}` : "never expires");
  $("whoami-detail").textContent = `(${bits.join(", ")})`;
  $("whoami").title = `Token id ${self.id}`;
}

// ---------------------------------------------------------------- token list

async function loadTokens({ more = false } = {}) {
  if (state.loading) return;
  state.loading = true;
  const button = $("load-more");
  button.disabled = true;
  try {
    const page = await api("GET", "api-tokens", {
      query: { limit: PAGE_SIZE, cursor: more ? state.next : undefined },
    });
    const results = Array.isArray(page?.results) ? page.results : [];
    state.tokens = more ? [...state.tokens, ...results] : results;
    state.next = page?.next || null;
    renderTokens();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut(`Signed out: ${err.message}`);
    else showNotice(err.message);
  } finally {
    state.loading = false;
    button.disabled = false;
  }
}

// A token's upstream permissions and, in a field of their own, those for other services
// (the operator's APITOKENS_EXTRA_PERMISSIONS): shown and picked together.
function heldBy(token) {
  const service = Array.isArray(token?.servicePermissions) ? token.servicePermissions : [];
  return [...(token?.permissions ?? []), ...service];
}

function permissionsCell(perms) {
  const list = el("ul", { class: "chips" });
  const sorted = [...perms].sort();
  const shown = sorted.length > 6 ? sorted.slice(0, 5) : sorted;
  for (const p of shown) list.append(el("li", { class: "chip", title: PERMISSION_LABELS[p], text: p }));
  if (sorted.length === 0) return el("span", { class: "muted", text: "none" });
  if (shown.length === sorted.length) return list;
  const more = el(
    "details",
    { class: "more" },
    el("summary", {
      text: sorted.length === PERMISSIONS.length && PERMISSIONS.every((p) => sorted.includes(p))
        ? `all ${sorted.length}`
        : `${sorted.length - shown.length} more`,
    }),
  );
  const rest = el("ul", { class: "chips" });
  for (const p of sorted.slice(shown.length)) rest.append(el("li", { class: "chip", text: p }));
  more.append(rest);
  return el("div", {}, list, more);
}

function cidrCell(blocks) {
  if (!blocks || blocks.length === 0) return el("span", { class: "muted", text: "any address" });
  const list = el("ul", { class: "plain" });
  for (const b of blocks) list.append(el("li", {}, el("code", { text: b })));
  return list;
}

function expiryCell(iso) {
  if (!iso) return el("span", { class: "muted", text: "never" });
  const node = timeCell(iso, "never");
  if (new Date(iso).getTime() <= Date.now()) {
    return el("span", {}, node, " ", el("span", { class: "badge danger", text: "expired" }));
  }
  return node;
}

function renderTokens() {
  const body = $("tokens-body");
  const rows = state.tokens.map((t) => {
    const isSelf = state.self && t.id === state.self.id;
    const nameCell = el(
      "th",
      { scope: "row" },
      el("span", { class: "token-name", text: t.name }),
      isSelf ? el("span", { class: "badge", text: "this session" }) : null,
      el("div", { class: "muted mono small", text: t.id }),
    );
    const actions = el(
      "td",
      { class: "row-actions" },
      el("button", {
        type: "button",
        class: "button small",
        "aria-label": `Usage of ${t.name}`,
        text: "Usage",
        onclick: (e) => lifecycle?.showUsage(t, e.currentTarget),
      }),
      el("button", {
        type: "button",
        class: "button small",
        "aria-label": `Rotate ${t.name}`,
        text: "Rotate",
        onclick: (e) => rotateToken(t, e.currentTarget),
      }),
      el("button", {
        type: "button",
        class: "button small danger",
        "aria-label": `Delete ${t.name}`,
        text: "Delete",
        onclick: (e) => deleteToken(t, e.currentTarget),
      }),
    );
    return el(
      "tr",
      { "data-token-id": t.id },
      nameCell,
      el("td", {}, permissionsCell(heldBy(t))),
      el("td", {}, cidrCell(t.allowedCIDRBlocks)),
      el("td", {}, timeCell(t.createdAt, "—")),
      el("td", {}, timeCell(t.lastUsedAt, "never")),
      el("td", {}, expiryCell(t.expiresAt)),
      actions,
    );
  });
  body.replaceChildren(...rows);
  $("list-empty").hidden = state.tokens.length > 0;
  $("load-more").hidden = !state.next;
  const n = state.tokens.length;
  $("list-count").textContent = state.next
    ? `${n} token${n === 1 ? "" : "s"} shown, more available`
    : `${n} token${n === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------- value panel

function showValue(title, value) {
  $("value-title").textContent = title;
  const input = $("value-text");
  input.value = value;
  $("value-copy-status").textContent = "";
  $("value-panel").hidden = false;
  $("value-panel").scrollIntoView({ block: "nearest" });
  input.focus();
  input.select();
}

function hideValue() {
  $("value-text").value = "";
  $("value-copy-status").textContent = "";
  $("value-panel").hidden = true;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the legacy path (permission denied, unfocused document, ...)
    }
  }
  const area = el("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

// ---------------------------------------------------------------- create

// Permissions an operator added for other services (APITOKENS_EXTRA_PERMISSIONS) are not
// in the upstream list: the server shows them in servicePermissions. It lets a caller grant
// only what it holds, so the ones the signed-in token holds are exactly the extra ones this
// session can grant.
function pickerGroups() {
  const extra = heldBy(state.self).filter((name) => !PERMISSIONS.includes(name));
  return extra.length ? [...PERMISSION_GROUPS, { title: "Other services", names: extra }] : PERMISSION_GROUPS;
}

function renderPermissionPicker() {
  const held = new Set(heldBy(state.self));
  const container = $("perm-groups");
  const groups = pickerGroups().map((group, gi) => {
    const items = group.names.map((name) => {
      const id = `perm-${name}`;
      const notHeld = state.self && !held.has(name);
      const hint = [PERMISSION_LABELS[name], notHeld ? "your token does not hold it" : null]
        .filter(Boolean)
        .join("; ");
      return el(
        "div",
        { class: `perm${notHeld ? " not-held" : ""}`, "data-permission": name },
        el("input", {
          type: "checkbox",
          id,
          value: name,
          class: "perm-box",
          "aria-describedby": hint ? `${id}-hint` : undefined,
        }),
        el("label", { for: id, text: name }),
        hint ? el("span", { class: "hint", id: `${id}-hint`, text: hint }) : null,
      );
    });
    return el(
      "fieldset",
      { class: "perm-group", "data-group": gi },
      el("legend", { text: group.title }),
      ...items,
    );
  });
  container.replaceChildren(...groups);
  updatePermissionCount();
}

const permissionBoxes = () => [...document.querySelectorAll("#perm-groups input.perm-box")];
const visibleBoxes = () => permissionBoxes().filter((b) => !b.closest(".perm").hidden);

function updatePermissionCount() {
  const boxes = permissionBoxes();
  const chosen = boxes.filter((b) => b.checked).length;
  $("perm-count").textContent = `${chosen} of ${boxes.length} selected`;
  const visible = visibleBoxes();
  const visibleChosen = visible.filter((b) => b.checked).length;
  const all = $("perm-all");
  all.checked = visible.length > 0 && visibleChosen === visible.length;
  all.indeterminate = visibleChosen > 0 && visibleChosen < visible.length;
}

function filterPermissions() {
  const needle = $("perm-filter").value.trim().toLowerCase();
  for (const item of document.querySelectorAll("#perm-groups .perm")) {
    const name = item.dataset.permission;
    const text = `${name} ${PERMISSION_LABELS[name] ?? ""}`.toLowerCase();
    item.hidden = needle !== "" && !text.includes(needle);
  }
  for (const group of document.querySelectorAll("#perm-groups .perm-group")) {
    const title = group.querySelector("legend").textContent.toLowerCase();
    const anyVisible = [...group.querySelectorAll(".perm")].some((i) => !i.hidden);
    if (needle !== "" && title.includes(needle)) {
      for (const item of group.querySelectorAll(".perm")) item.hidden = false;
      group.hidden = false;
    } else {
      group.hidden = !anyVisible;
    }
  }
  $("perm-all").nextSibling.textContent = needle ? " Select all shown" : " Select all";
  updatePermissionCount();
}

function showCreate() {
  hideValue();
  resetCreate();
  $("create").hidden = false;
  $("new-token").setAttribute("aria-expanded", "true");
  $("create-name").focus();
}

function hideCreate() {
  $("create").hidden = true;
  $("new-token").setAttribute("aria-expanded", "false");
  resetCreate();
}

function resetCreate() {
  $("create-form").reset();
  for (const id of ["create-name-error", "perm-error", "create-cidrs-error", "create-expiry-error", "create-error"]) {
    setFieldError($(id), null);
  }
  for (const id of ["create-name", "create-cidrs", "create-expiry"]) $(id).removeAttribute("aria-invalid");
  filterPermissions();
}

/** Validate the create form in the browser; returns the request body or null. */
function readCreateForm() {
  let firstBad = null;
  const bad = (input, errorNode, message) => {
    setFieldError(errorNode, message);
    if (input) input.setAttribute("aria-invalid", "true");
    firstBad ??= input;
  };
  const good = (input, errorNode) => {
    setFieldError(errorNode, null);
    if (input) input.removeAttribute("aria-invalid");
  };

  const nameInput = $("create-name");
  const name = nameInput.value.trim();
  if (!name) bad(nameInput, $("create-name-error"), "Give the token a name.");
  else if (name.length > MAX_NAME_LENGTH) {
    bad(nameInput, $("create-name-error"), `The name is longer than ${MAX_NAME_LENGTH} characters.`);
  } else good(nameInput, $("create-name-error"));

  const chosen = permissionBoxes().filter((b) => b.checked).map((b) => b.value);
  // permissions takes upstream names only; the others go in servicePermissions.
  const permissions = chosen.filter((name) => PERMISSIONS.includes(name));
  const servicePermissions = chosen.filter((name) => !PERMISSIONS.includes(name));
  if (chosen.length === 0) {
    bad($("perm-filter"), $("perm-error"), "Choose at least one permission.");
  } else good(null, $("perm-error"));

  const cidrInput = $("create-cidrs");
  const { blocks, errors } = validateCidrList(cidrInput.value);
  const cidrError = $("create-cidrs-error");
  if (errors.length > 0) {
    cidrError.replaceChildren(...errors.map((m) => el("li", { text: m })));
    cidrError.hidden = false;
    cidrInput.setAttribute("aria-invalid", "true");
    firstBad ??= cidrInput;
  } else {
    cidrError.replaceChildren();
    cidrError.hidden = true;
    cidrInput.removeAttribute("aria-invalid");
  }

  const expiryInput = $("create-expiry");
  let expiresAt;
  if (expiryInput.value) {
    const when = new Date(expiryInput.value); // datetime-local: the browser's local time
    if (Number.isNaN(when.getTime())) bad(expiryInput, $("create-expiry-error"), "Not a valid date and time.");
    else if (when.getTime() <= Date.now()) {
      bad(expiryInput, $("create-expiry-error"), "The expiry must be in the future.");
    } else {
      expiresAt = when.toISOString();
      good(expiryInput, $("create-expiry-error"));
    }
  } else good(expiryInput, $("create-expiry-error"));

  if (firstBad) {
    setFieldError($("create-error"), "Fix the highlighted fields; nothing was sent.");
    firstBad.focus();
    return null;
  }
  setFieldError($("create-error"), null);
  const body = { name, permissions, allowedCIDRBlocks: blocks };
  if (servicePermissions.length > 0) body.servicePermissions = servicePermissions;
  if (expiresAt) body.expiresAt = expiresAt;
  return body;
}

async function submitCreate(event) {
  event.preventDefault();
  const body = readCreateForm();
  if (!body) return;
  const button = $("create-submit");
  button.disabled = true;
  try {
    const created = await api("POST", "api-tokens", { body });
    hideCreate();
    showValue(`Token “${created.name}” created`, created.value);
    announce(`Token ${created.name} created. Copy its value now.`);
    await loadTokens();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut(`Signed out: ${err.message}`);
    else setFieldError($("create-error"), err.message);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- confirmation dialog

let confirmResolve = null;

/** Ask in our own modal dialog; resolves {ok, grace}. */
function confirmAction({ title, text, okLabel, danger = false, grace = false }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  const ok = $("confirm-ok");
  ok.textContent = okLabel;
  ok.className = `button ${danger ? "danger-solid" : "primary"}`;
  $("confirm-grace").hidden = !grace;
  $("confirm-grace-input").value = "0";
  setFieldError($("confirm-grace-error"), null);
  dialog.showModal();
  (grace ? $("confirm-grace-input") : $("confirm-cancel")).focus();
  return new Promise((resolve) => {
    confirmResolve = resolve;
  });
}

function finishConfirm(result) {
  const resolve = confirmResolve;
  confirmResolve = null;
  const dialog = $("confirm");
  if (dialog.open) dialog.close();
  if (resolve) resolve(result);
}

function onConfirmSubmit(event) {
  event.preventDefault();
  let grace = 0;
  if (!$("confirm-grace").hidden) {
    const raw = $("confirm-grace-input").value.trim();
    if (raw !== "") {
      if (!/^[0-9]+$/.test(raw) || Number(raw) > MAX_GRACE_SECONDS) {
        setFieldError(
          $("confirm-grace-error"),
          `Enter a whole number of seconds from 0 to ${MAX_GRACE_SECONDS}.`,
        );
        $("confirm-grace-input").setAttribute("aria-invalid", "true");
        return;
      }
      grace = Number(raw);
    }
  }
  $("confirm-grace-input").removeAttribute("aria-invalid");
  finishConfirm({ ok: true, grace });
}

// ---------------------------------------------------------------- rotate and delete

async function rotateToken(token, button) {
  const isSelf = state.self && token.id === state.self.id;
  const { ok, grace } = await confirmAction({
    title: `Rotate “${token.name}”?`,
    text:
      "A new value is issued and shown once. The old value stops working when the grace period " +
      "ends." + (isSelf ? " This is the token you are signed in with; the console switches to the new value." : ""),
    okLabel: "Rotate",
    grace: true,
  });
  if (!ok) return;
  await guarded(async () => {
    const rotated = await api("POST", `${tokenPath(token.id)}/rotate`, {
      query: { gracePeriodSeconds: grace > 0 ? grace : undefined },
    });
    if (isSelf) storeToken(rotated.value);
    hideCreate();
    showValue(`Token “${rotated.name}” rotated`, rotated.value);
    announce(`Token ${rotated.name} rotated. Copy its new value now.`);
    await loadTokens();
  }, button);
}

async function deleteToken(token, button) {
  const isSelf = state.self && token.id === state.self.id;
  const { ok } = await confirmAction({
    title: `Delete “${token.name}”?`,
    text:
      "The token stops working at once and cannot be restored." +
      (isSelf ? " This is the token you are signed in with: you will be signed out." : ""),
    okLabel: "Delete",
    danger: true,
  });
  if (!ok) return;
  await guarded(async () => {
    await api("DELETE", tokenPath(token.id));
    if (isSelf) {
      signOut("The token you were signed in with was deleted.");
      return;
    }
    showNotice(`Token “${token.name}” deleted.`, "info");
    await loadTokens();
  }, button);
}

// ---------------------------------------------------------------- wiring

function wire() {
  lifecycle = setupLifecycle({ api, el, $, guarded, timeCell, tokenPath });
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("signin-token").value.trim();
    if (!value) {
      setFieldError($("signin-error"), "Paste a token first.");
      return;
    }
    const button = $("signin-submit");
    button.disabled = true;
    try {
      clearNotice();
      await signIn(value);
    } catch (err) {
      setFieldError($("signin-error"), err.message);
      $("signin-token").focus();
    } finally {
      button.disabled = false;
    }
  });
  $("signout").addEventListener("click", () => signOut(null));
  $("notice-close").addEventListener("click", clearNotice);
  $("refresh").addEventListener("click", async () => {
    clearNotice();
    await guarded(async () => {
      state.self = await api("GET", tokenPath("self"));
      renderWhoAmI();
      await loadTokens();
      await lifecycle?.loadWebhooks();
    }, $("refresh"));
  });
  $("load-more").addEventListener("click", () => loadTokens({ more: true }));
  $("new-token").addEventListener("click", () => {
    if ($("create").hidden) showCreate();
    else hideCreate();
  });
  $("new-token").setAttribute("aria-controls", "create");
  $("new-token").setAttribute("aria-expanded", "false");
  $("create-form").addEventListener("submit", submitCreate);
  $("create-cancel").addEventListener("click", hideCreate);
  $("perm-filter").addEventListener("input", filterPermissions);
  $("perm-groups").addEventListener("change", updatePermissionCount);
  $("perm-all").addEventListener("change", (event) => {
    for (const box of visibleBoxes()) box.checked = event.currentTarget.checked;
    updatePermissionCount();
  });
  $("value-copy").addEventListener("click", async () => {
    const value = $("value-text").value;
    const ok = await copyText(value);
    $("value-copy-status").textContent = ok
      ? "Copied to the clipboard."
      : "Copying failed: select the value and copy it by hand.";
    if (!ok) $("value-text").select();
  });
  $("value-text").addEventListener("focus", (e) => e.currentTarget.select());
  $("value-dismiss").addEventListener("click", hideValue);
  $("confirm-form").addEventListener("submit", onConfirmSubmit);
  $("confirm-cancel").addEventListener("click", () => finishConfirm({ ok: false, grace: 0 }));
  $("confirm").addEventListener("close", () => finishConfirm({ ok: false, grace: 0 }));
}

async function start() {
  wire();
  renderPermissionPicker();
  const saved = storedToken();
  if (!saved) {
    showSignIn(null);
    document.body.dataset.ready = "true";
    return;
  }
  try {
    await signIn(saved);
  } catch (err) {
    signOut(err instanceof ApiError && err.status === 401 ? `Signed out: ${err.message}` : err.message);
  }
  document.body.dataset.ready = "true";
}

start();
