// Host page: the "room expires soon" banner (rendered by the server when the room expires
// within a week). Shows the date in the host's time zone and, when the room's lifetime allows
// a later expiry, an Extend button that PATCHes expires_at to the latest time allowed.
// Accounts do not exist yet; when they do, the same warning belongs on the account page.

import { api, memory, readRoomData, roomApi } from "./api.js";
import { formatDateTime, toast } from "./ui.js";

// Ask for a little less than the longest lifetime so the server's "at most N hours from now"
// check, run a moment later, still passes.
const MARGIN_MS = 60_000;

const banner = document.getElementById("expiry-warning");
const room = readRoomData();

if (banner && room) {
  const expiresAt = new Date(banner.dataset.expiresAt);
  const longestMs = Number(banner.dataset.longestHours) * 3_600_000;
  const date = document.getElementById("expiry-warning-date");
  date.textContent = formatDateTime(banner.dataset.expiresAt);
  const button = document.getElementById("extend-room");
  const latest = () => new Date(Date.now() + longestMs - MARGIN_MS);
  if (!(latest() > expiresAt)) {
    button.remove(); // the room already expires as late as its lifetime allows
  } else {
    button.addEventListener("click", async () => {
      const key = memory.hostKey(room.token);
      button.disabled = true;
      try {
        const view = await api(roomApi(room.token), {
          method: "PATCH",
          json: { expires_at: latest().toISOString() },
          headers: key ? { Authorization: `Bearer ${key}` } : {},
        });
        banner.hidden = true;
        toast(`Room extended: open until ${formatDateTime(view.expires_at)}.`, "success", 6000);
      } catch (error) {
        button.disabled = false;
        toast(error.message, "error", 6000);
      }
    });
  }
}
