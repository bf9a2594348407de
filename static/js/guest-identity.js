// @ts-check
// Who the guest is in a room, without accounts: joining sets a signed HTTP-only cookie that
// the browser sends with every request (uploads, deletes, the live connection), so this page
// never holds the key. Only the display name is remembered here, to prefill the next join.

import { api, ApiError, memory, roomApi } from "./api.js";

const NAME_KEY = "imageshark.guest-name";

/** The name this browser last joined any room with ("" when none). */
export function rememberedName() {
  try {
    return localStorage.getItem(NAME_KEY) || "";
  } catch {
    return "";
  }
}

function rememberName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Private mode: the guest types it again next time.
  }
}

/**
 * Whether this browser joined `token`'s room before (it then holds the room's cookie, unless
 * it expired). Lets the page skip asking the server on a first visit.
 */
export function joinedBefore(token) {
  const stored = memory.participant(token);
  return Boolean(stored && stored.id != null);
}

/** Remember (or, with null, forget) that this browser joined `token`'s room as {id, name}. */
export function rememberJoined(token, participant) {
  memory.setParticipant(token, participant ? { id: participant.id, name: participant.name } : null);
}

/**
 * Drop what older versions of this page kept in localStorage for `token` (the participant key
 * in clear): the cookie is the identity now; only the id and name stay.
 */
export function forgetStoredKey(token) {
  const stored = memory.participant(token);
  if (stored && stored.participant_key) rememberJoined(token, stored);
}

/**
 * The guest as the room knows them: {id, name, upload_count, max_uploads, uploads_left}
 * (the last two null when unlimited), or null when this browser has not joined (401).
 * @throws {ApiError} anything but 401 (network, room gone…)
 */
export async function fetchMe(token) {
  try {
    return await api(roomApi(token, "/me"));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

/**
 * Join `token`'s room as `name` (with `passcode` when the room has one). The server answers
 * with the participant and sets the cookie. Resolves {id, name}.
 * @throws {ApiError} 401 passcode_required, 403 wrong_passcode, 409 room_closed,
 *   422 invalid_name, 429 rate_limited (retryAfter in seconds)…
 */
export async function join(token, name, passcode = /** @type {string|null} */ (null)) {
  const body = { name };
  if (passcode) body.passcode = passcode;
  const joined = await api(roomApi(token, "/participants"), { method: "POST", json: body });
  rememberName(joined.name || name);
  rememberJoined(token, joined);
  return { id: joined.id, name: joined.name };
}

/**
 * Rename the guest in `token`'s room (the same participant: earlier photos stay theirs).
 * Resolves the caller as GET /me does: {id, name, upload_count, max_uploads, uploads_left}.
 * @throws {ApiError} 422 invalid_name, 401 not_joined, network errors
 */
export async function renameMe(token, name) {
  const renamed = await api(roomApi(token, "/me"), { method: "PATCH", json: { name } });
  rememberName(renamed.name || name);
  rememberJoined(token, renamed);
  return renamed;
}

/**
 * Every upload of the caller in the room, pending ones included, in upload order.
 * @throws {ApiError} 401 not_joined
 */
export async function fetchMyImages(token) {
  const all = [];
  let after = null;
  for (;;) {
    const query = new URLSearchParams({ mine: "true", limit: "200" });
    if (after != null) query.set("after", String(after));
    const page = await api(`${roomApi(token, "/images")}?${query}`);
    const items = Array.isArray(page?.items) ? page.items : [];
    all.push(...items);
    if (page?.next_after == null || !items.length) return all;
    after = page.next_after;
  }
}

/** "12 of 200 photos left", or null when the guest has no limit. */
export function quotaText(me) {
  if (!me || me.max_uploads == null || me.uploads_left == null) return null;
  const left = Math.max(0, me.uploads_left);
  return `${left} of ${me.max_uploads} photo${me.max_uploads === 1 ? "" : "s"} left`;
}
