// @ts-check
// Small DOM helpers shared by the pages: element builder, toasts, copy, confirm dialog,
// relative times, and the live-connection indicator.

/**
 * Create an element. `props`: attributes (strings), `class`, `text`, `dataset`, and `on*`
 * functions as event listeners. Children: nodes or strings; null/false are skipped.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...any} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// ---- Toasts ---------------------------------------------------------------------------------

function toastRegion() {
  /** @type {HTMLElement|null} */
  let region = document.getElementById("toasts");
  if (!region) {
    region = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  return region;
}

/** Show a short message at the bottom of the screen. kind: "info" | "success" | "error". */
export function toast(message, kind = "info", ms = 3500) {
  const item = h("div", { class: `toast toast-${kind}` }, message);
  toastRegion().append(item);
  requestAnimationFrame(() => item.classList.add("show"));
  setTimeout(() => {
    item.classList.remove("show");
    setTimeout(() => item.remove(), 300);
  }, ms);
}

// ---- Clipboard ------------------------------------------------------------------------------

/** Copy text to the clipboard; resolves true on success. Works on plain-HTTP LAN hosts too. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused: fall through to the selection trick.
    }
  }
  const area = h("textarea", { class: "sr-only", readonly: true, "aria-hidden": "true" });
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

/** Wire a button to copy `getText()` and confirm on the button itself. */
export function bindCopyButton(button, getText, doneLabel = "Copied!") {
  const label = button.querySelector(".btn-label") || button;
  const original = label.textContent;
  button.addEventListener("click", async () => {
    const text = getText();
    if (!text) return;
    if (await copyText(text)) {
      label.textContent = doneLabel;
      button.classList.add("is-done");
      setTimeout(() => {
        label.textContent = original;
        button.classList.remove("is-done");
      }, 1800);
    } else {
      toast("Couldn't copy automatically. Select the text and copy it by hand.", "error");
    }
  });
}

// ---- Confirm dialog -------------------------------------------------------------------------

/**
 * Ask a yes/no question in a modal dialog; resolves true when confirmed. With `danger`, focus
 * starts on Cancel (Enter cancels); otherwise on the confirm button.
 */
export function confirmDialog({ title, body, confirmLabel = "OK", danger = false }) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", class: "btn btn-ghost", value: "cancel" }, "Cancel");
    const confirm = h(
      "button",
      {
        type: "button",
        class: danger ? "btn btn-danger" : "btn btn-primary",
        "data-testid": "confirm-button",
      },
      confirmLabel,
    );
    const heading = h("h2", { id: "confirm-title", class: "dialog-title" }, title);
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "confirm-title", "data-testid": "confirm-dialog" },
      h("div", { class: "dialog-body" }, heading, body ? h("p", {}, body) : null),
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    let answer = false;
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    // A destructive question starts on Cancel, so Enter (or a double press) never confirms it.
    (danger ? cancel : confirm).focus();
  });
}

// ---- Times and sizes ------------------------------------------------------------------------

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "just now", "3 minutes ago", "yesterday"… for an ISO 8601 time. */
export function timeAgo(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - Date.now()) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  /** @type {[number, Intl.RelativeTimeFormatUnit][]} */
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [7, "day"],
    [4.35, "week"],
    [12, "month"],
    [Infinity, "year"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return "";
}

/** A <time> element that keeps its relative text fresh (see startClock). */
export function timeElement(iso, className = "time") {
  const element = h("time", { class: className, datetime: iso, title: formatDateTime(iso) });
  element.textContent = timeAgo(iso);
  return element;
}

/** Refresh every <time datetime> produced by timeElement, twice a minute. */
export function startClock() {
  setInterval(() => {
    for (const element of document.querySelectorAll("time[datetime]")) {
      if (!(element instanceof HTMLElement)) continue;
      if (element.dataset.static !== undefined) continue;
      element.textContent = timeAgo(element.getAttribute("datetime"));
    }
  }, 30_000);
}

export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

// ---- Live indicator -------------------------------------------------------------------------

const STATUS_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  offline: "Reconnecting…",
  error: "Offline",
};

/** Keep a `.live-pill` element in step with a RoomFeed's "status" events. */
export function bindLiveIndicator(element, feed) {
  if (!element) return;
  const label = element.querySelector(".live-label") || element;
  const render = (state, message) => {
    element.dataset.state = state;
    label.textContent = STATUS_TEXT[state] || state;
    element.title = message || "";
  };
  render("connecting");
  feed.addEventListener("status", (event) => render(event.detail.state, event.detail.message));
}

/** Keep an element's text at "N people here" from a RoomFeed's "presence" events. */
export function bindPresence(element, feed, format = presenceText) {
  if (!element) return;
  feed.addEventListener("presence", (event) => {
    element.textContent = format(event.detail.count);
    element.hidden = false;
  });
}

export function presenceText(count) {
  return count === 1 ? "1 person here" : `${count} people here`;
}
