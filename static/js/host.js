// @ts-check
// Host page: QR code and join link; the host key (shown once, pasted, or passed in the URL
// fragment), or without one the session of the room's owner or a co-host (the cookie, no key
// asked; a co-host sees only what its role may do); with either, the room's controls (host-settings.js), the approval queue
// (host-queue.js), closing the room and downloading every photo; the live photo grid with
// delete buttons.

import { api, ApiError, memory, readRoomData, roomApi } from "./api.js";
import { downloadUrl, Gallery, Lightbox } from "./gallery.js";
import { ApprovalQueue } from "./host-queue.js";
import { RoomControls } from "./host-settings.js";
import { RoomFeed } from "./live.js";
import { mergeRoom, roomSettings } from "./room-settings.js";
import {
  bindCopyButton,
  copyText,
  bindLiveIndicator,
  bindPresence,
  confirmDialog,
  formatDateTime,
  h,
  startClock,
  toast,
} from "./ui.js";

const room = readRoomData();
const token = room.token;
/**
 * An element of this page's template (it renders every id looked up here).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const KEY_ERRORS = new Set(["host_key_required", "wrong_host_key"]);

// ---- Host key ------------------------------------------------------------------------------

let hostKey = null; // set once the server accepted it
/** @type {"owner" | "cohost" | null} the viewer's role once the key or the session was accepted */
let role = null;
const signedIn = $("key-panel").dataset.signedIn === "true";

/** Whether the viewer manages the room (by its host key, or as one of its hosts' session). */
const isHost = () => role !== null;

// A host link (…/host#key=…) carries the key to another device: keep it, drop it from the URL.
function takeKeyFromFragment() {
  const key = new URLSearchParams(window.location.hash.slice(1)).get("key");
  if (!key) return false;
  memory.setHostKey(token, key.trim());
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return true;
}
takeKeyFromFragment();
// The host link pasted into a tab already on this page changes only the fragment.
window.addEventListener("hashchange", () => {
  if (takeKeyFromFragment()) initKey();
});

const keyStates = ["key-ok", "key-checking", "key-missing", "key-session"];
function showKeyState(id) {
  for (const state of keyStates) $(state).hidden = state !== id;
}

function hostLink() {
  const key = hostKey || memory.hostKey(token);
  return key ? `${room.host_url}#key=${encodeURIComponent(key)}` : "";
}

function hostHeaders() {
  return hostKey ? { Authorization: `Bearer ${hostKey}` } : {};
}

/** Check a key against the room: {ok, view?, message?}. */
/**
 * Ask the server whether `key` is this room's host key.
 * @param {string} key
 * @returns {Promise<{ok: true, view: any} | {ok: false, message: string}>} ok with the host view
 *   (null when the server could not tell: offline or busy), or why the key was refused
 */
async function verifyKey(key) {
  try {
    const view = await api(roomApi(token, "/host"), { headers: { Authorization: `Bearer ${key}` } });
    return { ok: true, view };
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      return { ok: false, message: error.message };
    }
    // Offline or server trouble: trust the stored key for now; the next call will tell.
    return { ok: true, view: null };
  }
}

function setHostOnly(visible) {
  for (const element of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-host-only]"))) {
    element.hidden = !visible;
  }
  // After the host-only pass: an element may be both.
  for (const element of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-owner-only]"))) {
    if (role !== "owner") element.hidden = true;
  }
}

/**
 * The host view through the session cookie alone (no Authorization header).
 * @returns {Promise<any>} the host view, or null when the session does not admit this viewer
 */
async function sessionView() {
  if (!signedIn) return null;
  try {
    return await api(roomApi(token, "/host"));
  } catch {
    return null;
  }
}

/** Manage the room through the session of one of its hosts (`view.role`). */
function acceptSession(view) {
  hostKey = null;
  role = view.role;
  gallery.refreshPermissions();
  $("key-session-text").textContent =
    role === "owner"
      ? "This room belongs to your account: you manage it here without the host key, on any device you sign in on."
      : "You co-host this room through your account: you can approve and remove photos and set up the wall. The owner manages the rest.";
  showKeyState("key-session");
  setHostOnly(true);
  controls.render(view);
  queue.refresh().catch((error) => toast(error.message, "error", 6000));
}

/** Offer "Claim this room" when signed in, holding the key, and the room has no owner. */
function showClaim(view) {
  $("claim").hidden = !(signedIn && hostKey && view && view.owned === false);
}

$("claim-room").addEventListener("click", async () => {
  const button = /** @type {HTMLButtonElement} */ ($("claim-room"));
  button.disabled = true;
  try {
    await hostApi("/claim", { method: "POST" });
    $("claim").hidden = true;
    toast("The room is now in your account: find it under My rooms.", "success", 6000);
  } catch (error) {
    toast(error.message, "error", 6000);
  } finally {
    button.disabled = false;
  }
});

function acceptKey(key, view) {
  hostKey = key;
  role = view && view.role === "cohost" ? "cohost" : "owner";
  memory.setHostKey(token, key);
  memory.rememberHostedRoom(room);
  gallery.refreshPermissions();
  showKeyState("key-ok");
  setHostOnly(true);
  controls.render(view || roomSettings(room));
  showClaim(view);
  queue.refresh().catch((error) => toast(error.message, "error", 6000));
  if (memory.keyUnseen(token)) {
    $("host-key").textContent = key;
    $("key-reveal").hidden = false;
    // Shown once: a reload will not show it again (the host link still carries it).
    memory.setKeyUnseen(token, false);
  }
}

function askForKey(message) {
  hostKey = null;
  role = null;
  $("key-reveal").hidden = true;
  setHostOnly(false);
  $("queue").hidden = true;
  gallery.refreshPermissions();
  if (message) $("key-missing-text").textContent = message;
  showKeyState("key-missing");
}

async function initKey() {
  const stored = memory.hostKey(token);
  showKeyState("key-checking");
  if (!stored) {
    const view = await sessionView();
    if (view) acceptSession(view);
    else askForKey();
    return;
  }
  const result = await verifyKey(stored);
  if (result.ok) {
    acceptKey(stored, result.view);
  } else {
    memory.setHostKey(token, null);
    const view = await sessionView();
    if (view) acceptSession(view);
    else askForKey(`The host key saved in this browser doesn't work for this room (${result.message}). Paste the right key to manage the room.`);
  }
}

$("key-missing").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("key-input"));
  const error = $("key-error");
  const key = input.value.trim();
  error.hidden = true;
  if (!key) {
    error.textContent = "Paste the host key you saved when the room was created.";
    error.hidden = false;
    input.focus();
    return;
  }
  const result = await verifyKey(key);
  if (result.ok) {
    input.value = "";
    acceptKey(key, result.view);
    feed.sync().catch(() => {});
    toast("Host key accepted. You can now manage this room.", "success");
  } else {
    error.textContent = result.message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
});

$("key-saved").addEventListener("click", () => {
  $("key-reveal").hidden = true;
  $("host-key").textContent = "";
  $("copy-host-link").focus();
});
bindCopyButton(/** @type {HTMLButtonElement} */ ($("copy-key")), () => hostKey || "");
bindCopyButton(/** @type {HTMLButtonElement} */ ($("copy-host-link")), hostLink, "Host link copied");
bindCopyButton(/** @type {HTMLButtonElement} */ ($("copy-host-link-banner")), hostLink, "Host link copied");
bindCopyButton(/** @type {HTMLButtonElement} */ ($("copy-join")), () => room.join_url);
// For a separate projector PC: the wall's absolute link, with "Copied" shown beside the button.
/** @type {ReturnType<typeof setTimeout> | undefined} */
let copyWallStatusTimer;
$("copy-wall-link").addEventListener("click", async () => {
  const status = $("copy-wall-status");
  const link = new URL($("wall-link").getAttribute("href") || "", location.href).href;
  if (await copyText(link)) {
    status.textContent = "Copied: paste it into the projector PC's browser.";
    clearTimeout(copyWallStatusTimer);
    copyWallStatusTimer = setTimeout(() => (status.textContent = ""), 5000);
  } else {
    toast("Couldn't copy automatically. Select the text and copy it by hand.", "error");
  }
});
bindCopyButton(/** @type {HTMLButtonElement} */ ($("copy-passcode")), () => (controls.state && controls.state.passcode) || "");

/**
 * Call the room's API as the host. `path` is relative to the room ("/close", "/pending"…).
 * A refused key sends the page back to asking for one.
 */
async function hostApi(path, options = {}) {
  try {
    return await api(roomApi(token, path), { ...options, headers: { ...(options.headers || {}), ...hostHeaders() } });
  } catch (error) {
    if (error instanceof ApiError && KEY_ERRORS.has(error.code)) {
      if (hostKey) {
        memory.setHostKey(token, null);
        askForKey(`Your host key was not accepted (${error.message}). Paste the right key to manage the room.`);
      } else {
        askForKey("You're no longer signed in. Sign in again, or paste the host key, to manage the room.");
      }
    }
    throw error;
  }
}

// ---- Settings, queue -----------------------------------------------------------------------

let pendingCount = 0;
function updateTitle() {
  const title = (controls.state && controls.state.title) || room.title;
  document.title = `${pendingCount ? `(${pendingCount}) ` : ""}Host · ${title} · ImageShark`;
}

async function reloadHostView() {
  if (!isHost()) return;
  controls.render(await hostApi("/host"));
}

const controls = new RoomControls({
  patch: (changes) => hostApi("", { method: "PATCH", json: changes }),
  reload: reloadHostView,
  onRender: (state) => {
    queue.setModerated(state.moderation === "approve");
    updateTitle();
  },
});

const queue = new ApprovalQueue({
  token,
  hostApi,
  headers: hostHeaders,
  onApproved: (image) => feed.add(image),
  onCount: (count) => {
    pendingCount = count;
    updateTitle();
  },
});

// ---- Photos --------------------------------------------------------------------------------

const feed = new RoomFeed({
  token,
  name: "Host",
  lastSeq: room.last_seq,
  credentials: () => ({ hostKey }),
});
bindLiveIndicator($("live"), feed);
bindPresence($("presence"), feed);

// Settings changed in another tab (public view: the passcode and counts come from /host).
/** @type {ReturnType<typeof setTimeout> | undefined} */
let reloadTimer;
feed.addEventListener("room", (event) => {
  if (!isHost() || !controls.state) {
    $("room-title").textContent = event.detail.room.title || room.title;
    return;
  }
  controls.render(mergeRoom(controls.state, event.detail.room));
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => reloadHostView().catch(() => {}), 150);
});
feed.addEventListener("closed", (event) => {
  if (controls.state) controls.render(mergeRoom(controls.state, { closed: true, closed_at: event.detail.closed_at }));
});
// Removed as a co-host (the live side says so, then disconnects): hide every control at once.
feed.addEventListener("hostrevoked", () => {
  setHostOnly(false);
  $("queue").hidden = true;
  $("key-reveal").hidden = true;
  gallery.refreshPermissions();
  toast("You are no longer a host of this room: its owner removed you as a co-host.", "error", 15000);
});
feed.addEventListener("queue", () => {
  if (isHost()) queue.refresh().catch(() => {});
});
// Approved (here, in another tab) or deleted: no longer waiting.
feed.addEventListener("add", (event) => queue.drop(event.detail.image.id));
feed.addEventListener("remove", (event) => queue.drop(event.detail.id));

async function deleteImage(image) {
  const ok = await confirmDialog({
    title: "Delete this photo?",
    body: "It disappears from the wall and from every guest's screen. This can't be undone.",
    confirmLabel: "Delete photo",
    danger: true,
  });
  if (!ok) return;
  try {
    await hostApi(`/images/${image.id}`, { method: "DELETE" });
    feed.remove(image.id);
    toast("Photo deleted.", "success");
  } catch (error) {
    if (error.status === 404) {
      feed.remove(image.id); // Already gone.
      return;
    }
    toast(error.message, "error", 6000);
  }
}

const lightbox = new Lightbox(feed, { canDelete: isHost, onDelete: deleteImage });

// The viewer's "Download full quality" link. A plain link cannot send the host key, and in a
// room with a passcode this browser has no participant cookie, so with the key each click (or
// Enter) asks for a presigned link and downloads from that. Links last 10 minutes: none is kept.
let preparingDownload = false;
lightbox.download.addEventListener("click", async (event) => {
  const image = lightbox.current;
  // A co-host may not make download links: the plain link, which works in an open room.
  if (role !== "owner" || !image) return;
  event.preventDefault();
  if (preparingDownload) return;
  preparingDownload = true;
  const link = lightbox.download;
  link.setAttribute("aria-busy", "true");
  link.textContent = "Preparing…";
  try {
    const signed = await hostApi("/links", { method: "POST", json: { path: downloadUrl(token, image) } });
    // Next to the link, inside the viewer: a modal dialog makes the rest of the page inert.
    const anchor = h("a", { href: signed.url, download: "", hidden: true });
    link.after(anchor);
    anchor.click();
    anchor.remove();
  } catch (error) {
    toast(error.message, "error", 6000);
  } finally {
    preparingDownload = false;
    link.removeAttribute("aria-busy");
    link.textContent = "Download full quality";
  }
});
const gallery = new Gallery(/** @type {HTMLUListElement} */ ($("gallery")), feed, {
  canDelete: isHost,
  onDelete: deleteImage,
  onOpen: (image) => lightbox.open(image),
  empty: $("empty"),
});

function updateCount() {
  const count = feed.images.size;
  $("photo-count").textContent = count ? String(count) : "";
}
feed.addEventListener("add", updateCount);
feed.addEventListener("remove", updateCount);
feed.addEventListener("ready", () => {
  $("loading").hidden = true;
});
feed.addEventListener("loaderror", (event) => {
  toast(event.detail.error.message, "error", 8000);
});

// ---- Room actions --------------------------------------------------------------------------

$("download-all").addEventListener("click", async () => {
  const button = /** @type {HTMLButtonElement} */ ($("download-all"));
  const label = /** @type {HTMLElement} */ (button.querySelector(".btn-label"));
  button.disabled = true;
  label.textContent = "Preparing…";
  try {
    // A short-lived link that needs no header, so the browser saves the ZIP straight to disk.
    const link = await hostApi("/links", { method: "POST", json: { path: roomApi(token, "/archive.zip") } });
    const anchor = h("a", { href: link.url, download: "", hidden: true });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    toast("Your download has started: every photo as your guests sent it, with its capture time and without its location unless you kept it, in one ZIP file.", "success");
  } catch (error) {
    toast(error.message, "error", 6000);
  } finally {
    button.disabled = false;
    label.textContent = "Download all";
  }
});

$("close-room").addEventListener("click", async () => {
  const ok = await confirmDialog({
    title: "Close this room?",
    body:
      "Nobody can join or share photos any more. Guests and the wall keep seeing the photos until " +
      `the room expires (${formatDateTime((controls.state || room).expires_at)}). This can't be undone.`,
    confirmLabel: "Close room for good",
    danger: true,
  });
  if (!ok) {
    $("close-room").focus();
    return;
  }
  try {
    controls.render(await hostApi("/close", { method: "POST" }));
    toast("The room is closed.", "success");
    $("download-all").focus();
  } catch (error) {
    if (error instanceof ApiError && error.code === "room_closed") {
      await reloadHostView().catch(() => {});
      return;
    }
    toast(error.message, "error", 6000);
  }
});

$("expires").textContent = formatDateTime(room.expires_at);
startClock();
await initKey();
feed.start();
