// @ts-check
// Participant page (phone first): join with a name (and the room's passcode when it has
// one), share photos through a queue that survives bad connections, follow them in
// "My uploads" (uploading, retrying, waiting for approval, on the wall), browse and download
// the room's photos live, delete your own.

import { api, ApiError, readRoomData, roomApi } from "./api.js";
import { prepareUpload } from "./downscale.js";
import { Gallery, Lightbox } from "./gallery.js";
import {
  fetchMe,
  fetchMyImages,
  forgetStoredKey,
  join,
  joinedBefore,
  renameMe,
  rememberJoined,
  quotaText,
  rememberedName,
} from "./guest-identity.js";
import { RoomFeed } from "./live.js";
import { JOIN_MESSAGES, refusalMessage } from "./messages.js";
import { MyUploads } from "./my-uploads.js";
import { ownerKey, PendingStore } from "./pending-store.js";
import { bindOption, rememberedOption } from "./upload-options.js";
import { UploadQueue } from "./uploader.js";
import { bindLiveIndicator, bindPresence, confirmDialog, startClock, toast } from "./ui.js";

const room = readRoomData(); // kept current by room_updated / room_closed
const token = room.token;
/**
 * An element of this page's template (it renders every id looked up here).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The guest as the server knows them ({id, name, upload_count, max_uploads, uploads_left}), or null. */
let me = null;
let renaming = false;
let identityKnown = false;

const isClosed = () => Boolean(room.closed || room.closed_at);
const uploadsOpen = () => room.uploads_open !== false;
const passcodeRequired = () => Boolean(room.passcode_required);
const quotaFull = () => Boolean(me && me.uploads_left != null && me.uploads_left <= 0);

function roomError(code) {
  return new ApiError(409, code, refusalMessage({ code }, me));
}

// ---- Live feed -----------------------------------------------------------------------------

const feed = new RoomFeed({ token, name: "Guest", lastSeq: room.last_seq });
let feedStarted = false;

function startFeed() {
  if (feedStarted) return;
  feedStarted = true;
  $("loading").hidden = false;
  render();
  feed.start();
}

// ---- Rendering -----------------------------------------------------------------------------

function render() {
  const closed = isClosed();
  const title = room.title || "";
  if ($("room-title").textContent !== title) {
    $("room-title").textContent = title;
    document.title = `${title} · ImageShark`;
  }
  $("closed-notice").hidden = !closed;
  $("paused-notice").hidden = closed || uploadsOpen();

  $("join").hidden = !identityKnown || closed || (Boolean(me) && !renaming);
  // Renaming is PATCH /me for the guest already in: no passcode to type again.
  $("passcode-field").hidden = !passcodeRequired() || (renaming && Boolean(me));
  $("join-title").textContent = renaming ? "Change your name" : "Join to share photos";
  $("join-cancel").hidden = !renaming;
  /** @type {HTMLElement} */ ($("join-button").querySelector(".btn-label")).textContent = renaming ? "Save name" : "Join";
  $("upload").hidden = closed || !me || renaming;

  // Before a passcode room is joined there is no live connection to speak of.
  $("live").hidden = !feedStarted;
  const locked = passcodeRequired() && !me && !feedStarted;
  $("locked").hidden = !locked;
  $("gallery").hidden = locked;
  if (locked) {
    $("loading").hidden = true;
    $("empty").hidden = true;
  }

  if (!me) return;
  $("identity-name").textContent = me.name;
  // Renaming keeps the same guest (PATCH /me): earlier photos stay theirs, so it is always offered.
  $("change-name").hidden = false;

  const quota = quotaText(me);
  $("quota").hidden = !quota;
  $("quota").textContent = quota || "";
  $("quota").classList.toggle("is-low", quotaFull());

  let blockedReason = null;
  if (!uploadsOpen()) blockedReason = refusalMessage({ code: "uploads_paused" });
  else if (quotaFull()) blockedReason = `${refusalMessage({ code: "guest_quota_reached" }, me)} Delete one of yours to share another.`;
  const input = /** @type {HTMLInputElement} */ ($("file-input"));
  input.disabled = Boolean(blockedReason);
  $("picker-button").classList.toggle("is-disabled", Boolean(blockedReason));
  $("picker-button").setAttribute("aria-disabled", blockedReason ? "true" : "false");
  $("picker-hint").textContent =
    blockedReason || "Pick as many as you like. If the connection drops, they're sent again by themselves.";
}

function showJoinError(message) {
  const box = $("join-error");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---- Identity ------------------------------------------------------------------------------

let meRefresh = null;
let meRefreshAgain = false;

/** Reload the guest's quota and name from the server (calls made meanwhile are coalesced). */
async function refreshMe() {
  if (meRefresh) {
    meRefreshAgain = true;
    return meRefresh;
  }
  meRefresh = (async () => {
    try {
      do {
        meRefreshAgain = false;
        const fresh = await fetchMe(token);
        if (!fresh) {
          if (me) lostIdentity();
          return;
        }
        me = fresh;
        if (!quotaFull()) queue.lift("guest_quota_reached");
      } while (meRefreshAgain);
    } catch {
      // Offline or the server hiccuped: the next upload or reconnect refreshes it.
    } finally {
      meRefresh = null;
      render();
    }
  })();
  return meRefresh;
}

let mineLoad = null;
let mineLoadAgain = false;

/** Reload "My uploads" from the server (coalesced like refreshMe). */
async function loadMine() {
  if (!me) return;
  if (mineLoad) {
    mineLoadAgain = true;
    return mineLoad;
  }
  mineLoad = (async () => {
    try {
      do {
        mineLoadAgain = false;
        const knownBefore = myUploads.knownIds();
        myUploads.setServerImages(await fetchMyImages(token), knownBefore);
      } while (mineLoadAgain);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) lostIdentity();
    } finally {
      mineLoad = null;
    }
  })();
  return mineLoad;
}

/** The server no longer knows this browser (cookie gone or expired): ask to join again. */
function lostIdentity() {
  me = null;
  rememberJoined(token, null);
  renaming = false;
  render();
  showJoinError("Please join again: your photos waiting to be sent will go after that.");
  $("name-input").focus();
}

function afterJoin() {
  renaming = false;
  if (feedStarted) feed.setName(me.name);
  else feed.name = me.name;
  gallery.refreshPermissions();
  render();
  loadMine();
  restorePending();
}

/** @type {ReturnType<typeof setInterval> | undefined} */
let rateLimitTimer;

/** Refuse further tries until the server's Retry-After has passed, counting down. */
function waitBeforeRetry(seconds) {
  const button = /** @type {HTMLButtonElement} */ ($("join-button"));
  let left = Math.max(1, Math.ceil(seconds || 30));
  clearInterval(rateLimitTimer);
  button.disabled = true;
  const tick = () => {
    if (left <= 0) {
      clearInterval(rateLimitTimer);
      button.disabled = false;
      showJoinError("");
      return;
    }
    showJoinError(`Too many tries from this network. Please wait ${left} s, then try again.`);
    left -= 1;
  };
  tick();
  rateLimitTimer = setInterval(tick, 1000);
}

$("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const nameInput = /** @type {HTMLInputElement} */ ($("name-input"));
  const passcodeInput = /** @type {HTMLInputElement} */ ($("passcode-input"));
  const name = nameInput.value.trim();
  nameInput.removeAttribute("aria-invalid");
  passcodeInput.removeAttribute("aria-invalid");
  if (!name) {
    showJoinError("Please type your name, so others know who shared what.");
    nameInput.setAttribute("aria-invalid", "true");
    nameInput.focus();
    return;
  }
  const needsPasscode = passcodeRequired() && !(renaming && me);
  const passcode = needsPasscode ? passcodeInput.value.trim() : "";
  if (needsPasscode && !passcode) {
    showJoinError("Please type the room's passcode. The host can tell you what it is.");
    passcodeInput.setAttribute("aria-invalid", "true");
    passcodeInput.focus();
    return;
  }
  const button = /** @type {HTMLButtonElement} */ ($("join-button"));
  button.disabled = true;
  showJoinError("");
  let waiting = false;
  try {
    if (renaming && me) {
      // The same guest under a new name: no passcode again, no new participant.
      const renamed = await renameMe(token, name);
      me = { ...me, ...renamed };
      afterJoin();
      toast(`You now share photos as ${me.name}.`, "success");
      $("change-name").focus({ preventScroll: true });
      return;
    }
    const joined = await join(token, name, passcode || null);
    me = (await fetchMe(token).catch(() => null)) || {
      id: joined.id,
      name: joined.name,
      upload_count: 0,
      max_uploads: null,
      uploads_left: null,
    };
    const wasRenaming = renaming;
    afterJoin();
    startFeed();
    // Photos refused because the guest had to join first can go now.
    queue.unblock("passcode_required");
    queue.unblock("not_joined");
    if (wasRenaming) toast(`You now share photos as ${me.name}.`, "success");
    // The picker, not a text field: focusing a field would pop up the phone's keyboard.
    $("file-input").focus({ preventScroll: true });
  } catch (error) {
    const code = error && error.code;
    if (code === "wrong_passcode") {
      showJoinError(JOIN_MESSAGES.wrong_passcode);
      passcodeInput.setAttribute("aria-invalid", "true");
      passcodeInput.focus();
      passcodeInput.select();
    } else if (code === "passcode_required") {
      room.passcode_required = true;
      render();
      showJoinError(JOIN_MESSAGES.passcode_required);
      passcodeInput.setAttribute("aria-invalid", "true");
      passcodeInput.focus();
    } else if (code === "rate_limited" || (error && error.status === 429)) {
      waiting = true;
      waitBeforeRetry(error.retryAfter);
    } else if (code === "room_closed") {
      room.closed = true;
      render();
    } else {
      showJoinError(error.message);
      nameInput.focus();
    }
  } finally {
    if (!waiting) button.disabled = false;
  }
});

$("change-name").addEventListener("click", () => {
  renaming = true;
  /** @type {HTMLInputElement} */ ($("name-input")).value = me ? me.name : "";
  showJoinError("");
  render();
  $("name-input").focus();
  /** @type {HTMLInputElement} */ ($("name-input")).select();
});

function cancelRename() {
  renaming = false;
  showJoinError("");
  render();
  $("change-name").focus();
}
$("join-cancel").addEventListener("click", cancelRename);
$("join-form").addEventListener("keydown", (event) => {
  if (event.key === "Escape" && renaming) cancelRename();
});

// ---- Uploads -------------------------------------------------------------------------------

/** Whether the browser reports a slow or data-saving connection (Network Information API,
 *  where available: Chromium on Android; elsewhere, never slow). */
function slowNetwork() {
  const connection = navigator.connection;
  if (!connection) return false;
  return Boolean(connection.saveData) || ["slow-2g", "2g", "3g"].includes(connection.effectiveType || "");
}

/** Why photos are made smaller by default: "host" (room setting), "slow" or null (originals). */
function downscaleReason() {
  if (room.downscale_uploads) return "host";
  if (slowNetwork()) return "slow";
  return null;
}

const downscaleInput = /** @type {HTMLInputElement} */ ($("downscale-input"));
const downscaleOn = bindOption(downscaleInput, "downscale", downscaleReason() !== null);

/** Say whether photos go at full size, and why not; and whether they keep their location. */
function renderUploadOptions() {
  if (rememberedOption("downscale") === null) downscaleInput.checked = downscaleReason() !== null;
  const reason = downscaleReason();
  let text = "Photos are sent at full size.";
  if (downscaleInput.checked) {
    if (reason === "host") text = "Photos are made smaller because the host asked.";
    else if (reason === "slow") text = "Photos are made smaller because your connection is slow.";
    else text = "Photos are made smaller before sending.";
  }
  $("downscale-hint").textContent = text;
  $("location-hint").textContent = room.keep_location
    ? "Photos keep their location for the host."
    : "Location (GPS) is removed from your photos before the host gets them.";
}
downscaleInput.addEventListener("change", renderUploadOptions);
if (navigator.connection && navigator.connection.addEventListener) {
  navigator.connection.addEventListener("change", renderUploadOptions);
}
renderUploadOptions();
const captionEachOn = bindOption(/** @type {HTMLInputElement} */ ($("caption-each-input")), "caption-each", false);

const queue = new UploadQueue({
  token,
  concurrency: 2,
  prepare: (file) => prepareUpload(file, { downscale: downscaleOn() }),
});

queue.addEventListener("uploaded", (event) => {
  const { image, duplicate } = event.detail;
  // Pending photos are the guest's own business until the host approves them.
  if (image.status !== "pending") feed.add(image);
  if (!duplicate && me && me.uploads_left != null) {
    me.upload_count += 1;
    me.uploads_left = Math.max(0, me.uploads_left - 1);
  }
  render();
  refreshMe();
});

queue.addEventListener("refused", (event) => {
  const { error } = event.detail;
  switch (error.code) {
    case "uploads_paused":
      room.uploads_open = false;
      break;
    case "room_closed":
      room.closed = true;
      break;
    case "guest_quota_reached":
      refreshMe();
      break;
    case "passcode_required":
    case "not_joined":
    case "join_required":
      lostIdentity();
      return;
    default:
      break;
  }
  render();
  toast(refusalMessage(error, me), "error", 6000);
});

queue.addEventListener("change", () => updateHeld());
queue.addEventListener("removed", () => {
  updateHeld();
  render();
});

// ---- Photos kept across reloads -------------------------------------------------------------
// Each photo ready to go is written to IndexedDB (pending-store.js) and deleted once the server
// acknowledged it or the guest cancelled it; a photo refused for good is kept, marked failed,
// until dismissed. Back on the page, the kept photos are sent again (the same bytes: a photo the
// server had stored before answers 200 with the same image, never a second copy).

let pendingStore = null;
const storeReady = PendingStore.open().then((store) => {
  pendingStore = store;
  queue.persistent = Boolean(store);
  if (!store) $("storage-notice").hidden = false;
  return store;
});
/** The owner key whose kept photos were put back already (once per guest and page). */
let restoredFor = null;

function storageFailed() {
  queue.persistent = false;
  $("storage-notice").hidden = false;
}

/** Bring the kept record of `item` in line with its state (delete, mark failed or keep). */
function settleStored(item) {
  if (!pendingStore || item.storeId == null) return;
  const id = item.storeId;
  if (!queue.items.includes(item) || item.state === "done" || item.state === "pending") {
    item.storeId = null;
    pendingStore.remove(id).catch(() => {});
  } else if (item.state === "failed" && !item.retriable && !item.storedFailed) {
    item.storedFailed = true;
    const { status, code, message } = item.error || {};
    pendingStore.markFailed(id, { status: status ?? 0, code: code || "failed", message: message || "" }).catch(() => {});
  }
}

/**
 * Keep `item` in IndexedDB: the picked file as soon as it is added (so a reload while photos
 * are still being downscaled loses none), then the prepared bytes once they are ready. Photos
 * held for captions are kept only once the guest shares them.
 */
function persist(item) {
  if (!pendingStore || !me) return;
  if (item.storing) {
    if (item.blob && !item.storedPrepared) item.needsPrepared = true;
    return;
  }
  if (item.storeId != null) {
    if (item.blob && !item.storedPrepared && item.active && item.state !== "held") {
      item.storedPrepared = true;
      pendingStore
        .update(item.storeId, { blob: item.blob, name: item.name, caption: item.caption, prepared: true })
        .catch(storageFailed);
    }
    return;
  }
  if (item.hold || !item.active) return;
  item.storing = true;
  const prepared = Boolean(item.blob);
  item.storedPrepared = prepared;
  pendingStore
    .add({
      owner: ownerKey(token, me.id),
      name: item.name,
      caption: item.caption,
      blob: item.blob || item.file,
      prepared,
    })
    .then((id) => {
      item.storing = false;
      item.storeId = id;
      if (item.needsPrepared) persist(item);
      settleStored(item); // it may have been stored by the server or cancelled meanwhile
    })
    .catch((error) => {
      item.storing = false;
      storageFailed();
    });
}

function updateRestoredNotice() {
  const waiting = queue.items.filter((item) => item.restored && item.active).length;
  if (!waiting) $("restored-notice").hidden = true;
}

/** Put back the photos this guest left unsent in this room (after a reload or a closed tab). */
async function restorePending() {
  await storeReady;
  if (!pendingStore || !me) return;
  const owner = ownerKey(token, me.id);
  if (restoredFor === owner) return;
  restoredFor = owner;
  let records;
  try {
    records = await pendingStore.list(owner);
  } catch {
    storageFailed();
    return;
  }
  const known = new Set(queue.items.map((item) => item.storeId).filter((id) => id != null));
  records = records.filter((record) => !known.has(record.id) && record.blob);
  if (!records.length) return;
  const waiting = records.filter((record) => !record.failed).length;
  queue.restore(records);
  if (waiting) {
    $("restored-notice").textContent =
      waiting === 1
        ? "1 photo was waiting and is being sent now."
        : `${waiting} photos were waiting and are being sent now.`;
    $("restored-notice").hidden = false;
  }
  updateRestoredNotice();
  render();
}

queue.addEventListener("change", (event) => {
  const { item } = event.detail;
  persist(item);
  settleStored(item);
  if (item.restored) updateRestoredNotice();
});
queue.addEventListener("removed", (event) => {
  settleStored(event.detail.item);
  updateRestoredNotice();
});

function heldItems() {
  return queue.items.filter((item) => item.state === "held" || (item.hold && item.state === "preparing"));
}

function updateHeld() {
  const held = heldItems();
  $("held-actions").hidden = held.length === 0;
  const ready = held.filter((item) => item.state === "held").length;
  $("send-held").textContent = held.length === 1 ? "Share 1 photo" : `Share ${held.length} photos`;
  /** @type {HTMLButtonElement} */ ($("send-held")).disabled = ready === 0;
}

$("send-held").addEventListener("click", () => queue.send(heldItems()));
$("discard-held").addEventListener("click", () => {
  for (const item of heldItems()) queue.remove(item);
});

$("file-input").addEventListener("change", (event) => {
  const picker = /** @type {HTMLInputElement} */ (event.target);
  const files = [...(picker.files || [])];
  // Reset so picking the same photo again fires "change"; the caption was for this batch.
  picker.value = "";
  if (!files.length) return;
  if (me && me.uploads_left != null && files.length > me.uploads_left) {
    toast(
      `You can share ${me.uploads_left} more photo${me.uploads_left === 1 ? "" : "s"} in this room; the rest won't be accepted.`,
      "error",
      6000,
    );
  }
  queue.add(files, { caption: /** @type {HTMLInputElement} */ ($("caption-input")).value.trim(), hold: captionEachOn() });
  /** @type {HTMLInputElement} */ ($("caption-input")).value = "";
  render();
});

// ---- Photos --------------------------------------------------------------------------------

const canDelete = (image) => Boolean(me && image.participant_id === me.id) || myUploads.owns(image.id);

async function deleteImage(image) {
  const ok = await confirmDialog({
    title: "Delete your photo?",
    body: "It disappears from the wall and from everyone's screen.",
    confirmLabel: "Delete photo",
    danger: true,
  });
  if (!ok) return;
  try {
    await api(roomApi(token, `/images/${image.id}`), { method: "DELETE" });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      toast(error.message, "error", 6000);
      return;
    }
  }
  lightbox.close();
  feed.remove(image.id);
  myUploads.removed(image.id);
  toast("Photo deleted.", "success");
  refreshMe();
}

const lightbox = new Lightbox(feed, { canDelete, onDelete: deleteImage });
const gallery = new Gallery(/** @type {HTMLUListElement} */ ($("gallery")), feed, {
  canDelete,
  onDelete: deleteImage,
  onOpen: (image) => lightbox.open(image),
  empty: $("empty"),
});
const myUploads = new MyUploads({
  list: /** @type {HTMLUListElement} */ ($("upload-list")),
  section: $("mine"),
  count: $("mine-count"),
  summary: $("upload-summary"),
  summaryText: $("upload-summary-text"),
  retryAll: /** @type {HTMLButtonElement} */ ($("retry-all")),
  queue,
  onOpen: (image) => lightbox.open(image),
  onDelete: deleteImage,
  me: () => me,
});

function updateCount() {
  $("photo-count").textContent = feed.images.size ? String(feed.images.size) : "";
}

feed.addEventListener("add", (event) => {
  updateCount();
  myUploads.approved(event.detail.image);
});
feed.addEventListener("remove", (event) => {
  updateCount();
  const mine = myUploads.owns(event.detail.id);
  myUploads.removed(event.detail.id);
  if (mine) refreshMe();
});
feed.addEventListener("ready", () => {
  $("loading").hidden = true;
});
feed.addEventListener("loaderror", (event) => {
  const error = event.detail.error;
  if (error instanceof ApiError && error.status === 401 && passcodeRequired()) return;
  toast(error.message, "error", 8000);
});
feed.addEventListener("status", (event) => {
  // Back live after a gap: approvals or declines may have happened meanwhile.
  if (event.detail.state === "live" && me) loadMine();
});
feed.addEventListener("room", (event) => applyRoom(event.detail.room));
feed.addEventListener("closed", (event) => {
  if (isClosed()) return;
  room.closed = true;
  room.closed_at = event.detail.closed_at || new Date().toISOString();
  queue.block(roomError("room_closed"));
  render();
  toast("The host closed this room. You can still look at the photos.", "info", 6000);
});
feed.addEventListener("queue", () => {
  // A decline shows up only as a shorter approval queue: recheck ours if we wait on one.
  if ([...myUploads.status.values()].includes("pending")) loadMine().then(refreshMe);
});
feed.addEventListener("refused", (event) => {
  if (event.detail.passcode) {
    room.passcode_required = true;
    if (me) lostIdentity();
    else render();
  }
});
bindLiveIndicator($("live"), feed);
bindPresence($("presence"), feed);

/** Apply the room's new settings (room_updated, or reloaded after a snapshot). */
function applyRoom(next) {
  const before = {
    open: uploadsOpen(),
    closed: isClosed(),
    perGuest: room.max_uploads_per_guest,
    maxImages: room.max_images,
    maxBytes: room.max_bytes,
  };
  Object.assign(room, next);
  renderUploadOptions();
  if (isClosed() && !before.closed) queue.block(roomError("room_closed"));
  if (!isClosed()) {
    if (before.open && !uploadsOpen()) {
      // The notice (a live region) says it; photos on their way wait for the reopening.
      queue.block(roomError("uploads_paused"));
    } else if (!before.open && uploadsOpen()) {
      const resumed = queue.unblock("uploads_paused");
      toast(
        resumed ? "Uploads are open again: sending your photos." : "Uploads are open again.",
        "success",
      );
    }
  }
  if (room.max_uploads_per_guest !== before.perGuest) {
    queue.unblock("guest_quota_reached");
    refreshMe();
  }
  if (room.max_images !== before.maxImages) queue.unblock("room_quota_reached");
  if (room.max_bytes !== before.maxBytes) queue.unblock("room_storage_full");
  render();
}

// ---- Start ---------------------------------------------------------------------------------

async function init() {
  forgetStoredKey(token);
  /** @type {HTMLInputElement} */ ($("name-input")).value = rememberedName();
  if (joinedBefore(token)) {
    try {
      me = await fetchMe(token);
      if (!me) rememberJoined(token, null); // the cookie expired or was cleared
    } catch (error) {
      toast(error.message, "error", 8000);
    }
  }
  identityKnown = true;
  if (me) {
    feed.name = me.name;
    afterJoin();
  }
  if (!passcodeRequired() || me) startFeed();
  render();
  if (!me && !isClosed()) $("name-input").focus({ preventScroll: true });
}

if (isClosed()) queue.block(roomError("room_closed"));
else if (!uploadsOpen()) queue.block(roomError("uploads_paused"));
render();
startClock();
init();
