// @ts-check
// HTTP helpers shared by every page: JSON calls, the API's error body, page data and
// what this browser remembers about rooms (host keys, participant identities).

import { BAD_RESPONSE_MESSAGE, STATUS_MESSAGES, statusMessage } from "./messages.js";

/** An error answered by the API (or a network failure, status 0). `message` is for people. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: the network failed)
   * @param {string} code the API's error code (`http_<status>` when the body had none)
   * @param {string} message for people
   * @param {number|null} [retryAfter] seconds from Retry-After, or null
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** True when trying again later may succeed (rate limit, overload, network). */
  get retriable() {
    return this.status === 0 || this.status === 429 || this.status === 503;
  }
}

/**
 * Seconds from a Retry-After header (delta-seconds or HTTP date), or null.
 * @param {string|null|undefined} value
 * @returns {number|null}
 */
export function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.round((date - Date.now()) / 1000));
}

/**
 * Build an ApiError from a status, a response text (maybe the JSON error body) and Retry-After.
 * @param {number} status
 * @param {unknown} text the response text, or its already parsed body
 * @param {string|null} [retryAfterHeader]
 * @returns {ApiError}
 */
export function errorFromResponse(status, text, retryAfterHeader = null) {
  let code = "http_" + status;
  let message = null;
  try {
    const body = typeof text === "string" ? JSON.parse(text) : text;
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || null;
    }
  } catch {
    // Not JSON (a proxy's HTML error page, say): fall back to a message for the status.
  }
  if (!message) {
    message = statusMessage(status);
  }
  return new ApiError(status, code, message, parseRetryAfter(retryAfterHeader));
}

/** A network-level failure as an ApiError with status 0. */
export function networkError() {
  return new ApiError(0, "network_error", STATUS_MESSAGES[0]);
}

/**
 * Call the JSON API. Resolves to the parsed body (null for 204); rejects with ApiError.
 * @param {string} path  e.g. "/api/rooms"
 * @param {{method?: string, json?: any, headers?: Record<string,string>, signal?: AbortSignal,
 *          keepalive?: boolean}} [options]
 * @returns {Promise<any>} the JSON body, as the API documents it
 */
export async function api(path, { method = "GET", json, headers = {}, signal, keepalive = false } = {}) {
  /** @type {RequestInit & {headers: Record<string, string>}} */
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    credentials: "same-origin",
    signal,
    keepalive, // true: the request outlives the page (sent from pagehide).
  };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw networkError();
  }
  const text = response.status === 204 ? "" : await response.text();
  if (!response.ok) {
    throw errorFromResponse(response.status, text, response.headers.get("Retry-After"));
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, "bad_response", BAD_RESPONSE_MESSAGE);
  }
}

/** Path of a room's API resource: roomApi(token, "/images") → "/api/rooms/<token>/images". */
export function roomApi(token, suffix = "") {
  return `/api/rooms/${encodeURIComponent(token)}${suffix}`;
}

/** The page data the server put in <script type="application/json" id="room-data">. */
export function readRoomData() {
  const element = document.getElementById("room-data");
  if (!element) return null;
  try {
    return JSON.parse(element.textContent);
  } catch {
    return null;
  }
}

/**
 * Fetch every image of a room with id > after, ascending, page by page.
 * `headers`: extra request headers (e.g. the host's Authorization in a passcode room);
 * `path`: the listing to page through ("/images", or "/pending" for the host's queue).
 * @param {string} token
 * @param {number} [after]
 * @param {{signal?: AbortSignal, onPage?: (items: any[]) => void,
 *          headers?: Record<string, string>, path?: string}} [options]
 * @returns {Promise<any[]>} the image objects, ascending id
 */
export async function fetchImagesAfter(
  token,
  after = 0,
  { signal, onPage, headers = {}, path = "/images" } = {},
) {
  const all = [];
  let cursor = after;
  for (;;) {
    const query = new URLSearchParams({ limit: "200" });
    if (cursor) query.set("after", String(cursor));
    const page = await api(`${roomApi(token, path)}?${query}`, { signal, headers });
    const items = Array.isArray(page?.items) ? page.items : [];
    all.push(...items);
    if (onPage && items.length) onPage(items);
    if (page?.next_after == null || !items.length) return all;
    cursor = page.next_after;
  }
}

// ---- What this browser remembers ------------------------------------------------------------

function readJson(key) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function writeJson(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or full storage: the page still works, it just forgets on reload.
  }
}

function readString(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeString(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // See writeJson.
  }
}

export const memory = {
  hostKey: (token) => readString("imageshark.host." + token),
  setHostKey: (token, key) => writeString("imageshark.host." + token, key),

  /** Set right after creating a room so the host page reveals the key once. */
  keyUnseen: (token) => readString("imageshark.host-key-unseen." + token) === "1",
  setKeyUnseen: (token, unseen) =>
    writeString("imageshark.host-key-unseen." + token, unseen ? "1" : null),

  /** True once this browser's wall joined the (passcode) room: its cookie lets it read. */
  wallJoined: (token) => readString("imageshark.wall-joined." + token) === "1",
  setWallJoined: (token, joined) =>
    writeString("imageshark.wall-joined." + token, joined ? "1" : null),

  /** {id, name, participant_key, previous?: [{id, participant_key}]} or null. */
  participant: (token) => readJson("imageshark.participant." + token),
  setParticipant: (token, value) => writeJson("imageshark.participant." + token, value),

  /** Rooms this browser hosts: [{token, title, host_url, expires_at}], newest first. */
  hostedRooms() {
    const rooms = readJson("imageshark.rooms");
    return Array.isArray(rooms) ? rooms : [];
  },
  rememberHostedRoom(room) {
    const entry = {
      token: room.token,
      title: room.title,
      host_url: room.host_url,
      expires_at: room.expires_at,
    };
    const rooms = memory.hostedRooms().filter((r) => r.token !== room.token);
    rooms.unshift(entry);
    writeJson("imageshark.rooms", rooms.slice(0, 20));
  },
};
