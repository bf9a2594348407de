// Host page: QR code and join link, the host key (shown once, pasted, or passed in the
// URL fragment), the live photo grid with delete buttons.

import { api, ApiError, memory, readRoomData, roomApi } from "./api.js";
import { Gallery, Lightbox } from "./gallery.js";
import { RoomFeed } from "./live.js";
import {
  bindCopyButton,
  bindLiveIndicator,
  bindPresence,
  confirmDialog,
  formatDateTime,
  startClock,
  toast,
} from "./ui.js";

const room = readRoomData();
const token = room.token;
const $ = (id) => document.getElementById(id);

// ---- Host key ------------------------------------------------------------------------------

let hostKey = null; // set once the server accepted it

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

const keyStates = ["key-ok", "key-checking", "key-missing"];
function showKeyState(id) {
  for (const state of keyStates) $(state).hidden = state !== id;
}

function hostLink() {
  const key = hostKey || memory.hostKey(token);
  return key ? `${room.host_url}#key=${encodeURIComponent(key)}` : "";
}

async function verifyKey(key) {
  try {
    await api(roomApi(token, "/host"), { headers: { Authorization: `Bearer ${key}` } });
    return { ok: true };
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      return { ok: false, message: error.message };
    }
    // Offline or server trouble: trust the stored key for now; deleting will tell.
    return { ok: true, unverified: true };
  }
}

function acceptKey(key) {
  hostKey = key;
  memory.setHostKey(token, key);
  memory.rememberHostedRoom(room);
  gallery.refreshPermissions();
  showKeyState("key-ok");
  if (memory.keyUnseen(token)) {
    $("host-key").textContent = key;
    $("key-reveal").hidden = false;
    // Shown once: a reload will not show it again (the host link still carries it).
    memory.setKeyUnseen(token, false);
  }
}

function askForKey(message) {
  hostKey = null;
  $("key-reveal").hidden = true;
  gallery.refreshPermissions();
  if (message) $("key-missing-text").textContent = message;
  showKeyState("key-missing");
}

async function initKey() {
  const stored = memory.hostKey(token);
  if (!stored) {
    askForKey();
    return;
  }
  showKeyState("key-checking");
  const result = await verifyKey(stored);
  if (result.ok) {
    acceptKey(stored);
  } else {
    memory.setHostKey(token, null);
    askForKey(`The host key saved in this browser doesn't work for this room (${result.message}). Paste the right key to manage the room.`);
  }
}

$("key-missing").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("key-input");
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
    acceptKey(key);
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
bindCopyButton($("copy-key"), () => hostKey || "");
bindCopyButton($("copy-host-link"), hostLink, "Host link copied");
bindCopyButton($("copy-host-link-banner"), hostLink, "Host link copied");
bindCopyButton($("copy-join"), () => room.join_url);

// ---- Photos --------------------------------------------------------------------------------

const feed = new RoomFeed({ token, name: "Host", lastSeq: room.last_seq });
bindLiveIndicator($("live"), feed);
bindPresence($("presence"), feed);

async function deleteImage(image) {
  const ok = await confirmDialog({
    title: "Delete this photo?",
    body: "It disappears from the wall and from every guest's screen. This can't be undone.",
    confirmLabel: "Delete photo",
    danger: true,
  });
  if (!ok) return;
  try {
    await api(roomApi(token, `/images/${image.id}`), {
      method: "DELETE",
      headers: { Authorization: `Bearer ${hostKey}` },
    });
    feed.remove(image.id);
    toast("Photo deleted.", "success");
  } catch (error) {
    if (error.status === 404) {
      feed.remove(image.id); // Already gone.
      return;
    }
    toast(error.message, "error", 6000);
    if (error.status === 401 || error.status === 403) {
      memory.setHostKey(token, null);
      askForKey(`Your host key was not accepted (${error.message}). Paste the right key to manage the room.`);
    }
  }
}

const lightbox = new Lightbox(feed, { canDelete: () => hostKey !== null, onDelete: deleteImage });
const gallery = new Gallery($("gallery"), feed, {
  canDelete: () => hostKey !== null,
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

$("expires").textContent = formatDateTime(room.expires_at);
startClock();
initKey();
feed.start();
