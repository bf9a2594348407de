// @ts-check
// Instance admin page (web/templates/admin.html): signing in, closing and deleting rooms,
// disabling and enabling accounts, sign-up invites, sorting the room table by size or last
// activity. The tables are rendered by the server; this only acts on them.

import { api, ApiError } from "./api.js";
import { confirmDialog, formatDateTime, toast } from "./ui.js";

/**
 * @param {unknown} error
 * @returns {string} what to tell the admin
 */
function messageOf(error) {
  return error instanceof ApiError ? error.message : "Something went wrong.";
}

// ---- Signing in ----------------------------------------------------------------------------

const signInForm = /** @type {HTMLFormElement | null} */ (document.getElementById("sign-in-form"));
if (signInForm) {
  const errorLine = /** @type {HTMLElement} */ (document.getElementById("sign-in-error"));
  signInForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(signInForm);
    errorLine.hidden = true;
    try {
      await api("/api/session", {
        method: "POST",
        json: { email: String(data.get("email") || ""), password: String(data.get("password") || "") },
      });
      window.location.reload();
    } catch (error) {
      errorLine.textContent = messageOf(error);
      errorLine.hidden = false;
    }
  });
}

// ---- Rooms ---------------------------------------------------------------------------------

for (const time of document.querySelectorAll("#rooms-table time[datetime]")) {
  time.textContent = formatDateTime(time.getAttribute("datetime") || "");
}

/**
 * Close or delete the room of `row`, after asking.
 * @param {HTMLTableRowElement} row
 * @param {"close" | "delete"} action
 */
async function actOnRoom(row, action) {
  const token = row.dataset.token || "";
  const title = row.querySelector("th")?.textContent?.trim() || token;
  const confirmed = await confirmDialog(
    action === "close"
      ? {
          title: `Close “${title}”?`,
          body: "Nobody can join it or share photos any more; its host cannot reopen it.",
          confirmLabel: "Close room",
          danger: true,
        }
      : {
          title: `Delete “${title}”?`,
          body: "The room, its photos and their files are removed for good. Its guests' pages show it closed.",
          confirmLabel: "Delete room",
          danger: true,
        },
  );
  if (!confirmed) return;
  const path = `/api/admin/rooms/${encodeURIComponent(token)}`;
  try {
    if (action === "close") {
      await api(`${path}/close`, { method: "POST" });
      const state = row.querySelector('[data-testid="room-state"]');
      if (state) state.textContent = "closed";
      row.querySelector('[data-action="close"]')?.remove();
      toast(`“${title}” is closed.`, "success");
    } else {
      await api(path, { method: "DELETE" });
      row.remove();
      toast(`“${title}” is deleted.`, "success");
    }
  } catch (error) {
    toast(messageOf(error), "error");
  }
}

const roomsTable = document.getElementById("rooms-table");
roomsTable?.addEventListener("click", (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest("button[data-action]");
  const row = button?.closest("tr");
  const action = button?.getAttribute("data-action");
  if (row && (action === "close" || action === "delete")) actOnRoom(row, action);
});

/**
 * Sort the room rows by `key`, flipping the direction on each press (largest first first).
 * @param {HTMLTableElement} table
 * @param {"bytes" | "activity"} key
 */
function sortRooms(table, key) {
  const header = /** @type {HTMLElement} */ (table.querySelector(`th[data-sort-key="${key}"]`));
  const descending = header.getAttribute("aria-sort") !== "descending";
  for (const other of table.querySelectorAll("th[data-sort-key]")) other.setAttribute("aria-sort", "none");
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  /** @param {HTMLTableRowElement} row */
  const value = (row) =>
    key === "bytes" ? Number(row.dataset.bytes || 0) : Date.parse(row.dataset.activity || "") || 0;
  const body = /** @type {HTMLTableSectionElement} */ (table.tBodies[0]);
  const rows = [...body.querySelectorAll("tr[data-token]")].map((row) => /** @type {HTMLTableRowElement} */ (row));
  rows.sort((a, b) => (descending ? value(b) - value(a) : value(a) - value(b)));
  body.append(...rows);
}

roomsTable?.addEventListener("click", (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest("button[data-sort]");
  const key = button?.getAttribute("data-sort");
  if (key === "bytes" || key === "activity") sortRooms(/** @type {HTMLTableElement} */ (roomsTable), key);
});

// ---- Accounts ------------------------------------------------------------------------------

/**
 * Disable or enable the account of `row` (disabling asks first: it signs the account out).
 * @param {HTMLTableRowElement} row
 * @param {HTMLButtonElement} button
 * @param {"disable" | "enable"} action
 */
async function actOnAccount(row, button, action) {
  const email = row.querySelector("th")?.textContent?.trim() || "";
  if (
    action === "disable" &&
    !(await confirmDialog({
      title: `Disable ${email}?`,
      body: "It is signed out everywhere at once and cannot sign in until enabled again. Its rooms stay.",
      confirmLabel: "Disable account",
      danger: true,
    }))
  )
    return;
  try {
    await api(`/api/admin/accounts/${row.dataset.accountId}/${action}`, { method: "POST" });
  } catch (error) {
    toast(messageOf(error), "error");
    return;
  }
  const disabled = action === "disable";
  const status = row.querySelector('[data-testid="account-status"]');
  if (status) status.textContent = disabled ? "disabled" : "active";
  button.dataset.action = disabled ? "enable" : "disable";
  button.textContent = disabled ? "Enable" : "Disable";
  button.setAttribute("aria-label", `${disabled ? "Enable" : "Disable"} ${email}`);
  toast(`${email} is ${disabled ? "disabled" : "enabled"}.`, "success");
}

document.getElementById("accounts-table")?.addEventListener("click", (event) => {
  const button = /** @type {HTMLButtonElement | null} */ (
    /** @type {HTMLElement} */ (event.target).closest("button[data-action]")
  );
  const row = button?.closest("tr");
  const action = button?.dataset.action;
  if (button && row && (action === "disable" || action === "enable")) actOnAccount(row, button, action);
});

const inviteButton = document.getElementById("new-invite");
inviteButton?.addEventListener("click", async () => {
  const output = /** @type {HTMLElement} */ (document.getElementById("invite-output"));
  try {
    /** @type {{invite: string, expires_at: string}} */
    const created = await api("/api/admin/signup-invites", { method: "POST" });
    output.textContent = `Invite (single use, until ${formatDateTime(created.expires_at)}): ${created.invite}`;
  } catch (error) {
    toast(messageOf(error), "error");
  }
});
