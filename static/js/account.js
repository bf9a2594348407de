// @ts-check
// Account page: the account's sessions (device, last use; this one marked) from
// GET /api/me/sessions, each with "Sign out" (DELETE /api/me/sessions/{id}); "Sign out this
// device" (DELETE /api/session) and "Sign out everywhere" (DELETE /api/me/sessions).

import { api, ApiError } from "./api.js";
import { confirmDialog, formatDateTime, h, startClock, timeElement, toast } from "./ui.js";

const list = /** @type {HTMLUListElement} */ (document.getElementById("session-list"));
const loading = /** @type {HTMLElement} */ (document.getElementById("sessions-loading"));

/** The session ended elsewhere (or expired): say so instead of a list that no longer holds. */
function showSignedOut() {
  /** @type {HTMLElement} */ (document.getElementById("signed-out")).hidden = false;
  for (const id of ["sign-out", "sign-out-everywhere"]) {
    /** @type {HTMLButtonElement} */ (document.getElementById(id)).disabled = true;
  }
  list.replaceChildren();
  loading.hidden = true;
}

/**
 * Run an account call; a 401 shows the signed-out notice, other errors a toast.
 * @template T
 * @param {() => Promise<T>} call
 * @returns {Promise<T | undefined>}
 */
async function accountCall(call) {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showSignedOut();
    else toast(error.message, "error", 6000);
    return undefined;
  }
}

/**
 * One session's row.
 * @param {{id: number, device: string, created_at: string, last_used_at: string, current: boolean}} session
 */
function sessionItem(session) {
  const label = `${session.device}${session.current ? " (this device)" : ""}`;
  return h(
    "li",
    { class: "session-item", dataset: { testid: "session", current: session.current ? "true" : "false" } },
    h(
      "div",
      { class: "session-text" },
      h("span", { class: "session-device" }, label),
      h(
        "span",
        { class: "muted session-meta" },
        "Last used ",
        timeElement(session.last_used_at),
        ` · signed in ${formatDateTime(session.created_at)}`,
      ),
    ),
    h(
      "button",
      {
        class: "btn btn-ghost btn-small",
        type: "button",
        "aria-label": `Sign out ${label}`,
        onclick: () => endSession(session),
      },
      "Sign out",
    ),
  );
}

async function loadSessions() {
  const answer = await accountCall(() => api("/api/me/sessions"));
  if (!answer) return;
  loading.hidden = true;
  list.replaceChildren(...answer.sessions.map(sessionItem));
}

/** @param {{id: number, current: boolean}} session */
async function endSession(session) {
  const done = await accountCall(() => api(`/api/me/sessions/${session.id}`, { method: "DELETE" }));
  if (done === undefined) return;
  if (session.current) {
    window.location.assign("/signin");
    return;
  }
  toast("That device is signed out.", "success");
  await loadSessions();
}

/** @type {HTMLButtonElement} */ (document.getElementById("sign-out")).addEventListener("click", async () => {
  const done = await accountCall(() => api("/api/session", { method: "DELETE" }));
  if (done !== undefined) window.location.assign("/");
});

/** @type {HTMLButtonElement} */ (document.getElementById("sign-out-everywhere")).addEventListener("click", async () => {
  const ok = await confirmDialog({
    title: "Sign out everywhere?",
    body: "Every device signed in to this account is signed out, this one too.",
    confirmLabel: "Sign out everywhere",
    danger: true,
  });
  if (!ok) return;
  const done = await accountCall(() => api("/api/me/sessions", { method: "DELETE" }));
  if (done !== undefined) window.location.assign("/signin");
});

startClock();
await loadSessions();
