// @ts-check
// The words pages show people for errors, by the API's error code (docs/API.md) or, when the
// answer had none, by HTTP status. Pages decide on codes; the texts live here, in one place.

/** When an answer has no message of its own: by HTTP status (0: the network failed). */
export const STATUS_MESSAGES = {
  0: "Couldn't reach ImageShark. Check your connection and try again.",
  400: "The request was not accepted.",
  401: "You're not allowed to do that.",
  403: "You're not allowed to do that.",
  404: "This room doesn't exist or has expired.",
  409: "That conflicts with the room's current state.",
  413: "This file is too large.",
  415: "This file isn't a supported image.",
  422: "This image seems to be damaged.",
  429: "Too many uploads at once. Please wait a moment.",
  503: "The server is busy. Please try again in a moment.",
};

/**
 * The fallback text for an answer of HTTP `status` that carried no message.
 * @param {number} status
 * @returns {string}
 */
export function statusMessage(status) {
  return STATUS_MESSAGES[/** @type {keyof typeof STATUS_MESSAGES} */ (status)] || `Something went wrong (HTTP ${status}).`;
}

/** The server sent something that is not the JSON it documents. */
export const BAD_RESPONSE_MESSAGE = "The server sent an unexpected answer.";

/**
 * Guest-facing words for a refusal that concerns the room or the guest.
 * @param {{code?: string, message?: string} | null | undefined} error
 * @param {{max_uploads?: number|null} | null} [me] the guest (GET .../me), if known
 * @returns {string}
 */
export function refusalMessage(error, me = null) {
  switch (error && error.code) {
    case "guest_quota_reached":
      return me && me.max_uploads != null
        ? `You've shared ${me.max_uploads} photos, the most this room allows per guest.`
        : "You've reached this room's limit of photos per guest.";
    case "room_quota_reached":
      return "This room is full: it can't take more photos.";
    case "room_storage_full":
      return "This room is out of space: it can't take more photos.";
    case "uploads_paused":
      return "The host has paused uploads. Try again when they reopen.";
    case "room_closed":
      return "This room is closed: no new photos can be shared.";
    case "passcode_required":
    case "not_joined":
    case "join_required":
      return "Please join the room again, then retry.";
    default:
      return (error && error.message) || "Something went wrong.";
  }
}

/**
 * Short reason shown before "Retrying in N s" for an upload that failed for a passing reason.
 * @param {{status: number, message?: string} | null | undefined} error
 * @returns {string}
 */
export function transientReason(error) {
  if (!error || error.status === 0) return "Connection lost.";
  if (error.status === 429) return "Too many uploads at once.";
  if (error.status >= 500) return "The server is busy.";
  return error.message || "Upload failed.";
}

/** Joining a room as a guest (participant page). */
export const JOIN_MESSAGES = {
  wrong_passcode: "That passcode isn't right. Check it with the host and try again.",
  passcode_required: "This room needs a passcode. The host can tell you what it is.",
};

/** The wall's passcode gate: a refused passcode (403 wrong_passcode). */
export const WALL_WRONG_PASSCODE = "That passcode isn't right. Try again.";

/** The host's approval queue: the photo was approved meanwhile (409 not_pending). */
export const ALREADY_APPROVED = "That photo was already approved.";
