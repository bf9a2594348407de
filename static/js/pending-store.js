// @ts-check
// Photos on their way, kept in the browser's IndexedDB so a reload or a closed tab loses none:
// each picked photo is written (the exact bytes to send, its name and caption) before it goes,
// and deleted once the server acknowledged it (201/200) or the guest cancelled it. A photo the
// server refused for good stays, marked failed with the reason, until the guest dismisses it.
//
// Records: {id (auto), owner: "<room token>:<guest id>", name, caption, blob, prepared (false
// while blob is still the picked file, before downscaling), failed: null | {status, code,
// message}, created (ms since epoch)}. The owner key keeps one guest's photos
// out of another guest's (or room's) queue on a shared browser.

const DB_NAME = "imageshark-pending";
const STORE = "uploads";

/** The owner key of `token`'s room for guest `guestId`. */
export function ownerKey(token, guestId) {
  return `${token}:${guestId}`;
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * The store, or null when this browser has no usable IndexedDB (some private modes, blocked
 * storage): callers then keep photos in memory only and say so.
 */
export class PendingStore {
  constructor(db) {
    this.db = db;
  }

  /**
   * Open the database. Resolves a PendingStore, or null when IndexedDB is unavailable or
   * refuses to open (never rejects).
   * @returns {Promise<PendingStore|null>}
   */
  static async open() {
    try {
      if (typeof indexedDB === "undefined" || !indexedDB) return null;
      const open = indexedDB.open(DB_NAME, 1);
      open.onupgradeneeded = () => {
        const store = open.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
        store.createIndex("owner", "owner");
      };
      const db = await request(open);
      // A Blob that cannot be stored (old private modes) shows up here, not at the first write.
      return new PendingStore(db);
    } catch {
      return null;
    }
  }

  _store(mode) {
    return this.db.transaction(STORE, mode).objectStore(STORE);
  }

  /**
   * Keep a photo until it is acknowledged. Resolves its record id.
   * @param {{owner: string, name: string, caption: string|null, blob: Blob, prepared: boolean}} record
   * @returns {Promise<number>}
   * @throws {DOMException} quota exceeded, or a browser that cannot store Blobs
   */
  add({ owner, name, caption, blob, prepared }) {
    return request(
      this._store("readwrite").add({ owner, name, caption, blob, prepared, failed: null, created: Date.now() }),
    );
  }

  /** Replace fields of record `id` (e.g. the prepared bytes once downscaled). */
  async update(id, fields) {
    const store = this._store("readwrite");
    const record = await request(store.get(id));
    if (record) await request(store.put({ ...record, ...fields }));
  }

  /** Mark record `id` refused for good: `failed` is {status, code, message}. */
  markFailed(id, failed) {
    return this.update(id, { failed });
  }

  /** Forget record `id` (acknowledged, cancelled or dismissed). */
  remove(id) {
    return request(this._store("readwrite").delete(id));
  }

  /** Every record of `owner`, oldest first. @returns {Promise<object[]>} */
  async list(owner) {
    const records = await request(this._store("readonly").index("owner").getAll(owner));
    return records.sort((a, b) => a.id - b.id);
  }
}
