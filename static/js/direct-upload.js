// @ts-check
// Direct uploads (docs/API.md "Direct uploads"), the guest page's one upload path on every
// storage backend (docs/decisions/0025-one-upload-path-for-the-guest-page.md): the bytes go
// straight to where the service says (the object store's presigned POST form or PUT URL; on
// the local folder, the service's own signed PUT), then the service is told to process them
// and is asked, with backoff, how that ended. The pure pieces are exported for tests/js;
// uploader.js drives them.

import { ApiError, errorFromResponse } from "./api.js";
import { BAD_RESPONSE_MESSAGE, STATUS_MESSAGES } from "./messages.js";

/** Polling the upload's state: first wait, growth factor and longest wait, ms. */
export const POLL = { firstMs: 250, factor: 1.5, maxMs: 3_000 };

/**
 * The HTTP status `POST .../images` answers for a failed upload's error code (the
 * state's error carries the code only; the queue decides retries and messages by status).
 */
const FAILURE_STATUS = {
  file_too_large: 413,
  unsupported_media_type: 415,
  corrupt_image: 422,
  image_too_large: 422,
  busy: 503,
  insufficient_storage: 507,
  internal_error: 500,
  guest_quota_reached: 429,
  room_quota_reached: 429,
  room_storage_full: 507,
  uploads_paused: 409,
  room_closed: 409,
};

/**
 * Codes of a refused byte transfer or completion that a fresh upload (asked again) fixes:
 * the URL expired or was used up, or the bytes did not arrive.
 */
const ASK_AGAIN = new Set(["upload_url_expired", "upload_url_invalid", "upload_completed", "upload_not_received", "upload_not_found"]);

/**
 * The `content_type` values `POST .../uploads` takes (web/images/direct.py DECLARED_TYPES);
 * the service still decides the real type from the bytes.
 */
export const DECLARED_TYPES = new Set([
  "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif",
  "image/heic-sequence", "image/heif-sequence", "image/avif",
]);
/** Leading bytes enough to name an accepted type (an `ftyp` box's brands included). */
export const SNIFF_BYTES = 64;

/**
 * The accepted type a file's leading bytes show, or null: the magic numbers the service reads
 * (web/pipeline/formats.py: JPEG SOI, PNG signature, GIF87a/89a, RIFF....WEBP, an ISO/IEC
 * 14496-12 `ftyp` box, AVIF by its avif/avis brands, else HEIF).
 * @param {Uint8Array} head the file's first bytes (SNIFF_BYTES is enough)
 * @returns {string|null}
 */
export function sniffedType(head) {
  const ascii = (start, end) => String.fromCharCode(...head.subarray(start, end));
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
  if (ascii(0, 8) === "\x89PNG\r\n\x1a\n") return "image/png";
  if (ascii(0, 6) === "GIF87a" || ascii(0, 6) === "GIF89a") return "image/gif";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  if (ascii(4, 8) === "ftyp") return /avi[fs]/.test(ascii(8, head.length)) ? "image/avif" : "image/heif";
  return null;
}

/**
 * The type to declare for a blob: the browser's when the service takes it, else the one its
 * leading bytes show (some phones give a HEIC photo no type, or `image/jpg`), else whatever
 * the browser said (the service then refuses it, 415, as it would refuse the bytes).
 * @param {string} blobType the Blob's `type`
 * @param {Uint8Array} head the blob's first bytes
 * @returns {string}
 */
export function declaredType(blobType, head) {
  const given = blobType.toLowerCase();
  if (DECLARED_TYPES.has(given)) return given;
  return sniffedType(head) || given || "application/octet-stream";
}

/**
 * The JSON body of `POST .../uploads` for a blob of type `type` (see declaredType).
 * @param {{blob: Blob, type: string, name: string, caption: string|null}} item
 * @returns {{filename: string, content_type: string, size: number, caption?: string}}
 */
export function declaredUpload({ blob, type, name, caption }) {
  /** @type {{filename: string, content_type: string, size: number, caption?: string}} */
  const body = { filename: name || "photo", content_type: type, size: blob.size };
  if (caption) body.caption = caption;
  return body;
}

/**
 * What to send to the upload's target, in the wire contract's order: for `POST` a FormData
 * with every field as given, then the file last as `file`; for `PUT` the blob itself with
 * the given headers.
 * @param {{method: string, fields?: Record<string, string>, headers?: Record<string, string>}} target
 * @param {Blob} blob
 * @param {string} name
 * @returns {{body: FormData|Blob, headers: Record<string, string>}}
 */
export function targetRequest(target, blob, name) {
  if (target.method === "POST") {
    const form = new FormData();
    for (const [field, value] of Object.entries(target.fields || {})) form.append(field, value);
    form.append("file", blob, name || "photo");
    return { body: form, headers: {} };
  }
  return { body: blob, headers: { ...(target.headers || {}) } };
}

/**
 * Wait before state poll number `attempt` (1-based), ms: growing by POLL.factor up to POLL.maxMs.
 * @param {number} attempt
 * @returns {number}
 */
export function pollDelayMs(attempt) {
  return Math.round(Math.min(POLL.maxMs, POLL.firstMs * POLL.factor ** Math.max(0, attempt - 1)));
}

/**
 * The upload's state (`GET .../uploads/{id}`) as the queue's outcome.
 * `askedAt`: the service's clock when the upload was asked for (its `Date` header, ms), or
 * null: an image created before it was already in the room (a duplicate, "already shared").
 * @param {any} state
 * @param {number|null} askedAt
 * @returns {{kind: "processing"} | {kind: "done", image: any, duplicate: boolean} | {kind: "failed", error: ApiError}}
 */
export function uploadOutcome(state, askedAt) {
  if (!state || typeof state.status !== "string") {
    return { kind: "failed", error: new ApiError(502, "bad_response", BAD_RESPONSE_MESSAGE) };
  }
  if (state.status === "processing") return { kind: "processing" };
  if (state.status === "done" && state.image) {
    const created = Date.parse(state.image.created_at);
    // Whole seconds in the Date header: only an image older by a second is someone else's.
    const duplicate = askedAt != null && Number.isFinite(created) && created < askedAt - 1000;
    return { kind: "done", image: state.image, duplicate };
  }
  if (state.status === "failed" && state.error) {
    const code = String(state.error.code || "upload_failed");
    const status = FAILURE_STATUS[code] ?? 422;
    return { kind: "failed", error: new ApiError(status, code, state.error.message || STATUS_MESSAGES[status] || BAD_RESPONSE_MESSAGE) };
  }
  return { kind: "failed", error: new ApiError(502, "bad_response", BAD_RESPONSE_MESSAGE) };
}

/**
 * An error of the byte transfer or of `complete` as the queue should see it: a URL that
 * expired or was used up, or bytes that never arrived, become a passing failure (503), so the
 * queue's retry asks for a fresh upload; a store's own refusal (S3's XML, not our JSON) the
 * same, except a body over the policy's size (413).
 * @param {ApiError} error
 * @param {string} text the response text
 * @param {boolean} fromStore whether it came from the object store (not the service)
 * @returns {ApiError}
 */
export function transferError(error, text, fromStore) {
  if (ASK_AGAIN.has(error.code)) return new ApiError(503, error.code, error.message, error.retryAfter);
  if (fromStore && error.code.startsWith("http_")) {
    if (/EntityTooLarge/.test(text)) return new ApiError(413, "file_too_large", STATUS_MESSAGES[413] || error.message);
    if (error.status >= 400 && error.status < 500 && error.status !== 429) {
      return new ApiError(503, "upload_refused_by_store", error.message, error.retryAfter);
    }
  }
  return error;
}

/**
 * Parse a JSON answer, or the ApiError it is.
 * @param {number} status
 * @param {string} text
 * @param {string|null} retryAfter
 * @returns {any}
 */
export function jsonAnswer(status, text, retryAfter) {
  if (status < 200 || status >= 300) throw errorFromResponse(status, text, retryAfter);
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(502, "bad_response", BAD_RESPONSE_MESSAGE);
  }
}
