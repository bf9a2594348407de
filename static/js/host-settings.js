// @ts-check
// The host page's controls of the room's settings: the live switches (blank the wall, accept
// photos, approve first), the wall's layout, QR size, captions and passcode, and the settings form
// (title, expiry, passcode, limits, the wall's seconds per new photo). Switches and choices apply at once through PATCH; the
// form applies on "Save changes". Changes made elsewhere (another host tab) arrive through
// render(), which leaves fields the host is editing alone.

import { ApiError } from "./api.js";
import { mergeRoom, roomSettings } from "./room-settings.js";
import { formatDateTime, h, toast } from "./ui.js";

/**
 * An element of this page's template (it renders every id looked up here).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** What each instant change tells the host (also read out by screen readers: toasts are a live region). */
const ANNOUNCE = {
  wall_blanked: (on) => (on ? "The wall is blanked: it shows only the title." : "The wall shows the photos again."),
  uploads_open: (on) => (on ? "Guests can share photos again." : "Uploads are paused."),
  moderation: (mode) =>
    mode === "approve" ? "New photos now wait for your approval." : "New photos now go straight to the wall.",
  wall_mode: (mode) => (mode === "grid" ? "The wall now shows a grid of photos." : "The wall now spotlights one photo at a time."),
  wall_qr_size: (size) => (size === "off" ? "The wall hides the QR code." : `The wall shows a ${size} QR code.`),
  wall_captions: (on) => (on ? "The wall shows captions and names." : "The wall hides captions and names."),
  wall_intermission_minutes: (minutes) =>
    minutes
      ? `The wall shows its QR code full screen every ${minutes} minutes.`
      : "The wall no longer shows its QR code full screen.",
  wall_intermission_seconds: (seconds) => `The full-screen QR code now stays up for ${seconds} seconds.`,
  wall_show_passcode: (on) =>
    on ? "The wall shows the passcode." : "The wall no longer shows the passcode: guests ask you for it.",
  require_join: (on) =>
    on ? "Only guests who joined can share photos now." : "Anyone with the link can share photos now.",
  downscale_uploads: (on) =>
    on ? "Guests' large photos are now made smaller before sending." : "Guests now send their photos at full size.",
  keep_location: (on) =>
    on ? "New photos now keep their location." : "The location is now removed from new photos.",
};

const MEGABYTE = 1_000_000;

/** The settings form's fields: input id, and how values go between the input and the API. */
const FORM_FIELDS = {
  title: { id: "setting-title", read: (input) => input.value.trim(), show: (room) => room.title || "" },
  expires_at: {
    id: "setting-expires",
    read: (input) => input.value,
    show: (room) => toLocalInput(room.expires_at),
    send: (value) => new Date(value).toISOString(),
  },
  passcode: {
    id: "setting-passcode",
    read: (input) => input.value.trim(),
    show: (room) => room.passcode || "",
    send: (value) => value || null,
  },
  max_uploads_per_guest: quotaField("setting-guest-quota", "max_uploads_per_guest"),
  max_images: quotaField("setting-room-quota", "max_images"),
  wall_min_seconds: {
    id: "setting-wall-min-seconds",
    read: (input) => (input.validity.badInput ? "invalid" : input.value.trim()),
    show: (room) => String(room.wall_min_seconds),
    send: (value) => Number(value),
  },
  // Shown and typed in megabytes, stored in bytes.
  max_bytes: {
    id: "setting-storage-quota",
    read: (input) => (input.validity.badInput ? "invalid" : input.value.trim()),
    show: (room) => (room.max_bytes == null ? "" : String(Math.round(room.max_bytes / MEGABYTE))),
    send: (value) => (value === "" ? null : Number(value) * MEGABYTE),
  },
};

function quotaField(id, name) {
  return {
    id,
    read: (input) => (input.validity.badInput ? "invalid" : input.value.trim()),
    show: (room) => (room[name] == null ? "" : String(room[name])),
    send: (value) => (value === "" ? null : Number(value)),
  };
}

/** "2025-06-01T18:30" in local time, for a datetime-local input. */
export function toLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

export class RoomControls {
  /**
   * @param {{patch: (changes: object) => Promise<object>, reload: () => Promise<void>,
   *          onRender?: (state: object) => void}} options
   *   patch: sends a PATCH with the host key and resolves to the host view;
   *   reload: fetches the host view again and renders it (after a failed change);
   *   onRender: told the settings every time they are shown.
   */
  constructor({ patch, reload, onRender = () => {} }) {
    this.patch = patch;
    this.reload = reload;
    this.onRender = onRender;
    this.state = null;
    this.form = /** @type {HTMLFormElement} */ ($("settings-form"));

    for (const toggle of /** @type {NodeListOf<HTMLButtonElement>} */ (
      document.querySelectorAll('[role="switch"][data-setting]')
    )) {
      toggle.addEventListener("click", () => this.toggle(toggle));
    }
    for (const radio of /** @type {NodeListOf<HTMLInputElement>} */ (
      document.querySelectorAll('input[type="radio"][data-setting]')
    )) {
      radio.addEventListener("change", () => {
        const value = radio.dataset.type === "number" ? Number(radio.value) : radio.value;
        if (radio.checked) this.change({ [/** @type {string} */ (radio.dataset.setting)]: value });
      });
    }
    this.form.addEventListener("input", () => this.updateFormButtons());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    $("intermission-duration").addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveIntermissionSeconds();
    });
    $("settings-reset").addEventListener("click", () => {
      this.fillForm({ force: true });
      this.clearErrors();
    });
  }

  /** Show `room` (a host view, or a public view merged into the last one). */
  render(room) {
    const previous = this.state;
    this.state = roomSettings(room);
    const state = this.state;
    const closed = state.closed;

    setSwitch($("blank-toggle"), state.wall_blanked);
    setSwitch($("uploads-toggle"), state.uploads_open);
    setSwitch($("moderation-toggle"), state.moderation === "approve");
    setSwitch($("captions-toggle"), state.wall_captions);
    setSwitch($("require-join-toggle"), state.require_join);
    setSwitch($("downscale-uploads-toggle"), state.downscale_uploads);
    setSwitch($("keep-location-toggle"), state.keep_location);
    setSwitch($("show-passcode-toggle"), state.wall_show_passcode);
    $("show-passcode-setting").hidden = !state.passcode_required;
    for (const radio of /** @type {NodeListOf<HTMLInputElement>} */ (
      document.querySelectorAll('input[type="radio"][data-setting]')
    )) {
      radio.checked = String(state[/** @type {string} */ (radio.dataset.setting)]) === radio.value;
    }
    for (const control of /** @type {NodeListOf<HTMLInputElement | HTMLButtonElement>} */ (
      document.querySelectorAll(
        "[data-setting], #settings-form :is(input, button), #intermission-duration :is(input, button)",
      )
    )) {
      control.disabled = closed;
    }
    // Left alone while the host is typing a new duration.
    const seconds = /** @type {HTMLInputElement} */ ($("intermission-seconds"));
    if (document.activeElement !== seconds) seconds.value = String(state.wall_intermission_seconds);
    this.fillForm({ previous });
    this.updateFormButtons();

    $("room-title").textContent = state.title;
    $("expires").textContent = formatDateTime(state.expires_at);
    $("expires").setAttribute("datetime", state.expires_at);
    /** @type {Text} */ ($("expires-line").firstChild).textContent = closed ? "Closed · photos kept until " : "Open until ";
    $("closed-banner").hidden = !closed;
    $("close-room").hidden = closed;
    $("passcode-row").hidden = !state.passcode;
    $("passcode-value").textContent = state.passcode || "";
    this.renderBadges();
    this.onRender(state);
  }

  renderBadges() {
    const state = this.state;
    const badges = [];
    if (state.closed) badges.push(["Closed", "danger"]);
    else if (!state.uploads_open) badges.push(["Uploads paused", "warning"]);
    if (state.moderation === "approve") badges.push(["Approval on", "info"]);
    if (state.passcode_required) badges.push(["Passcode", "info"]);
    if (state.wall_blanked) badges.push(["Wall blanked", "warning"]);
    $("badges").replaceChildren(
      ...badges.map(([text, kind]) => h("span", { class: `badge badge-${kind}` }, text)),
    );
  }

  /** Send the intermission's duration (whole seconds, 5 to 120), or say what is wrong with it. */
  async saveIntermissionSeconds() {
    const input = /** @type {HTMLInputElement} */ ($("intermission-seconds"));
    const error = $("error-wall_intermission_seconds");
    const value = input.value.trim();
    const ok = !input.validity.badInput && /^\d+$/.test(value) && Number(value) >= 5 && Number(value) <= 120;
    error.textContent = ok ? "" : "Enter a whole number of seconds from 5 to 120.";
    error.hidden = ok;
    if (ok) input.removeAttribute("aria-invalid");
    else {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.blur(); // render() shows what the server kept
    await this.change({ wall_intermission_seconds: Number(value) });
  }

  toggle(button) {
    const field = button.dataset.setting;
    const on = button.getAttribute("aria-checked") !== "true";
    this.change({ [field]: field === "moderation" ? (on ? "approve" : "off") : on });
  }

  /** Apply an instant change: show it at once, send it, then show what the server kept. */
  async change(changes) {
    if (!this.state) return;
    this.render(mergeRoom(this.state, changes));
    try {
      const view = await this.patch(changes);
      this.render(view);
      for (const [field, value] of Object.entries(changes)) {
        if (ANNOUNCE[field]) toast(ANNOUNCE[field](value), "success");
      }
    } catch (error) {
      toast(error.message, "error", 6000);
      await this.reload().catch(() => {});
    }
  }

  // ---- Settings form ----------------------------------------------------------------------

  isDirty(field, room = this.state) {
    if (!room) return false;
    const spec = FORM_FIELDS[field];
    return spec.read($(spec.id)) !== spec.show(room);
  }

  /** Put the server's values in the fields the host is not editing (all of them with force). */
  fillForm({ previous = null, force = false } = {}) {
    for (const [field, spec] of Object.entries(FORM_FIELDS)) {
      const editing = !force && previous && this.isDirty(field, previous);
      if (!editing) /** @type {HTMLInputElement} */ ($(spec.id)).value = spec.show(this.state);
    }
    this.updateFormButtons();
  }

  updateFormButtons() {
    const dirty = Object.keys(FORM_FIELDS).some((field) => this.isDirty(field));
    const closed = Boolean(this.state && this.state.closed);
    /** @type {HTMLButtonElement} */ ($("settings-save")).disabled = closed || !dirty;
    /** @type {HTMLButtonElement} */ ($("settings-reset")).disabled = closed || !dirty;
  }

  clearErrors() {
    for (const field of Object.keys(FORM_FIELDS)) this.fieldError(field, "");
  }

  fieldError(field, message) {
    const box = $(`error-${field}`);
    const input = $(FORM_FIELDS[field].id);
    box.textContent = message;
    box.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  /** Check what the browser can check; returns the first field in error, or null. */
  /** @returns {keyof typeof FORM_FIELDS | null} the first field in error, or null */
  validate() {
    this.clearErrors();
    /** @type {keyof typeof FORM_FIELDS | null} */
    let first = null;
    const fail = (field, message) => {
      this.fieldError(field, message);
      first = first || field;
    };
    if (!FORM_FIELDS.title.read(/** @type {HTMLInputElement} */ ($("setting-title")))) fail("title", "The room needs a title.");
    const expires = FORM_FIELDS.expires_at.read(/** @type {HTMLInputElement} */ ($("setting-expires")));
    if (this.isDirty("expires_at") && (!expires || Number.isNaN(Date.parse(expires)))) {
      fail("expires_at", "Pick the date and time the room should close.");
    }
    const passcode = FORM_FIELDS.passcode.read(/** @type {HTMLInputElement} */ ($("setting-passcode")));
    if (passcode && (passcode.length < 4 || passcode.length > 64)) {
      fail("passcode", "A passcode has 4 to 64 characters (or leave it empty).");
    }
    for (const field of ["max_uploads_per_guest", "max_images", "max_bytes"]) {
      const value = FORM_FIELDS[field].read($(FORM_FIELDS[field].id));
      if (value !== "" && !/^\d+$/.test(value)) fail(field, "Enter a whole number, or leave it empty.");
    }
    const minSeconds = FORM_FIELDS.wall_min_seconds.read(/** @type {HTMLInputElement} */ ($("setting-wall-min-seconds")));
    if (this.isDirty("wall_min_seconds") && (!/^\d+$/.test(minSeconds) || Number(minSeconds) < 2 || Number(minSeconds) > 60)) {
      fail("wall_min_seconds", "Enter a whole number of seconds from 2 to 60.");
    }
    return first;
  }

  async save() {
    const invalid = this.validate();
    if (invalid) {
      $(FORM_FIELDS[invalid].id).focus();
      return;
    }
    const changes = {};
    for (const [field, spec] of Object.entries(FORM_FIELDS)) {
      if (!this.isDirty(field)) continue;
      const value = spec.read($(spec.id));
      changes[field] = spec.send ? spec.send(value) : value;
    }
    if (!Object.keys(changes).length) return;
    const button = /** @type {HTMLButtonElement} */ ($("settings-save"));
    button.disabled = true;
    try {
      const view = await this.patch(changes);
      this.render(view);
      this.fillForm({ force: true });
      toast("Settings saved.", "success");
    } catch (error) {
      const field = error instanceof ApiError && error.code.startsWith("invalid_") ? error.code.slice(8) : null;
      if (field && FORM_FIELDS[field]) {
        this.fieldError(field, error.message);
        $(FORM_FIELDS[field].id).focus();
      } else {
        toast(error.message, "error", 6000);
      }
      this.updateFormButtons();
    }
  }
}

function setSwitch(button, on) {
  button.setAttribute("aria-checked", on ? "true" : "false");
}
