// Participant page (phone first): join with a name once per room, upload photos with
// progress, browse the room's photos live, delete your own.

import { api, memory, readRoomData, roomApi } from "./api.js";
import { Gallery, Lightbox } from "./gallery.js";
import { RoomFeed } from "./live.js";
import { UploadQueue } from "./uploader.js";
import { bindLiveIndicator, bindPresence, confirmDialog, startClock, toast } from "./ui.js";

const room = readRoomData();
const token = room.token;
const $ = (id) => document.getElementById(id);

let me = memory.participant(token); // {id, name, participant_key, previous?: [...]}

// ---- Identity ------------------------------------------------------------------------------

/** Every identity this browser had in the room: renaming keeps earlier photos deletable. */
function identities() {
  if (!me) return [];
  return [{ id: me.id, participant_key: me.participant_key }, ...(me.previous || [])];
}

function keyFor(image) {
  if (image.participant_id == null) return null;
  const match = identities().find((identity) => identity.id === image.participant_id);
  return match ? match.participant_key : null;
}

async function register(name) {
  const joined = await api(roomApi(token, "/participants"), { method: "POST", json: { name } });
  const previous = me ? identities() : [];
  me = { id: joined.id, name: joined.name, participant_key: joined.participant_key, previous };
  memory.setParticipant(token, me);
  return me;
}

function render() {
  const closed = Boolean(room.closed);
  $("closed-notice").hidden = !closed;
  $("join").hidden = closed || Boolean(me);
  $("upload").hidden = closed || !me;
  if (me) $("identity-name").textContent = me.name;
}

function showFormError(id, message) {
  const box = $(id);
  box.textContent = message || "";
  box.hidden = !message;
}

$("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("name-input");
  const name = input.value.trim();
  if (!name) {
    showFormError("join-error", "Please type your name, so others know who shared what.");
    input.focus();
    return;
  }
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  showFormError("join-error", "");
  try {
    await register(name);
    render();
    feed.setName(me.name);
    gallery.refreshPermissions();
    $("file-input").focus();
  } catch (error) {
    showFormError("join-error", error.message);
    input.focus();
  } finally {
    button.disabled = false;
  }
});

$("change-name").addEventListener("click", () => {
  $("rename-form").hidden = false;
  $("identity").hidden = true;
  $("rename-input").value = me ? me.name : "";
  $("rename-input").focus();
  $("rename-input").select();
});

function closeRename() {
  $("rename-form").hidden = true;
  $("identity").hidden = false;
  showFormError("rename-error", "");
  $("change-name").focus();
}

$("rename-cancel").addEventListener("click", closeRename);
$("rename-form").addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeRename();
});
$("rename-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("rename-input").value.trim();
  if (!name) {
    showFormError("rename-error", "Your name can't be empty.");
    return;
  }
  if (me && name === me.name) {
    closeRename();
    return;
  }
  try {
    await register(name);
    render();
    feed.setName(me.name);
    closeRename();
    toast(`You now share photos as ${me.name}.`, "success");
  } catch (error) {
    showFormError("rename-error", error.message);
  }
});

// ---- Uploads -------------------------------------------------------------------------------

const feed = new RoomFeed({ token, name: me ? me.name : "Guest", lastSeq: room.last_seq });

const uploads = new UploadQueue({
  token,
  list: $("upload-list"),
  summary: $("upload-summary"),
  participantKey: () => (me ? me.participant_key : null),
  concurrency: 2,
  onUploaded: (image) => feed.add(image),
  onAuthError: () => {
    // The room no longer knows this browser's identity: ask for the name again.
    me = null;
    memory.setParticipant(token, null);
    render();
    showFormError("join-error", "Please join again, then retry the failed photos.");
  },
});

$("file-input").addEventListener("change", (event) => {
  const files = [...event.target.files];
  if (!files.length) return;
  uploads.add(files, $("caption-input").value);
  // Reset so picking the same photo again fires "change"; the caption was for this batch.
  event.target.value = "";
  $("caption-input").value = "";
});
$("upload-clear").addEventListener("click", () => uploads.clearFinished());

// ---- Photos --------------------------------------------------------------------------------

async function deleteImage(image) {
  const key = keyFor(image);
  if (!key) return;
  const ok = await confirmDialog({
    title: "Delete your photo?",
    body: "It disappears from the wall and from everyone's screen.",
    confirmLabel: "Delete photo",
    danger: true,
  });
  if (!ok) return;
  try {
    await api(roomApi(token, `/images/${image.id}`), {
      method: "DELETE",
      headers: { "X-Participant-Key": key },
    });
    feed.remove(image.id);
    toast("Photo deleted.", "success");
  } catch (error) {
    if (error.status === 404) feed.remove(image.id);
    else toast(error.message, "error", 6000);
  }
}

const canDelete = (image) => keyFor(image) !== null;
const lightbox = new Lightbox(feed, { canDelete, onDelete: deleteImage });
const gallery = new Gallery($("gallery"), feed, {
  canDelete,
  onDelete: deleteImage,
  onOpen: (image) => lightbox.open(image),
  empty: $("empty"),
});

function updateCount() {
  $("photo-count").textContent = feed.images.size ? String(feed.images.size) : "";
}
feed.addEventListener("add", updateCount);
feed.addEventListener("remove", updateCount);
feed.addEventListener("ready", () => {
  $("loading").hidden = true;
});
feed.addEventListener("loaderror", (event) => toast(event.detail.error.message, "error", 8000));
bindLiveIndicator($("live"), feed);
bindPresence($("presence"), feed);

render();
if (!me && !room.closed) $("name-input").focus({ preventScroll: true });
startClock();
feed.start();
