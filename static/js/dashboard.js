// @ts-check
// Dashboard ("My rooms"): the rooms the account owns or co-hosts (GET /api/me/rooms) with their
// photos, guests, approvals waiting and last activity, kept live; "Create a room" creates one
// owned by the account.
//
// Live: the page joins each listed open room's live feed (Socket.IO, the session cookie admits
// an owner or co-host to a passcode room) and, on any of its events, fetches the list again
// (debounced), so every count comes from the one listing the API answers. A 401 (the session
// was ended, here or elsewhere) shows the signed-out notice and leaves every feed.

import { api, ApiError, memory } from "./api.js";
import { h, startClock, timeAgo, formatDateTime, toast } from "./ui.js";

// One fetch for a burst of events (a guest sharing ten photos, a room full of phones joining).
const REFRESH_DEBOUNCE_MS = 300;
// At most this many rooms' feeds are joined (the newest): one connection each.
const MAX_WATCHED = 50;
const ROOM_EVENTS = ["image_added", "image_removed", "moderation_queue", "room_updated", "room_closed", "presence"];

const list = /** @type {HTMLUListElement} */ (document.getElementById("dashboard-list"));
const loading = /** @type {HTMLElement} */ (document.getElementById("rooms-loading"));
const empty = /** @type {HTMLElement} */ (document.getElementById("rooms-empty"));
const liveStatus = /** @type {HTMLElement} */ (document.getElementById("dashboard-live"));

/** @type {Map<string, {socket: any}>} token → its joined feed */
const feeds = new Map();
/** @type {Map<string, HTMLLIElement>} token → its row */
const rows = new Map();
let signedOut = false;

/**
 * @typedef {{token: string, code: string|null, title: string, role: "owner"|"cohost",
 *   created_at: string, expires_at: string, closed: boolean, photo_count: number,
 *   pending_count: number, participant_count: number, last_activity_at: string}} HostedRoom
 */

/** @param {HostedRoom} room */
function isEnded(room) {
  return Date.parse(room.expires_at) <= Date.now();
}

/**
 * A row's statistic: its label and value, the value found again by `data-stat` on updates.
 * @param {string} stat
 * @param {string} label
 */
function stat(stat, label) {
  return h(
    "div",
    { class: "dashboard-stat" },
    h("dt", {}, label),
    h("dd", { dataset: { stat, testid: `stat-${stat}` } }),
  );
}

/** @param {HostedRoom} room */
function newRow(room) {
  const hostUrl = `/r/${encodeURIComponent(room.token)}/host`;
  const titleId = `room-${room.token}-title`;
  return h(
    "li",
    { class: "card dashboard-room", dataset: { token: room.token, testid: "dashboard-room" }, "aria-labelledby": titleId },
    h(
      "div",
      { class: "dashboard-room-head" },
      h("h2", { class: "dashboard-room-title", id: titleId }, h("a", { href: hostUrl, dataset: { field: "title" } })),
      h("span", { class: "badge", dataset: { field: "role", testid: "room-role" } }),
      h("span", { class: "badge badge-muted", dataset: { field: "state" } }),
    ),
    h(
      "dl",
      { class: "dashboard-stats" },
      stat("photos", "Photos"),
      stat("guests", "Guests"),
      stat("pending", "Waiting for approval"),
      stat("activity", "Last activity"),
    ),
    h(
      "div",
      { class: "button-row" },
      h("a", { class: "btn btn-secondary btn-small", href: hostUrl, dataset: { testid: "room-host-link" } }, "Host page"),
      h(
        "a",
        { class: "btn btn-ghost btn-small", href: `/r/${encodeURIComponent(room.token)}/wall`, target: "_blank", rel: "noopener" },
        "Wall ",
        h("span", { class: "sr-only" }, "(opens in a new tab)"),
      ),
    ),
  );
}

/**
 * Write `room`'s current values into its row.
 * @param {HTMLLIElement} row
 * @param {HostedRoom} room
 */
function fillRow(row, room) {
  const field = (/** @type {string} */ name) => /** @type {HTMLElement} */ (row.querySelector(`[data-field="${name}"]`));
  const value = (/** @type {string} */ name) => /** @type {HTMLElement} */ (row.querySelector(`[data-stat="${name}"]`));
  field("title").textContent = room.title || "Untitled room";
  field("role").textContent = room.role === "owner" ? "Owner" : "Co-host";
  const state = isEnded(room) ? "Ended" : room.closed ? "Closed" : "";
  field("state").textContent = state;
  field("state").hidden = !state;
  value("photos").textContent = String(room.photo_count);
  value("guests").textContent = String(room.participant_count);
  value("pending").textContent = String(room.pending_count);
  const activity = value("activity");
  activity.replaceChildren(
    h("time", { datetime: room.last_activity_at, title: formatDateTime(room.last_activity_at) }, timeAgo(room.last_activity_at)),
  );
}

/** @param {HostedRoom[]} rooms newest first */
function render(rooms) {
  loading.hidden = true;
  empty.hidden = rooms.length > 0;
  const listed = new Set(rooms.map((room) => room.token));
  for (const [token, row] of rows) {
    if (!listed.has(token)) {
      row.remove();
      rows.delete(token);
    }
  }
  // Rows keep their elements (and any focus inside) across updates; only their order is set.
  rooms.forEach((room, index) => {
    let row = rows.get(room.token);
    if (!row) {
      row = newRow(room);
      rows.set(room.token, row);
    }
    fillRow(row, room);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
}

function showSignedOut() {
  signedOut = true;
  /** @type {HTMLElement} */ (document.getElementById("signed-out")).hidden = false;
  /** @type {HTMLButtonElement} */ (document.querySelector("#create-form button[type=submit]")).disabled = true;
  liveStatus.textContent = "";
  for (const token of [...feeds.keys()]) leave(token);
}

/** @param {string} token */
function leave(token) {
  const feed = feeds.get(token);
  if (!feed) return;
  feed.socket.disconnect();
  feeds.delete(token);
}

/** @param {string} token */
function join(token) {
  if (typeof window.io !== "function") return; // no live client: the list updates on reload
  const socket = window.io({
    path: "/socket.io",
    transports: ["websocket", "polling"],
    forceNew: true, // one connection per room: each joins its room by the token in its auth
    auth: { token, name: "Dashboard" },
  });
  socket.on("connect", () => {
    liveStatus.textContent = "Updating live";
    // Whatever happened while not connected is in the listing.
    scheduleRefresh();
  });
  socket.on("connect_error", () => {
    // The room ended or refused: stop; the next listing says what it is now.
    if (!socket.active) leave(token);
  });
  for (const name of ROOM_EVENTS) socket.on(name, scheduleRefresh);
  feeds.set(token, { socket });
}

/** @param {HostedRoom[]} rooms */
function watch(rooms) {
  const wanted = new Set(
    rooms.filter((room) => !isEnded(room)).slice(0, MAX_WATCHED).map((room) => room.token),
  );
  for (const token of [...feeds.keys()]) if (!wanted.has(token)) leave(token);
  for (const token of wanted) if (!feeds.has(token)) join(token);
}

async function refresh() {
  if (signedOut) return;
  try {
    const answer = await api("/api/me/rooms");
    render(answer.rooms);
    watch(answer.rooms);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showSignedOut();
    else toast(error.message, "error", 6000);
  }
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let refreshTimer;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh(), REFRESH_DEBOUNCE_MS);
}

// Back to the tab (a phone woken up): the feeds may have missed a sign-out elsewhere.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") scheduleRefresh();
});

// ---- Create a room -------------------------------------------------------------------------

const form = /** @type {HTMLFormElement} */ (document.getElementById("create-form"));
const titleInput = /** @type {HTMLInputElement} */ (document.getElementById("room-title"));
const createError = /** @type {HTMLElement} */ (document.getElementById("create-error"));
const createButton = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/** @param {string} message */
function showCreateError(message) {
  createError.textContent = message;
  createError.hidden = !message;
  titleInput.setAttribute("aria-invalid", message ? "true" : "false");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = titleInput.value.trim();
  if (!title) {
    showCreateError("Give your room a title, so guests know they're in the right place.");
    titleInput.focus();
    return;
  }
  showCreateError("");
  createButton.disabled = true;
  try {
    // With the session cookie the room belongs to the account; the host key is kept too, so
    // the host page reveals it once, as for a room made on the landing page.
    const room = await api("/api/rooms", { method: "POST", json: { title } });
    memory.setHostKey(room.token, room.host_key);
    memory.setKeyUnseen(room.token, true);
    memory.rememberHostedRoom(room);
    titleInput.value = "";
    toast(`"${room.title}" is ready.`, "success");
    await refresh();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) showSignedOut();
    else showCreateError(error.message);
    titleInput.focus();
  } finally {
    createButton.disabled = signedOut;
  }
});

startClock();
await refresh();
