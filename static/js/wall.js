// @ts-check
// The wall, for a projector. The host's settings drive it live (room_updated): the newest
// photo large with a strip of recent ones ("spotlight") or a page of tiles ("grid"); the QR
// code off or small to large; captions on or off; "blanked" shows nothing but the title on
// black. When nothing new arrives for a while (`?cycle=<seconds>`, default 10) the spotlight
// walks through the room's photos and the grid pages through them; a new photo always comes
// first: new photos queue for the spotlight, each large for at least the room's
// `wall_min_seconds` (`?min_seconds=` overrides it, `?queue_cap=` the queue's cap). A passcode room needs the host key (kept by this browser when it created
// the room) or the passcode, asked for here; under its QR code it shows the passcode when the
// host allows it, else that one is needed (wall-passcode.js). Every `wall_intermission_minutes`
// (0: off) the QR code fills the screen for `wall_intermission_seconds` with the code to type
// beside it (wall-intermission.js; `?intermission_every=` and `?intermission_seconds=` override
// the period and the duration in seconds, for a room that has it on).

import { api, ApiError, memory, readRoomData, roomApi } from "./api.js";
import { RoomFeed } from "./live.js";
import { WALL_WRONG_PASSCODE } from "./messages.js";
import { mergeRoom, roomSettings, secondsParam } from "./room-settings.js";
import { bindLiveIndicator, timeAgo } from "./ui.js";
import { Intermission } from "./wall-intermission.js";
import { Mosaic } from "./wall-mosaic.js";
import { renderPasscode, WallPasscode } from "./wall-passcode.js";
import { DEFAULT_QUEUE_CAP, Spotlight } from "./wall-spotlight.js";

const DEFAULT_CYCLE_SECONDS = 10;
const WALL_NAME = "Wall";

const room = readRoomData();
const token = room.token;
/**
 * An element of this page's template (it renders every id looked up here).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const wall = $("wall");
const overlay = $("wall-intermission");

let state = roomSettings(room);
let hostKey = memory.hostKey(token); // dropped if the room refuses it (then the passcode is asked)

const feed = new RoomFeed({
  token,
  name: WALL_NAME,
  lastSeq: room.last_seq,
  // The host key only where it is needed: a public room's wall needs no secret.
  credentials: () => (state.passcode_required && hostKey ? { hostKey } : {}),
});
bindLiveIndicator($("live"), feed);

const minSecondsOverride = secondsParam("min_seconds", null);
const wallMinSeconds = () => minSecondsOverride ?? state.wall_min_seconds;
const spotlight = new Spotlight({
  figure: $("spotlight"),
  strip: /** @type {HTMLOListElement} */ ($("strip")),
  feed,
  minSeconds: wallMinSeconds(),
  queueCap: Math.round(secondsParam("queue_cap", DEFAULT_QUEUE_CAP)),
  onDrained: () => {
    cycle.poke(); // The last queued photo had its turn: a full wait, then cycle.
    intermission.poke(); // One that fell due meanwhile may start now.
  },
});
const mosaic = new Mosaic({ stage: $("mosaic-stage"), list: /** @type {HTMLUListElement} */ ($("mosaic")), pageLabel: $("mosaic-page"), feed });
let layout = null; // the active one of spotlight / mosaic, once the photos are loaded
let ready = false;

// ---- Idle cycle ----------------------------------------------------------------------------

/** Calls `onIdle` every `seconds` while nothing else happens; poke() restarts the wait. */
class IdleCycle {
  constructor(seconds, onIdle) {
    this.ms = seconds * 1000;
    this.onIdle = onIdle;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
  }

  poke() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.onIdle();
      this.poke();
    }, this.ms);
  }
}

const cycle = new IdleCycle(secondsParam("cycle", DEFAULT_CYCLE_SECONDS), () => {
  if (layout && !state.wall_blanked && !intermission.showing && document.visibilityState === "visible") {
    layout.advance();
  }
});

// ---- "Scan to join" intermission -----------------------------------------------------------

const intermissionEverySeconds = secondsParam("intermission_every", null);
const intermissionSeconds = secondsParam("intermission_seconds", null);

const intermission = new Intermission({
  overlay,
  // Photos first: not while photos wait for the spotlight; never on a blanked or closed wall,
  // nor over the passcode form.
  canStart: () =>
    !state.wall_blanked &&
    !state.closed &&
    $("wall-gate").hidden &&
    !(layout === spotlight && (spotlight.busy || spotlight.queue.length)),
  onShow: () => {
    // Photos arriving meanwhile wait their turn, and get all of it once the wall is back.
    spotlight.hold();
    sizeQr();
    renderPasscode($("intermission-passcode"), state, passcode.passcode);
  },
  onHide: () => {
    // Emptied: the passcode line's test ids stay unique on the page.
    $("intermission-passcode").replaceChildren();
    $("intermission-passcode").hidden = true;
    spotlight.release();
    cycle.poke();
  },
});

function configureIntermission() {
  const minutes = state.wall_intermission_minutes;
  const everyMs = minutes ? (intermissionEverySeconds ?? minutes * 60) * 1000 : 0;
  intermission.configure(everyMs, (intermissionSeconds ?? state.wall_intermission_seconds) * 1000);
  if (state.wall_blanked || state.closed) intermission.interrupt();
  else intermission.poke();
}

// ---- Settings ------------------------------------------------------------------------------

function useLayout() {
  const wanted = state.wall_mode === "grid" ? mosaic : spotlight;
  if (!ready || layout === wanted) return;
  if (layout) layout.deactivate();
  layout = wanted;
  layout.activate();
  cycle.poke();
}

function inviteText() {
  if (state.closed) return "This room is closed";
  if (!state.uploads_open) return "Uploads are paused for now";
  if (state.wall_qr_size === "off") return "Photos appear here as guests share them";
  return feed.images.size ? "Scan to add yours" : "Scan to share your photos";
}

// ---- QR code size --------------------------------------------------------------------------

// Share of the screen's height (of the 16:9 area it holds) the QR code takes, quiet zone
// included, per size setting. Rounded down to whole device pixels per module, so every module
// is drawn crisp: "medium" is 12 px per module on a 1080p wall and 24 on 4K for a 41-module
// code (version 4), "small" 8/16 and "large" 16/32. The size depends on the screen only, never
// on the photos, so the code does not shrink when the first photo arrives.
const QR_HEIGHT_SHARE = { small: 0.31, medium: 0.47, large: 0.62 };
// The intermission's full-screen code: 28 px per module on 1080p, 56 on 4K (33 modules).
const INTERMISSION_QR_SHARE = 0.86;
const QR_MODULES = room.qr_modules || 41;

/**
 * Size the QR code under `element` (its `--qr-size`, CSS px) to `share` of the screen's
 * height, rounded down to whole device pixels per module, which `data-qr-module-px` records.
 */
function sizeQrTo(element, share) {
  const ratio = window.devicePixelRatio || 1;
  const screenHeight = Math.min(window.innerHeight, (window.innerWidth * 9) / 16) * ratio;
  const perModule = Math.max(1, Math.floor((screenHeight * share) / QR_MODULES));
  element.style.setProperty("--qr-size", `${(perModule * QR_MODULES) / ratio}px`);
  element.dataset.qrModulePx = String(perModule);
}

function sizeQr() {
  const share = QR_HEIGHT_SHARE[state.wall_qr_size];
  if (share) sizeQrTo(wall, share);
  sizeQrTo(overlay, INTERMISSION_QR_SHARE);
}

window.addEventListener("resize", sizeQr);

// Read with the wall's credentials: the view then carries the passcode when it may be shown.
const passcode = new WallPasscode({
  read: () => api(roomApi(token), { headers: feed.headers() }),
  onChange: (known) => {
    renderPasscode($("wall-passcode"), state, known);
    if (intermission.showing) renderPasscode($("intermission-passcode"), state, known);
  },
});

function applySettings(next) {
  state = next;
  wall.dataset.mode = state.wall_mode;
  wall.dataset.qr = state.wall_qr_size;
  sizeQr();
  wall.dataset.captions = state.wall_captions ? "on" : "off";
  wall.dataset.blanked = String(state.wall_blanked);
  wall.dataset.closed = String(state.closed);
  wall.dataset.uploads = state.uploads_open ? "open" : "paused";
  spotlight.minSeconds = wallMinSeconds();
  document.body.classList.toggle("is-blanked", state.wall_blanked);
  $("wall-blank").setAttribute("aria-hidden", String(!state.wall_blanked));
  wall.setAttribute("aria-hidden", String(state.wall_blanked));
  $("wall-closed").hidden = !state.closed;
  for (const id of ["wall-title", "wall-blank-title", "gate-title", "intermission-title"]) {
    $(id).textContent = state.title;
  }
  document.title = `Wall · ${state.title} · ImageShark`;
  $("wall-invite").textContent = inviteText();
  renderPasscode($("wall-passcode"), state, passcode.passcode);
  if (intermission.showing) renderPasscode($("intermission-passcode"), state, passcode.passcode);
  useLayout();
  configureIntermission();
}

feed.addEventListener("room", (event) => {
  applySettings(mergeRoom(state, event.detail.room));
  passcode.update(state);
});
feed.addEventListener("closed", (event) =>
  applySettings(mergeRoom(state, { closed: true, closed_at: event.detail.closed_at })),
);

// ---- Photos --------------------------------------------------------------------------------

function updateCount() {
  const count = feed.images.size;
  wall.dataset.state = count ? "showing" : "empty";
  wall.dataset.imageCount = String(count);
  $("photo-count").textContent = count === 1 ? "1 photo" : `${count} photos`;
  $("photo-count").hidden = count === 0;
  $("wall-invite").textContent = inviteText();
}

feed.addEventListener("add", (event) => {
  updateCount();
  const { image, initial } = event.detail;
  if (initial || !layout) return; // The first load is shown at "ready".
  layout.added(image);
  cycle.poke(); // A newcomer gets its full turn before the cycle moves on.
});

feed.addEventListener("remove", (event) => {
  updateCount();
  if (layout) layout.removed(event.detail.id);
});

feed.addEventListener("ready", () => {
  ready = true;
  updateCount();
  useLayout();
});

feed.addEventListener("presence", (event) => {
  const people = event.detail.count;
  $("presence").textContent = people === 1 ? "1 person connected" : `${people} people connected`;
  $("presence").hidden = false;
});

// Keep "3 minutes ago" current.
setInterval(() => {
  for (const element of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(".caption-time"))) {
    element.textContent = timeAgo(element.dataset.created);
  }
}, 30_000);

// ---- Passcode rooms ------------------------------------------------------------------------

let started = false;

function startFeed() {
  passcode.update(state); // With access now, the passcode may be read.
  if (started) {
    // Joined after a refusal: load what was missed and reconnect with the new cookie.
    feed.sync().catch(() => {});
    if (feed.socket && !feed.socket.connected) feed.socket.connect();
    return;
  }
  started = true;
  feed.start();
}

function showGate(message) {
  $("wall-gate").hidden = false;
  document.body.classList.add("is-gated");
  if (message) $("gate-text").textContent = message;
  $("gate-passcode").focus();
}

function hideGate() {
  $("wall-gate").hidden = true;
  document.body.classList.remove("is-gated");
  intermission.poke();
}

function isPasscodeError(error) {
  return error instanceof ApiError && (error.status === 401 || error.status === 403);
}

/**
 * Whether this browser may read the room: a public room, the host key, or the cookie of an
 * earlier join from this wall (remembered, since the cookie itself is HTTP-only). A cookie
 * that stopped working shows the form again through "loaderror" / "refused".
 */
function hasAccess() {
  return !state.passcode_required || Boolean(hostKey) || memory.wallJoined(token);
}

$("gate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("gate-passcode"));
  const error = $("gate-error");
  const button = /** @type {HTMLButtonElement} */ (
    /** @type {HTMLFormElement} */ (event.target).querySelector("button[type=submit]")
  );
  const passcode = input.value;
  error.hidden = true;
  if (!passcode.trim()) {
    error.textContent = "Type the room's passcode.";
    error.hidden = false;
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    await api(roomApi(token, "/participants"), { method: "POST", json: { name: WALL_NAME, passcode } });
    memory.setWallJoined(token, true);
    hostKey = null; // The cookie of this join is what works now, not a refused key.
    input.value = "";
    input.removeAttribute("aria-invalid");
    hideGate();
    startFeed();
  } catch (failure) {
    error.textContent = failure.status === 403 ? WALL_WRONG_PASSCODE : failure.message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.select();
  } finally {
    button.disabled = false;
  }
});

feed.addEventListener("loaderror", (event) => {
  if (!isPasscodeError(event.detail.error)) return;
  memory.setWallJoined(token, false);
  showGate();
});
feed.addEventListener("refused", (event) => {
  if (event.detail.passcode) showGate("The room now needs its passcode. Enter it to keep showing the photos.");
});

// ---- Projector niceties --------------------------------------------------------------------

const fullscreenButton = /** @type {HTMLButtonElement} */ ($("fullscreen"));
function syncFullscreenButton() {
  fullscreenButton.hidden = !document.fullscreenEnabled || Boolean(document.fullscreenElement);
}
fullscreenButton.addEventListener("click", () => {
  document.documentElement.requestFullscreen().catch(() => {});
});
document.addEventListener("fullscreenchange", syncFullscreenButton);
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement) return;
  if ((event.key === "f" || event.key === "F") && !event.ctrlKey && !event.metaKey && !event.altKey) {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (document.fullscreenEnabled) document.documentElement.requestFullscreen().catch(() => {});
  }
});
syncFullscreenButton();

// Hide the mouse pointer and controls when the mouse rests.
/** @type {ReturnType<typeof setTimeout> | undefined} */
let idleTimer;
function wake() {
  document.body.classList.remove("is-idle");
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => document.body.classList.add("is-idle"), 3000);
}
for (const type of ["mousemove", "mousedown", "keydown", "touchstart"]) {
  document.addEventListener(type, wake, { passive: true });
}
wake();

// Keep the projector's screen from sleeping (where the browser allows it).
let wakeLock = null;
async function holdWakeLock() {
  if (!("wakeLock" in navigator) || document.visibilityState !== "visible" || wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => (wakeLock = null));
  } catch {
    wakeLock = null; // Not allowed here (e.g. no user gesture yet, or battery saver).
  }
}
document.addEventListener("visibilitychange", holdWakeLock);
document.addEventListener("click", holdWakeLock);
holdWakeLock();

applySettings(state);
cycle.poke();
if (hasAccess()) startFeed();
else showGate();
