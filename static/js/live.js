// @ts-check
// The room's image list, kept live: loaded over HTTP, then updated by Socket.IO events
// (image_added, image_removed, presence), caught up over HTTP after every (re)connect.
//
// Events dispatched (CustomEvent, detail as shown):
//   "add"      {image, initial}   an image to show (each id at most once)
//   "remove"   {id, image}        an image that was deleted
//   "presence" {count}            people connected to the room
//   "status"   {state, message}   "connecting" | "live" | "offline" | "error"
//   "ready"    {}                 the first full load finished
//   "room"     {room}             the room's settings changed (room_updated, or reloaded
//                                 over HTTP after a snapshot / resync)
//   "closed"   {closed_at}        the host closed the room
//   "queue"    {pending_count}    the host's approval queue changed (moderation_queue)
//   "refused"  {message, passcode} the server refused the connection for good (passcode:
//                                 true when joining with the room's passcode would help)
//   "hostrevoked" {}              this account was removed as the room's co-host
//                                 (host_access_revoked; the server then disconnects)
//
// The server replays what a reconnecting client missed after `last_seq`, or sends a
// `snapshot` ({seq, images}) when that is too much, or `resync_required` when it cannot tell;
// both of the latter make this feed reconcile with the full current list.

import { api, ApiError, fetchImagesAfter, roomApi } from "./api.js";

const POLL_WHILE_OFFLINE_MS = 15_000;
export const RETRY_REFUSED_MS = [2_000, 5_000, 10_000, 30_000];
// Refusal codes (connect_error data.code) that retrying cannot fix: the room is gone, the
// auth is malformed, or it needs a passcode the page must ask for ("refused" tells it).
// Any other refusal (database_unavailable, or none given) is retried.
const PERMANENT_REFUSALS = new Set(["room_not_found", "invalid_auth", "passcode_required"]);

/**
 * What to do about a refused connection, decided on its machine-readable code.
 * @param {{data?: {code?: string}} | null | undefined} error the connect_error
 * @returns {{permanent: boolean, passcode: boolean}} permanent: retrying cannot help;
 *   passcode: joining with the room's passcode would.
 */
export function refusalVerdict(error) {
  const code = error && error.data && typeof error.data === "object" ? error.data.code : undefined;
  return {
    permanent: typeof code === "string" && PERMANENT_REFUSALS.has(code),
    passcode: code === "passcode_required",
  };
}

/**
 * Milliseconds to wait before reconnecting after the `refusals`-th passing refusal in a row
 * (0 for the first): the delays of RETRY_REFUSED_MS, then its last one.
 * @param {number} refusals
 * @returns {number}
 */
export function refusedRetryDelay(refusals) {
  return RETRY_REFUSED_MS[Math.min(Math.max(0, refusals), RETRY_REFUSED_MS.length - 1)];
}

export class RoomFeed extends EventTarget {
  /**
   * @param {{token: string, name: string, lastSeq?: number,
   *          credentials?: () => {hostKey?: string|null}}} options
   *   name: shown to others ("Wall", "Host"…); lastSeq: the room's last_seq when the page was
   *   rendered (everything up to it is in the images list fetched afterwards);
   *   credentials: asked before every request and (re)connection; a host key is sent as
   *   `Authorization: Bearer` over HTTP and `host_key` in the Socket.IO auth.
   */
  constructor({ token, name, lastSeq = 0, credentials = () => ({}) }) {
    super();
    this.token = token;
    this.name = name;
    this.credentials = credentials;
    // Room settings reflect every event up to the rendered last_seq; later room_updated
    // events apply, earlier (replayed) ones would be stale.
    this.roomSeq = Number(lastSeq) || 0;
    /** @type {Map<number, object>} id → image */
    this.images = new Map();
    this.removed = new Set();
    this.lastSeq = Number(lastSeq) || 0;
    this.socket = null;
    this.state = "connecting";
    this._syncing = null;
    this._syncAgain = false;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this._pollTimer = undefined;
    this._refusals = 0;
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

  /** Highest image id held (0 when empty). */
  get newestId() {
    let newest = 0;
    for (const id of this.images.keys()) if (id > newest) newest = id;
    return newest;
  }

  /** Images newest first. */
  sorted() {
    return [...this.images.values()].sort((a, b) => b.id - a.id);
  }

  get(id) {
    return this.images.get(Number(id)) || null;
  }

  /**
   * Extra HTTP headers for the room's API calls (the host key, when there is one).
   * @returns {Record<string, string>}
   */
  headers() {
    const { hostKey } = this.credentials() || {};
    return hostKey ? { Authorization: `Bearer ${hostKey}` } : {};
  }

  /** Fetch the room's public view and announce it as "room" (after a snapshot or resync). */
  async refreshRoom() {
    const room = await api(roomApi(this.token), { headers: this.headers() });
    if (typeof room.last_seq === "number") this.roomSeq = Math.max(this.roomSeq, room.last_seq);
    this._emit("room", { room });
    return room;
  }

  _roomUpdated(room) {
    if (!room) return;
    if (typeof room.seq === "number") {
      if (room.seq <= this.roomSeq) return;
      this.roomSeq = room.seq;
    }
    this._seen(room.seq);
    this._emit("room", { room });
  }

  _seen(seq) {
    if (typeof seq === "number" && seq > this.lastSeq) this.lastSeq = seq;
  }

  /** Apply an image (from HTTP, an upload answer or an event); false if already applied. */
  add(image, { initial = false } = {}) {
    if (!image || typeof image.id !== "number") return false;
    this._seen(image.seq);
    if (this.images.has(image.id) || this.removed.has(image.id)) return false;
    this.images.set(image.id, image);
    this._emit("add", { image, initial });
    return true;
  }

  /** Apply a deletion; false if the image is not shown. */
  remove(id, seq) {
    this._seen(seq);
    id = Number(id);
    this.removed.add(id);
    const image = this.images.get(id);
    if (!image) return false;
    this.images.delete(id);
    this._emit("remove", { id, image });
    return true;
  }

  /** Load the room's images, then go live. Resolves after the first load. */
  async start() {
    this._setStatus("connecting");
    try {
      await this.sync({ initial: true });
    } catch (error) {
      this._emit("loaderror", { error });
    }
    this._emit("ready", {});
    this._connect();
    document.addEventListener("visibilitychange", () => {
      // Phones freeze background tabs: catch up as soon as the page is visible again.
      if (document.visibilityState === "visible") this.sync().catch(() => {});
    });
  }

  /** Fetch the images newer than the newest one held. Concurrent calls are coalesced. */
  async sync({ initial = false } = {}) {
    if (this._syncing) {
      this._syncAgain = true;
      return this._syncing;
    }
    this._syncing = (async () => {
      try {
        do {
          this._syncAgain = false;
          await fetchImagesAfter(this.token, this.newestId, {
            headers: this.headers(),
            onPage: (items) => {
              for (const image of items) this.add(image, { initial });
            },
          });
        } while (this._syncAgain);
      } finally {
        this._syncing = null;
      }
    })();
    return this._syncing;
  }

  /**
   * Make the feed equal to `images` (the room's complete current list): add the missing,
   * remove the ones no longer there.
   */
  reconcile(images, seq) {
    const present = new Set();
    for (const image of images) {
      present.add(image.id);
      this.removed.delete(image.id);
      this.add(image);
    }
    for (const id of [...this.images.keys()]) {
      if (!present.has(id)) this.remove(id);
    }
    this._seen(seq);
  }

  /** Fetch the complete list and reconcile with it. */
  async resync() {
    const images = await fetchImagesAfter(this.token, 0, { headers: this.headers() });
    this.reconcile(images);
    await this.refreshRoom();
  }

  /** Change the name others see; reconnects so the server learns it. */
  setName(name) {
    this.name = name;
    if (this.socket && this.socket.connected) {
      this.socket.disconnect();
      this.socket.connect();
    }
  }

  _connect() {
    if (typeof window.io !== "function") {
      this._setStatus("error", "Live updates are unavailable (client library missing).");
      this._startPolling();
      return;
    }
    const socket = window.io({
      path: "/socket.io",
      transports: ["websocket", "polling"],
      // A function, so every reconnection sends the current name and last_seq.
      auth: (callback) => {
        const { hostKey } = this.credentials() || {};
        const auth = { token: this.token, name: this.name, last_seq: this.lastSeq };
        if (hostKey) auth.host_key = hostKey;
        callback(auth);
      },
    });
    this.socket = socket;

    socket.on("connect", () => {
      this._refusals = 0;
      this._setStatus("live");
      this._stopPolling();
      this.sync().catch(() => {});
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") return;
      if (reason === "io server disconnect") {
        this._setStatus("error", "The server closed the live connection.");
      } else {
        this._setStatus("offline");
      }
      this._startPolling();
    });
    socket.on("connect_error", (error) => {
      if (socket.active) {
        // A transport problem: the client retries by itself.
        this._setStatus("offline", error && error.message);
      } else if (refusalVerdict(error).permanent) {
        // The room is gone: retrying will not help.
        this._setStatus("error", error.message);
        this._emit("refused", { message: error.message, passcode: refusalVerdict(error).passcode });
      } else {
        // Refused for a passing reason (e.g. the database is briefly unavailable): retry.
        const delay = refusedRetryDelay(this._refusals);
        this._refusals += 1;
        this._setStatus("offline", error && error.message);
        setTimeout(() => {
          if (!socket.connected) socket.connect();
        }, delay);
      }
      this._startPolling();
    });
    socket.on("image_added", (image) => this.add(image));
    socket.on("image_removed", (payload) => {
      if (payload && payload.id != null) this.remove(payload.id, payload.seq);
    });
    socket.on("snapshot", (payload) => {
      if (payload && Array.isArray(payload.images)) this.reconcile(payload.images, payload.seq);
      // A snapshot says nothing about settings: reload them.
      this.refreshRoom().catch(() => {});
    });
    socket.on("resync_required", () => {
      this.resync().catch(() => {});
    });
    socket.on("room_updated", (room) => this._roomUpdated(room));
    socket.on("room_closed", (payload) => {
      this._seen(payload && payload.seq);
      this._emit("closed", { closed_at: (payload && payload.closed_at) || null });
    });
    socket.on("moderation_queue", (payload) => {
      if (!payload) return;
      this._seen(payload.seq);
      this._emit("queue", { pending_count: payload.pending_count });
    });
    // This account was removed as a co-host: the server disconnects this socket next.
    socket.on("host_access_revoked", () => this._emit("hostrevoked", {}));
    socket.on("presence", (payload) => {
      if (payload && typeof payload.count === "number") this._emit("presence", { count: payload.count });
    });
  }

  _startPolling() {
    if (this._pollTimer) return;
    this._pollTimer = setInterval(() => {
      this.sync().catch((error) => {
        if (error instanceof ApiError && error.status === 404) this._stopPolling();
      });
    }, POLL_WHILE_OFFLINE_MS);
  }

  _stopPolling() {
    clearInterval(this._pollTimer);
    this._pollTimer = undefined;
    this._refusals = 0;
  }

  _setStatus(state, message = "") {
    this.state = state;
    this._emit("status", { state, message });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
