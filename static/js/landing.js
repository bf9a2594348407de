// Landing page: create a room, remember its host key, go to the host page.

import { api, memory } from "./api.js";
import { formatDateTime, h } from "./ui.js";

const form = document.getElementById("create-form");
const input = document.getElementById("room-title");
const errorBox = document.getElementById("create-error");
const submit = form.querySelector("button[type=submit]");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
  input.setAttribute("aria-invalid", message ? "true" : "false");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = input.value.trim();
  if (!title) {
    showError("Give your room a title, so guests know they're in the right place.");
    input.focus();
    return;
  }
  showError("");
  submit.disabled = true;
  submit.querySelector(".btn-label").textContent = "Creating…";
  try {
    const room = await api("/api/rooms", { method: "POST", json: { title } });
    memory.setHostKey(room.token, room.host_key);
    memory.setKeyUnseen(room.token, true);
    memory.rememberHostedRoom(room);
    window.location.assign(room.host_url);
  } catch (error) {
    showError(error.message);
    submit.disabled = false;
    submit.querySelector(".btn-label").textContent = "Create room";
    input.focus();
  }
});

input.addEventListener("input", () => {
  if (!errorBox.hidden) showError("");
});

// Rooms created (or managed) on this device that have not expired.
const rooms = memory
  .hostedRooms()
  .filter((room) => !room.expires_at || Date.parse(room.expires_at) > Date.now());
if (rooms.length) {
  const list = document.getElementById("room-list");
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
  document.getElementById("my-rooms").hidden = false;
}
