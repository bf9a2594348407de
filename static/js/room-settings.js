// @ts-check
// The room's host-controlled settings as the pages use them: the fields of the room view
// (docs/API.md, "Host controls, moderation and guests") with the documented defaults filled
// in, so a page rendered by an older server, or a partial view, still has every field.

export const WALL_MODES = ["spotlight", "grid"];
export const QR_SIZES = ["off", "small", "medium", "large"];
export const MODERATION_MODES = ["off", "approve"];

const DEFAULTS = {
  uploads_open: true,
  moderation: "off",
  passcode_required: false,
  wall_mode: "spotlight",
  wall_qr_size: "medium",
  wall_captions: true,
  wall_blanked: false,
  wall_min_seconds: 5,
  wall_intermission_minutes: 0,
  wall_intermission_seconds: 20,
  max_uploads_per_guest: null,
  max_images: null,
  max_bytes: null,
  require_join: false,
  downscale_uploads: false,
  keep_location: false,
  wall_show_passcode: false,
  closed_at: null,
};

/**
 * A copy of `room` with every setting present and valid (unknown values fall back to the
 * default), plus `closed` (boolean) derived from `closed` or `closed_at`.
 * @param {object} room  a room view (public or host)
 * @returns {object}
 */
export function roomSettings(room) {
  const settings = { ...DEFAULTS, ...(room || {}) };
  if (!WALL_MODES.includes(settings.wall_mode)) settings.wall_mode = DEFAULTS.wall_mode;
  if (!QR_SIZES.includes(settings.wall_qr_size)) settings.wall_qr_size = DEFAULTS.wall_qr_size;
  if (!MODERATION_MODES.includes(settings.moderation)) settings.moderation = DEFAULTS.moderation;
  for (const flag of ["uploads_open", "passcode_required", "wall_captions", "wall_blanked", "require_join",
    "downscale_uploads", "keep_location", "wall_show_passcode"]) {
    settings[flag] = settings[flag] == null ? DEFAULTS[flag] : Boolean(settings[flag]);
  }
  const minSeconds = Number(settings.wall_min_seconds);
  if (!Number.isFinite(minSeconds) || minSeconds < 1) settings.wall_min_seconds = DEFAULTS.wall_min_seconds;
  else settings.wall_min_seconds = minSeconds;
  const everyMinutes = Number(settings.wall_intermission_minutes);
  settings.wall_intermission_minutes =
    Number.isInteger(everyMinutes) && everyMinutes >= 0 ? everyMinutes : DEFAULTS.wall_intermission_minutes;
  const intermissionSeconds = Number(settings.wall_intermission_seconds);
  settings.wall_intermission_seconds =
    Number.isFinite(intermissionSeconds) && intermissionSeconds > 0
      ? intermissionSeconds
      : DEFAULTS.wall_intermission_seconds;
  settings.closed = Boolean(settings.closed || settings.closed_at);
  return settings;
}

/**
 * `base` updated with the settings fields present in `update` (a room_updated payload or an
 * API answer); fields `update` lacks keep their value.
 */
export function mergeRoom(base, update) {
  const merged = { ...base };
  for (const [key, value] of Object.entries(update || {})) {
    if (value !== undefined) merged[key] = value;
  }
  return roomSettings(merged);
}

/** Seconds from a `?name=` query parameter (a positive number), or `fallback`. */
export function secondsParam(name, fallback) {
  const raw = new URLSearchParams(window.location.search).get(name);
  const value = raw == null ? NaN : Number(raw);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
