// The upload queue's states (static/js/uploader.js), driven through a fake transport: each
// item's path from preparing to done, pending, retrying or failed, and room-wide blocks.
import assert from "node:assert/strict";
import { test } from "node:test";

// The queue listens to the window (online, beforeunload) and asks the navigator whether the
// browser is offline; Node has neither window nor, before v21, navigator.
globalThis.window ??= /** @type {any} */ (new EventTarget());
globalThis.navigator ??= /** @type {any} */ ({ onLine: true });

const { ApiError } = await import("../../static/js/api.js");
const { UploadQueue } = await import("../../static/js/uploader.js");

const file = (name) => new File([new Uint8Array([0xff, 0xd8, name.length])], name, { type: "image/jpeg" });
const prepare = async (picked) => ({ blob: picked, name: picked.name, downscaled: false, preview: null });
const FAST = { baseMs: 1, maxMs: 2, maxAutoRetries: 2 };

/**
 * A queue whose sends answer from `answers` (a function of the item and its send number), with
 * every item's states recorded in order.
 */
function recordedQueue(answer, options = {}) {
  const sends = [];
  const queue = new UploadQueue({
    token: "T".repeat(24),
    prepare,
    backoff: FAST,
    send: async (item) => {
      sends.push(item.name);
      return answer(item, sends.filter((name) => name === item.name).length);
    },
    ...options,
  });
  /** @type {Map<string, string[]>} */
  const states = new Map();
  queue.addEventListener("change", ({ detail: { item } }) => {
    const seen = states.get(item.name) || [];
    if (seen[seen.length - 1] !== item.state) seen.push(item.state);
    states.set(item.name, seen);
  });
  return { queue, states, sends };
}

/** Resolves once `predicate()` holds after some queue event. */
function until(queue, predicate) {
  return new Promise((resolve) => {
    const check = () => {
      if (predicate()) {
        queue.removeEventListener("change", check);
        resolve(undefined);
      }
    };
    queue.addEventListener("change", check);
    check();
  });
}

const stored = (id, status = "approved") => ({ image: { id, status }, duplicate: false });

test("a photo goes preparing → queued → uploading → done", async () => {
  const { queue, states } = recordedQueue(() => stored(1));
  const [item] = queue.add([file("a.jpg")]);
  await until(queue, () => item.state === "done");
  assert.deepEqual(states.get("a.jpg"), ["preparing", "queued", "uploading", "done"]);
  assert.equal(item.image.id, 1);
  assert.equal(item.blob, null); // stored: the bytes need not stay in memory
  assert.equal(item.active, false);
});

test("in a moderated room a stored photo waits as pending until approved", async () => {
  const { queue, states } = recordedQueue(() => stored(2, "pending"));
  const [item] = queue.add([file("b.jpg")]);
  await until(queue, () => item.state === "pending");
  queue.markApproved(2);
  assert.deepEqual(states.get("b.jpg"), ["preparing", "queued", "uploading", "pending", "done"]);
});

test("a held photo is prepared but sent only when asked", async () => {
  const { queue, states, sends } = recordedQueue(() => stored(3));
  const [item] = queue.add([file("c.jpg")], { hold: true });
  await until(queue, () => item.state === "held");
  assert.deepEqual(sends, []);
  queue.send([item]);
  await until(queue, () => item.state === "done");
  assert.deepEqual(states.get("c.jpg"), ["preparing", "held", "queued", "uploading", "done"]);
});

test("a passing failure is retried by itself; a 200 to the retry is not 'already shared'", async () => {
  const { queue, states } = recordedQueue((item, send) => {
    if (send === 1) throw new ApiError(503, "database_unavailable", "busy", null);
    return { image: { id: 4, status: "approved" }, duplicate: true };
  });
  const [item] = queue.add([file("d.jpg")]);
  await until(queue, () => item.state === "done");
  assert.deepEqual(states.get("d.jpg"), ["preparing", "queued", "uploading", "retrying", "queued", "uploading", "done"]);
  assert.equal(item.sends, 2);
  assert.equal(item.duplicate, false);
});

test("automatic retries stop after maxAutoRetries, leaving a retriable failure", async () => {
  const { queue, sends } = recordedQueue(() => {
    throw new ApiError(0, "network_error", "offline?", null);
  });
  const [item] = queue.add([file("e.jpg")]);
  await until(queue, () => item.state === "failed");
  assert.equal(sends.length, FAST.maxAutoRetries + 1);
  assert.equal(item.retriable, true);
  assert.equal(queue.retriableCount, 1);
});

test("a refused photo fails for good; other photos go on", async () => {
  const { queue } = recordedQueue((item) => {
    if (item.name === "bad.jpg") throw new ApiError(415, "unsupported_media_type", "not an image", null);
    return stored(5);
  });
  const [bad, good] = queue.add([file("bad.jpg"), file("good.jpg")]);
  await until(queue, () => bad.state === "failed" && good.state === "done");
  assert.equal(bad.retriable, false);
  assert.equal(bad.error.code, "unsupported_media_type");
  queue.retry(bad); // Retry cannot help a photo the server refused
  assert.equal(bad.state, "failed");
});

test("a room-wide refusal blocks every queued photo until it is lifted", async () => {
  let paused = true;
  const { queue, sends } = recordedQueue((item) => {
    if (paused) throw new ApiError(409, "uploads_paused", "paused", null);
    return stored(sends.length);
  }, { concurrency: 1 });
  const refused = [];
  queue.addEventListener("refused", ({ detail }) => refused.push(detail.error.code));
  const items = queue.add([file("f1.jpg"), file("f2.jpg"), file("f3.jpg")]);
  await until(queue, () => items.every((item) => item.state === "failed"));
  assert.deepEqual(refused, ["uploads_paused"]);
  assert.equal(sends.length, 1); // the others never went: they would hear the same
  assert.equal(queue.blockedBy?.code, "uploads_paused");
  assert.ok(items.every((item) => item.retriable && item.error.code === "uploads_paused"));
  paused = false;
  assert.equal(queue.unblock("uploads_paused"), items.length);
  await until(queue, () => items.every((item) => item.state === "done"));
  assert.equal(queue.blockedBy, null);
});

test("a closed room stays closed: its failures are not retriable", async () => {
  const { queue } = recordedQueue(() => {
    throw new ApiError(409, "room_closed", "closed", null);
  });
  const [item] = queue.add([file("g.jpg")]);
  await until(queue, () => item.state === "failed");
  assert.equal(item.retriable, false);
  queue.retryAll();
  assert.equal(queue.blockedBy?.code, "room_closed");
});
