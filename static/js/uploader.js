// @ts-check
// The browser's upload queue: one photo per request, a few requests at a time, each retried
// by itself when the network or the server fails it, and never sent twice in a different form.
//
// Life of an item (item.state):
//   "preparing"  the photo is being downscaled / previewed (one at a time: memory on phones)
//   "held"       prepared, waiting for the guest to press Share (caption-each-photo mode)
//   "queued"     ready, waiting for a free upload slot
//   "uploading"  on the wire (item.progress 0-100)
//   "retrying"   failed for a passing reason; sent again at item.retryAt (ms since epoch)
//   "offline"    failed while the browser is offline; sent again as soon as it is online
//   "failed"     gave up: item.error says why; item.retriable says whether Retry may help
//   "pending"    stored, waiting for the host's approval (moderated room)
//   "done"       stored and shown to the room
//
// A retry sends item.blob, the bytes prepared once, so the server recognises a photo it
// already stored (same SHA-256) and ends the upload done with it instead of storing it twice.
//
// Events (CustomEvent on the queue):
//   "change"   {item}                 any change of an item's state, progress or message
//   "added"    {item}                 a new item (before its first "change")
//   "removed"  {item}                 an item left the list
//   "uploaded" {item, image, duplicate} the server stored it, or already had it (duplicate)
//   "refused"  {item, error}          a refusal about the room or the guest (see ROOM_REFUSALS)

import { ApiError, errorFromResponse, networkError, roomApi } from "./api.js";
import { declaredType, declaredUpload, jsonAnswer, SNIFF_BYTES, pollDelayMs, targetRequest, transferError, uploadOutcome } from "./direct-upload.js";

/** Refusals that waiting cannot fix and that concern every photo, not just this one. */
export const ROOM_REFUSALS = new Set([
  "guest_quota_reached",
  "room_quota_reached",
  "room_storage_full",
  "uploads_paused",
  "room_closed",
]);
/** Identity problems: the guest has to join (again) before any photo can go. */
const IDENTITY_REFUSALS = new Set(["passcode_required", "not_joined", "join_required"]);

const DEFAULT_BACKOFF = { baseMs: 1_000, maxMs: 60_000, maxAutoRetries: 8 };
/** No upload progress for this long: the connection is dead even if the OS has not noticed. */
const STALL_MS = 45_000;
/** Once every byte is sent, the server still decodes and stores the photo. */
const PROCESSING_MS = 120_000;

let nextLocalId = 1;

/** Transient failures: the network, a proxy or the server, a rate limit. */
function isTransient(error) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 0 || error.status === 408) return true;
  if (error.status >= 500) return true;
  return error.status === 429 && !ROOM_REFUSALS.has(error.code);
}

/**
 * Delay before retry number `attempt` (1-based), in ms: exponential with "equal jitter"
 * (half fixed, half random, so a room full of phones does not come back in lockstep), never
 * shorter than the server's Retry-After (seconds) when it sent one.
 */
export function retryDelayMs(attempt, retryAfterSeconds, { baseMs, maxMs } = DEFAULT_BACKOFF, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const backoff = ceiling / 2 + random() * (ceiling / 2);
  if (retryAfterSeconds == null) return Math.round(backoff);
  const floor = retryAfterSeconds * 1000;
  // Spread the wake-ups a little past the server's moment, not before it.
  return Math.round(floor + random() * Math.min(1000, baseMs));
}

/** One photo on its way. Read its fields; change it through the queue. */
export class UploadItem {
  constructor(file, caption) {
    this.localId = nextLocalId++;
    this.file = file;
    this.caption = caption;
    this.name = file.name || "photo";
    /** The bytes to send, fixed once prepared: every retry sends exactly these. */
    this.blob = null;
    this.sentSize = null;
    this.downscaled = false;
    this.previewBlob = null;
    this.state = "preparing";
    this.progress = 0;
    this.error = null;
    this.retriable = false;
    /** Sends since the last manual retry (automatic retries stop after maxAutoRetries). */
    this.attempts = 0;
    /** Every send, ever: a 200 after more than one means our own earlier send got through. */
    this.sends = 0;
    this.retryAt = 0;
    this.image = null;
    this.duplicate = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._timer = undefined;
    /** @type {XMLHttpRequest|null} */
    this._xhr = null;
    this._cancelled = false;
    /** Prepared but kept unsent until the queue's send(items). */
    this.hold = false;
    /** The pending-store record id, once kept there (see pending-store.js). */
    /** @type {number|undefined} */
    this.storeId = undefined;
    /** Put back from an earlier visit by restore(). */
    this.restored = false;
    /** Whether the kept record holds the prepared bytes (false: the picked file). */
    /** @type {boolean|undefined} */
    this.storedPrepared = undefined;
  }

  /** Size in bytes of what is (or will be) sent. */
  get size() {
    return this.sentSize ?? this.file.size;
  }

  /** True while the item still needs something to happen (not done, pending or failed). */
  get active() {
    return !["failed", "pending", "done"].includes(this.state);
  }
}

/**
 * @typedef {(item: UploadItem) => Promise<{image: any, duplicate: boolean}>} SendUpload
 * Sends an item's bytes: resolves with the stored image (duplicate: answered 200, the room
 * already had it), rejects with ApiError.
 */

export class UploadQueue extends EventTarget {
  /**
   * @param {{token: string, concurrency?: number,
   *          prepare: (file: File) => Promise<{blob: Blob, name: string, downscaled: boolean, preview: Blob|null}>,
   *          backoff?: {baseMs?: number, maxMs?: number, maxAutoRetries?: number},
   *          send?: SendUpload}} options
   *   prepare: turns a picked file into the bytes to send (see downscale.js); send: how an item
   *   goes to the server (default: the direct flow over XMLHttpRequest, with progress).
   */
  constructor({ token, concurrency = 2, prepare, backoff = DEFAULT_BACKOFF, send }) {
    super();
    this.token = token;
    this.concurrency = concurrency;
    this.prepare = prepare;
    /** @type {SendUpload} */
    this.send_ = send || ((item) => this._sendDirect(item));
    this.backoff = { ...DEFAULT_BACKOFF, ...backoff };
    /** @type {UploadItem[]} oldest first */
    this.items = [];
    this.active = 0;
    this._preparing = false;
    /** A refusal that stops every further send until lifted (see block/unblock). */
    /** @type {ApiError|null} */
    this.blockedBy = null;

    window.addEventListener("online", () => this.retryWaiting());
    /** True when unsent photos are kept in the browser's storage (a reload loses none). */
    this.persistent = false;
    window.addEventListener("beforeunload", (event) => {
      if (this.persistent) return;
      if (this.items.some((item) => item.active)) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  /**
   * Listen to one of the events listed above; `listener` gets it as a CustomEvent (its
   * `detail` as documented).
   * @param {string} type
   * @param {(event: CustomEvent) => void} listener
   * @param {boolean | AddEventListenerOptions} [options]
   */
  // @ts-expect-error: narrower than EventTarget's on purpose, every event here is a CustomEvent
  addEventListener(type, listener, options) {
    super.addEventListener(type, /** @type {EventListener} */ (listener), options);
  }

  /**
   * Add picked files. `hold`: keep them prepared but unsent until send(items) (so the guest
   * can caption each one first). Returns the new items.
   * @param {Iterable<File>} files
   * @param {{caption?: string|null, hold?: boolean}} [options]
   * @returns {UploadItem[]}
   */
  add(files, { caption = null, hold = false } = {}) {
    const added = [];
    for (const file of files) {
      const item = new UploadItem(file, caption || null);
      item.hold = hold;
      this.items.push(item);
      added.push(item);
      this._emit("added", { item });
      this._changed(item);
    }
    this._prepareNext();
    return added;
  }

  /**
   * Put back photos kept from an earlier visit (see pending-store.js): each record's blob is
   * sent as it is (already prepared, so the server recognises bytes it stored before). A
   * record with `failed` comes back as a failed item showing that reason; one kept before it
   * was prepared (`prepared: false`) is prepared first. Returns the items;
   * each carries `storeId` (the record's id).
   * @param {{id: number, name: string, caption: string|null, blob: Blob, prepared?: boolean,
   *          failed: {status: number, code: string, message: string}|null}[]} records
   * @returns {UploadItem[]}
   */
  restore(records) {
    const restored = [];
    for (const record of records) {
      const item = new UploadItem(record.blob, record.caption || null);
      item.name = record.name || "photo";
      item.storeId = record.id;
      item.restored = true;
      // Sent before (maybe stored, answer lost): a 200 then is our own photo, not "already shared".
      item.sends = 1;
      this.items.push(item);
      restored.push(item);
      this._emit("added", { item });
      if (record.prepared === false) {
        // Kept before it was prepared: prepare it now, as a new pick would be.
        item.storedPrepared = false;
        this._changed(item);
        continue;
      }
      item.storedPrepared = true;
      item.blob = record.blob;
      item.sentSize = record.blob.size;
      item.previewBlob = record.blob;
      if (record.failed) {
        const { status, code, message } = record.failed;
        this._fail(item, new ApiError(status, code, message), false);
      } else if (this.blockedBy) {
        this._fail(item, this.blockedBy, this.blockedBy.code !== "room_closed");
      } else {
        this._set(item, "queued");
      }
    }
    this._prepareNext();
    this._pump();
    return restored;
  }

  /** Send held items (after the guest reviewed them). */
  send(items) {
    for (const item of items) {
      item.hold = false;
      if (item.state !== "held") continue;
      if (this.blockedBy) this._fail(item, this.blockedBy, this.blockedBy.code !== "room_closed");
      else this._set(item, "queued");
    }
    this._pump();
  }

  /** Set the caption an unsent item will carry. */
  setCaption(item, caption) {
    item.caption = caption ? caption.trim() || null : null;
  }

  /** Send one failed or waiting item again now, resetting its automatic retries. */
  retry(item) {
    if (!["failed", "retrying", "offline"].includes(item.state)) return;
    if (item.state === "failed" && !item.retriable) return;
    this._requeue(item, { resetAttempts: true });
    this._pump();
  }

  /** "Retry all": every failed-but-retriable item and every item waiting to retry, now. */
  retryAll() {
    // The guest asks to try: let the server decide again (a closed room stays closed).
    if (this.blockedBy && this.blockedBy.code !== "room_closed") this.blockedBy = null;
    for (const item of this.items) {
      if (item.state === "retrying" || item.state === "offline" || (item.state === "failed" && item.retriable)) {
        this._requeue(item, { resetAttempts: true });
      }
    }
    this._pump();
  }

  /**
   * Back online: items waiting on the network go now, without waiting for their timers.
   * Items that gave up stay failed until the guest asks (Retry / Retry all).
   */
  retryWaiting() {
    for (const item of this.items) {
      if (item.state === "retrying" || item.state === "offline") {
        this._requeue(item, { resetAttempts: item.state === "offline" });
      }
    }
    this._pump();
  }

  /** Items the guest can retry now (failed-but-retriable or waiting). */
  get retriableCount() {
    return this.items.filter(
      (item) => item.state === "retrying" || item.state === "offline" || (item.state === "failed" && item.retriable),
    ).length;
  }

  /** Drop an item that is not on the wire (cancel before sending, or forget a failure). */
  remove(item) {
    if (item.state === "uploading" && item._xhr) {
      item._cancelled = true;
      item._xhr.abort();
    }
    clearTimeout(item._timer);
    this.items = this.items.filter((other) => other !== item);
    this._emit("removed", { item });
    this._pump();
  }

  /** Forget the finished items (done, pending, failed). */
  clearFinished() {
    for (const item of [...this.items]) if (!item.active) this.remove(item);
  }

  /** The item that sent image `id`, if any. */
  itemForImage(id) {
    return this.items.find((item) => item.image && item.image.id === id) || null;
  }

  /** Mark the item holding image `id` approved (its image_added arrived). */
  markApproved(id) {
    const item = this.itemForImage(id);
    if (item && item.state === "pending") {
      item.image = { ...item.image, status: "approved" };
      this._set(item, "done");
    }
  }

  /**
   * Stop sending: every item not yet stored fails with `error` (e.g. room closed, uploads
   * paused, quota reached). Items on the wire finish; the server answers them itself.
   */
  block(error) {
    this.blockedBy = error;
    // A closed room stays closed; anything else (paused, quota) can change, so Retry may help.
    const retriable = error.code !== "room_closed";
    for (const item of this.items) {
      if (["queued", "retrying", "offline"].includes(item.state)) this._fail(item, error, retriable);
    }
  }

  /** Let new photos go again after a block of kind `code`, leaving the failed ones failed. */
  lift(code) {
    if (this.blockedBy && this.blockedBy.code === code) {
      this.blockedBy = null;
      this._pump();
    }
  }

  /**
   * Lift a block of kind `code` (uploads reopened, quota raised): the items it failed are
   * queued again; returns how many.
   */
  unblock(code) {
    if (this.blockedBy && this.blockedBy.code === code) this.blockedBy = null;
    let count = 0;
    for (const item of this.items) {
      if (item.state === "failed" && item.error && item.error.code === code) {
        this._requeue(item, { resetAttempts: true });
        count += 1;
      }
    }
    this._pump();
    return count;
  }

  // ---- internals -------------------------------------------------------------------------

  async _prepareNext() {
    if (this._preparing) return;
    this._preparing = true;
    try {
      for (;;) {
        const item = this.items.find((candidate) => candidate.state === "preparing");
        if (!item) break;
        let prepared;
        try {
          prepared = await this.prepare(item.file);
        } catch {
          prepared = { blob: item.file, name: item.name, downscaled: false, preview: null };
        }
        if (!this.items.includes(item)) continue; // removed meanwhile
        item.blob = prepared.blob;
        item.sentSize = prepared.blob.size;
        item.name = prepared.name;
        item.downscaled = prepared.downscaled;
        item.previewBlob = prepared.preview;
        if (item.hold) this._set(item, "held");
        else if (this.blockedBy) this._fail(item, this.blockedBy, this.blockedBy.code !== "room_closed");
        else this._set(item, "queued");
        this._pump();
      }
    } finally {
      this._preparing = false;
    }
  }

  _pump() {
    while (this.active < this.concurrency && !this.blockedBy) {
      const next = this.items.find((item) => item.state === "queued");
      if (!next) break;
      this.active += 1;
      this._upload(next).finally(() => {
        this.active -= 1;
        this._pump();
      });
    }
  }

  async _upload(item) {
    item.attempts += 1;
    item.sends += 1;
    item.progress = 0;
    this._set(item, "uploading");
    try {
      const { image, duplicate } = await this.send_(item);
      item.image = image;
      // 200 to a retry: the earlier send was stored, only its answer got lost. Only a photo
      // the room had before this item is "already shared".
      item.duplicate = duplicate && item.sends === 1;
      item.error = null;
      item.progress = 100;
      // Stored: nothing will be sent again, so a downscaled copy need not stay in memory.
      item.blob = null;
      this._set(item, image.status === "pending" ? "pending" : "done");
      this._emit("uploaded", { item, image, duplicate });
    } catch (error) {
      if (item._cancelled || !this.items.includes(item)) return;
      this._failed(item, error instanceof ApiError ? error : networkError());
    }
  }

  _failed(item, error) {
    if (ROOM_REFUSALS.has(error.code)) {
      // The room or the guest's quota said no: every queued photo would hear the same.
      this._fail(item, error, error.code !== "room_closed");
      this.block(error);
      this._emit("refused", { item, error });
      return;
    }
    if (IDENTITY_REFUSALS.has(error.code) || error.status === 401) {
      this._fail(item, error, true);
      this._emit("refused", { item, error });
      return;
    }
    if (!isTransient(error)) {
      // The photo itself was refused (too large, not an image…): sending it again won't help.
      this._fail(item, error, false);
      return;
    }
    if (error.status === 0 && navigator.onLine === false) {
      item.error = error;
      this._set(item, "offline");
      return;
    }
    if (item.attempts > this.backoff.maxAutoRetries) {
      this._fail(item, error, true);
      return;
    }
    const delay = retryDelayMs(item.attempts, error.retryAfter, this.backoff);
    item.error = error;
    item.retryAt = Date.now() + delay;
    clearTimeout(item._timer);
    item._timer = setTimeout(() => {
      if (item.state === "retrying") {
        this._requeue(item, { resetAttempts: false });
        this._pump();
      }
    }, delay);
    this._set(item, "retrying");
  }

  _fail(item, error, retriable) {
    clearTimeout(item._timer);
    item.error = error;
    item.retriable = retriable;
    this._set(item, "failed");
  }

  _requeue(item, { resetAttempts }) {
    clearTimeout(item._timer);
    if (resetAttempts) item.attempts = 0;
    item.retryAt = 0;
    this._set(item, "queued");
  }

  _set(item, state) {
    item.state = state;
    this._changed(item);
  }

  _changed(item) {
    this._emit("change", { item });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * The direct flow: ask for an upload, send the bytes where told (with progress), complete
   * it, then poll its state with backoff until done or failed. Every attempt asks afresh, so
   * a retry (or a reload) sends the same bytes again and the service answers done with the
   * image it already has. The same on every storage backend: on the local folder the bytes
   * go to the service's own signed PUT. Resolves {image, duplicate}, rejects with ApiError.
   * @param {UploadItem} item
   */
  async _sendDirect(item) {
    const blob = /** @type {Blob} */ (item.blob);
    const json = { "Content-Type": "application/json", Accept: "application/json" };
    const type = declaredType(blob.type, new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer()));
    const asked = await this._request(
      item, "POST", roomApi(this.token, "/uploads"),
      JSON.stringify(declaredUpload({ blob, type, name: item.name, caption: item.caption })), json, false,
    );
    const target = jsonAnswer(asked.status, asked.text, asked.retryAfter);
    const askedAt = asked.date ? Date.parse(asked.date) : NaN;
    const { body, headers } = targetRequest(target, blob, item.name);
    const sent = await this._request(item, target.method, target.url, body, headers, true);
    if (sent.status < 200 || sent.status >= 300) {
      const fromStore = new URL(target.url, location.href).origin !== location.origin;
      throw transferError(errorFromResponse(sent.status, sent.text, sent.retryAfter), sent.text, fromStore);
    }
    const path = `/uploads/${encodeURIComponent(target.upload_id)}`;
    const completed = await this._request(item, "POST", roomApi(this.token, `${path}/complete`), null, json, false);
    if (completed.status < 200 || completed.status >= 300) {
      throw transferError(errorFromResponse(completed.status, completed.text, completed.retryAfter), completed.text, false);
    }
    const deadline = Date.now() + PROCESSING_MS;
    for (let attempt = 1; ; attempt += 1) {
      const state = await this._request(item, "GET", roomApi(this.token, path), null, { Accept: "application/json" }, false);
      const outcome = uploadOutcome(
        jsonAnswer(state.status, state.text, state.retryAfter),
        Number.isFinite(askedAt) ? askedAt : null,
      );
      if (outcome.kind === "done") return { image: outcome.image, duplicate: outcome.duplicate };
      if (outcome.kind === "failed") throw outcome.error;
      if (Date.now() >= deadline) throw networkError();
      await new Promise((resolve) => setTimeout(resolve, pollDelayMs(attempt)));
      if (item._cancelled || !this.items.includes(item)) throw networkError();
    }
  }

  /**
   * One request of an item over XMLHttpRequest (abortable by remove(), watched for stalls).
   * `progress`: the body is the photo, so its upload progress is the item's.
   * Resolves {status, text, retryAfter, date} for any HTTP answer; rejects networkError().
   * @param {UploadItem} item
   * @param {string} method
   * @param {string} url
   * @param {XMLHttpRequestBodyInit|null} body
   * @param {Record<string, string>} headers
   * @param {boolean} progress
   * @returns {Promise<{status: number, text: string, retryAfter: string|null, date: string|null}>}
   */
  _request(item, method, url, body, headers, progress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      item._xhr = xhr;
      item._cancelled = false;
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let watchdog;
      const arm = (ms) => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => xhr.abort(), ms);
      };
      const finish = () => {
        clearTimeout(watchdog);
        item._xhr = null;
      };
      xhr.open(method, url);
      const sameOrigin = new URL(url, location.href).origin === location.origin;
      if (sameOrigin && !("Accept" in headers)) xhr.setRequestHeader("Accept", "application/json");
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      if (progress) {
        xhr.upload.addEventListener("progress", (event) => {
          if (!event.lengthComputable) return;
          const percent = Math.round((event.loaded / event.total) * 100);
          item.progress = Math.min(percent, 100);
          arm(percent >= 100 ? PROCESSING_MS : STALL_MS);
          this._changed(item);
        });
        xhr.upload.addEventListener("load", () => arm(PROCESSING_MS));
      }
      xhr.addEventListener("load", () => {
        finish();
        resolve({
          status: xhr.status,
          text: xhr.responseText,
          // A store's headers are not exposed cross-origin (asking logs a console error).
          retryAfter: sameOrigin ? xhr.getResponseHeader("Retry-After") : null,
          date: sameOrigin ? xhr.getResponseHeader("Date") : null,
        });
      });
      xhr.addEventListener("error", () => {
        finish();
        reject(networkError());
      });
      xhr.addEventListener("abort", () => {
        finish();
        reject(networkError());
      });
      arm(progress ? STALL_MS : PROCESSING_MS);
      xhr.send(body);
    });
  }
}
