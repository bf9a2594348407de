// @ts-check
// Host page: the "room expires soon" banner (rendered by the server when the room expires
// within a week). Shows the date in the host's time zone and, when the room's lifetime allows
// a later expiry, an Extend button that PATCHes expires_at to the latest time allowed.
// Also the gallery_grace_days control: how many days the photos stay viewable, read-only,
// after the room ends (0 = off).
// Accounts do not exist yet; when they do, the same warning belongs on the account page.

import { api, memory, readRoomData, roomApi } from "./api.js";
import { formatDateTime, toast } from "./ui.js";

// Ask for a little less than the longest lifetime so the server's "at most N hours from now"
// check, run a moment later, still passes.
const MARGIN_MS = 60_000;

const banner = /** @type {HTMLElement} */ (document.getElementById("expiry-warning"));
const room = readRoomData();

if (banner && room) {
  const expiresAt = new Date(banner.dataset.expiresAt || "");
  const longestMs = Number(banner.dataset.longestHours) * 3_600_000;
  const date = /** @type {HTMLTimeElement} */ (document.getElementById("expiry-warning-date"));
  date.textContent = formatDateTime(banner.dataset.expiresAt);
  const button = /** @type {HTMLButtonElement} */ (document.getElementById("extend-room"));
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

const graceForm = /** @type {HTMLFormElement} */ (document.getElementById("gallery-grace"));
if (graceForm && room) {
  const input = /** @type {HTMLInputElement} */ (document.getElementById("grace-days"));
  graceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const days = Number(input.value);
    if (!Number.isInteger(days) || days < 0 || days > 90) {
      toast("Enter a whole number of days from 0 to 90.", "error", 6000);
      return;
    }
    const key = memory.hostKey(room.token);
    try {
      const view = await api(roomApi(room.token), {
        method: "PATCH",
        json: { gallery_grace_days: days },
        headers: key ? { Authorization: `Bearer ${key}` } : {},
      });
      const kept = view.gallery_grace_days;
      input.value = String(kept || 0);
      toast(
        kept
          ? `Photos stay viewable for ${kept} day${kept === 1 ? "" : "s"} after the room ends.`
          : "Photos are removed from view as soon as the room ends.",
        "success",
      );
    } catch (error) {
      toast(error.message, "error", 6000);
    }
  });
}
