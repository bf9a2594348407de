// @ts-check
// Landing page: create a room (optionally with a passcode and photo approval, under "More
// options"), remember its host key, go to the host page.

import { api, memory } from "./api.js";
import { formatDateTime, h } from "./ui.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("create-form"));
const input = /** @type {HTMLInputElement} */ (document.getElementById("room-title"));
const errorBox = /** @type {HTMLElement} */ (document.getElementById("create-error"));
const passcodeInput = /** @type {HTMLInputElement} */ (document.getElementById("room-passcode"));
const moderationInput = /** @type {HTMLInputElement} */ (document.getElementById("room-moderation"));
const advanced = /** @type {HTMLDetailsElement} */ (document.getElementById("advanced"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/** Show `message` (or clear it) and mark the field it is about: the title, or the passcode. */
function showError(message, field = input) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
  input.setAttribute("aria-invalid", message && field === input ? "true" : "false");
  passcodeInput.setAttribute("aria-invalid", message && field === passcodeInput ? "true" : "false");
  if (message && field === passcodeInput) advanced.open = true;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = input.value.trim();
  if (!title) {
    showError("Give your room a title, so guests know they're in the right place.");
    input.focus();
    return;
  }
  const passcode = passcodeInput.value.trim();
  if (passcode && (passcode.length < 4 || passcode.length > 64)) {
    showError("A passcode has 4 to 64 characters (or leave it empty for an open room).", passcodeInput);
    passcodeInput.focus();
    return;
  }
  showError("");
  const body = { title };
  if (passcode) body.passcode = passcode;
  if (moderationInput.checked) body.moderation = "approve";
  submit.disabled = true;
  /** @type {HTMLElement} */ (submit.querySelector(".btn-label")).textContent = "Creating…";
  try {
    const room = await api("/api/rooms", { method: "POST", json: body });
    memory.setHostKey(room.token, room.host_key);
    memory.setKeyUnseen(room.token, true);
    memory.rememberHostedRoom(room);
    window.location.assign(room.host_url);
  } catch (error) {
    const field = error.code === "invalid_passcode" ? passcodeInput : input;
    showError(error.message, field);
    submit.disabled = false;
    /** @type {HTMLElement} */ (submit.querySelector(".btn-label")).textContent = "Create room";
    field.focus();
  }
});

// "Have a room code?": go to the short join URL /j/<code> (the server accepts any case; the
// code alphabet has no I, L, O or U, so spaces and dashes typed from a printed card are dropped).
const codeForm = /** @type {HTMLFormElement} */ (document.getElementById("code-form"));
const codeInput = /** @type {HTMLInputElement} */ (document.getElementById("room-code"));
const codeError = /** @type {HTMLElement} */ (document.getElementById("code-error"));
codeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = codeInput.value.replace(/[\s-]/g, "").toUpperCase();
  if (!/^[0-9A-HJKMNP-TV-Z]{8}$/.test(code)) {
    codeError.textContent = "A room code has 8 letters and digits, as shown beside the QR code.";
    codeError.hidden = false;
    codeInput.setAttribute("aria-invalid", "true");
    codeInput.focus();
    return;
  }
  codeError.hidden = true;
  codeInput.setAttribute("aria-invalid", "false");
  window.location.assign(`/j/${code}`);
});

for (const field of [input, passcodeInput]) {
  field.addEventListener("input", () => {
    if (!errorBox.hidden) showError("");
  });
}

// Rooms created (or managed) on this device that have not expired.
const rooms = memory
  .hostedRooms()
  .filter((room) => !room.expires_at || Date.parse(room.expires_at) > Date.now());
if (rooms.length) {
  const list = /** @type {HTMLUListElement} */ (document.getElementById("room-list"));
  for (const room of rooms) {
    list.append(
      h(
        "li",
        { class: "room-item" },
        h("a", { class: "room-link", href: room.host_url }, room.title || "Untitled room"),
        room.expires_at
          ? h("span", { class: "muted" }, `Open until ${formatDateTime(room.expires_at)}`)
          : null,
      ),
    );
  }
  /** @type {HTMLElement} */ (document.getElementById("my-rooms")).hidden = false;
}
