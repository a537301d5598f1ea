// Webhooks and per-token usage for the console. Everything the server returns is put in the
// page with textContent; the usage chart is plain elements built with DOM calls.

const USAGE_DAYS = 30;
const EVENT_TYPES = [
  "api_token.created",
  "api_token.updated",
  "api_token.rotated",
  "api_token.deleted",
  "api_token.leaked",
  "api_token.rotated_value_used",
  "api_token.expiring",
  "api_token.expired",
];

/**
 * Wire the webhooks section and the usage panel.
 * ``deps``: { api, el, $, guarded, timeCell, tokenPath }.
 * Returns { loadWebhooks, showUsage, reset }.
 */
export function setupLifecycle(deps) {
  const { api, el, $, guarded, timeCell, tokenPath } = deps;

  // ------------------------------------------------------------ usage chart

  async function showUsage(token, button) {
    await guarded(async () => {
      const page = await api("GET", `${tokenPath(token.id)}/usage`, { query: { days: USAGE_DAYS } });
      const days = Array.isArray(page?.results) ? page.results : [];
      $("usage-title").textContent = `Usage of ${token.name}`;
      const total = days.reduce((sum, day) => sum + day.requests, 0);
      $("usage-summary").textContent =
        `${total} successful request${total === 1 ? "" : "s"} in the last ${days.length} days (UTC).`;
      $("usage-chart").replaceChildren(usageChart(days));
      $("usage-panel").hidden = false;
      $("usage-panel").scrollIntoView({ block: "nearest" });
    }, button);
  }

  function usageChart(days) {
    // Bars are divs sized through the CSSOM (element.style), which the CSP allows; a
    // style attribute in markup would be refused.
    const most = Math.max(1, ...days.map((day) => day.requests));
    const bars = el("div", { class: "usage-bars", role: "img", "aria-label": "Requests per day" });
    for (const day of days) {
      const bar = el("div", {
        class: "usage-bar",
        title: `${day.date}: ${day.requests}`,
        "data-date": day.date,
        "data-requests": String(day.requests),
      });
      bar.style.height = `${Math.round((day.requests / most) * 100)}%`;
      bars.append(el("div", { class: "usage-slot" }, bar));
    }
    const first = days[0]?.date ?? "";
    const last = days[days.length - 1]?.date ?? "";
    const axis = el("div", { class: "usage-axis muted small" }, el("span", { text: first }), el("span", { text: last }));
    return el("div", {}, bars, axis);
  }

  // ------------------------------------------------------------ webhooks

  async function loadWebhooks() {
    let page;
    try {
      page = await api("GET", "webhooks", { query: { limit: 100 } });
    } catch (err) {
      $("webhooks").hidden = true; // e.g. a token without read permission
      return;
    }
    $("webhooks").hidden = false;
    const hooks = Array.isArray(page?.results) ? page.results : [];
    const rows = hooks.map((hook) =>
      el(
        "tr",
        { "data-webhook-id": hook.id },
        el("th", { scope: "row" }, el("code", { text: hook.url }), el("div", { class: "muted mono small", text: hook.id })),
        el("td", { text: hook.events.length === EVENT_TYPES.length ? "all events" : hook.events.join(", ") }),
        el("td", { text: hook.description || "" }),
        el("td", {}, timeCell(hook.createdAt, "—")),
        el(
          "td",
          { class: "row-actions" },
          el("button", {
            type: "button",
            class: "button small",
            "aria-label": `Deliveries of ${hook.url}`,
            text: "Deliveries",
            onclick: (e) => showDeliveries(hook, e.currentTarget),
          }),
          el("button", {
            type: "button",
            class: "button small danger",
            "aria-label": `Delete webhook ${hook.url}`,
            text: "Delete",
            onclick: (e) => deleteWebhook(hook, e.currentTarget),
          }),
        ),
      ),
    );
    $("webhooks-body").replaceChildren(...rows);
    $("webhooks-empty").hidden = hooks.length > 0;
  }

  async function showDeliveries(hook, button) {
    await guarded(async () => {
      const page = await api("GET", `webhooks/${encodeURIComponent(hook.id)}/deliveries`, {
        query: { limit: 50 },
      });
      const items = Array.isArray(page?.results) ? page.results : [];
      const rows = items.map((item) =>
        el(
          "tr",
          { "data-delivery-id": item.id },
          el("td", {}, el("code", { text: item.event })),
          el("td", {}, el("span", { class: `badge status-${item.status}`, text: item.status })),
          el("td", { text: String(item.attempts) }),
          el("td", { text: item.lastStatusCode === null ? "—" : String(item.lastStatusCode) }),
          el("td", {}, timeCell(item.nextAttemptAt, "—")),
          el("td", {}, timeCell(item.deliveredAt, "—")),
        ),
      );
      $("deliveries-title").textContent = `Deliveries to ${hook.url}`;
      $("deliveries-body").replaceChildren(...rows);
      $("deliveries-empty").hidden = items.length > 0;
      $("deliveries").hidden = false;
    }, button);
  }

  async function deleteWebhook(hook, button) {
    await guarded(async () => {
      await api("DELETE", `webhooks/${encodeURIComponent(hook.id)}`);
      $("deliveries").hidden = true;
      await loadWebhooks();
    }, button);
  }

  async function createWebhook(event) {
    event.preventDefault();
    const url = $("webhook-url").value.trim();
    const description = $("webhook-description").value.trim();
    const error = $("webhook-error");
    if (!url) {
      error.textContent = "Enter the URL that should receive the events.";
      error.hidden = false;
      return;
    }
    error.hidden = true;
    const button = $("webhook-submit");
    button.disabled = true;
    try {
      const hook = await api("POST", "webhooks", { body: { url, description } });
      $("webhook-secret").value = hook.secret;
      $("webhook-secret-panel").hidden = false;
      $("webhook-form").reset();
      await loadWebhooks();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function reset() {
    $("webhook-secret").value = "";
    $("webhook-secret-panel").hidden = true;
    $("webhooks-body").replaceChildren();
    $("deliveries").hidden = true;
    $("usage-panel").hidden = true;
  }

  $("webhook-form").addEventListener("submit", createWebhook);
  $("webhook-secret-dismiss").addEventListener("click", () => {
    $("webhook-secret").value = "";
    $("webhook-secret-panel").hidden = true;
  });
  $("usage-close").addEventListener("click", () => ($("usage-panel").hidden = true));
  $("deliveries-close").addEventListener("click", () => ($("deliveries").hidden = true));

  return { loadWebhooks, showUsage, reset };
}
