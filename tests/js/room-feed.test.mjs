// The room feed (static/js/live.js): seq tracking, each image shown once, deletions that win
// over late additions, and reconciling with a snapshot or a full resync after a gap.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RoomFeed, refusalVerdict } from "../../static/js/live.js";

const image = (id, seq, extra = {}) => ({ id, seq, thumb_url: `/t/${id}`, ...extra });

/** A feed with its "add" / "remove" / "room" events recorded. */
function recordedFeed(lastSeq = 0) {
  const feed = new RoomFeed({ token: "T".repeat(24), name: "Test", lastSeq });
  const events = [];
  for (const type of ["add", "remove", "room"]) {
    feed.addEventListener(type, (event) => events.push([type, event.detail]));
  }
  return { feed, events };
}

test("an image is added once, whatever way it arrives, and lastSeq only grows", () => {
  const { feed, events } = recordedFeed(3);
  assert.equal(feed.add(image(1, 5)), true);
  assert.equal(feed.add(image(1, 5)), false); // the live event after the upload's own answer
  assert.equal(feed.add(image(2, 4)), true); // replayed out of order
  assert.equal(feed.lastSeq, 5);
  assert.deepEqual(
    events.map(([type, detail]) => [type, detail.image.id]),
    [["add", 1], ["add", 2]],
  );
  assert.deepEqual(feed.sorted().map((i) => i.id), [2, 1]);
  assert.equal(feed.newestId, 2);
  assert.equal(feed.add({ seq: 9 }), false); // not an image
});

test("a deletion wins over a late addition of the same image", () => {
  const { feed, events } = recordedFeed();
  feed.add(image(7, 1));
  assert.equal(feed.remove(7, 2), true);
  assert.equal(feed.remove(7, 2), false);
  assert.equal(feed.add(image(7, 1)), false); // a slow HTTP page that still lists it
  assert.equal(feed.remove(8, 3), false); // never shown: nothing to remove, seq still seen
  assert.equal(feed.lastSeq, 3);
  assert.deepEqual(
    events.map(([type]) => type),
    ["add", "remove"],
  );
});

test("a snapshot after a gap reconciles: missing images added, gone ones removed", () => {
  const { feed, events } = recordedFeed();
  feed.add(image(1, 1));
  feed.add(image(2, 2));
  feed.remove(3, 3); // deleted earlier, then restored by the time of the snapshot
  events.length = 0;
  feed.reconcile([image(2, 2), image(3, 4), image(4, 9)], 12);
  assert.deepEqual(feed.sorted().map((i) => i.id), [4, 3, 2]);
  assert.deepEqual(
    events.map(([type, detail]) => [type, detail.id ?? detail.image.id]),
    [["add", 3], ["add", 4], ["remove", 1]],
  );
  assert.equal(feed.lastSeq, 12);
});

test("room settings apply only when newer than what the feed reflects", () => {
  const { feed, events } = recordedFeed(10);
  feed._roomUpdated({ seq: 9, title: "stale replay" });
  feed._roomUpdated({ seq: 10, title: "already rendered" });
  feed._roomUpdated({ seq: 11, title: "new" });
  feed._roomUpdated({ seq: 11, title: "duplicate" });
  assert.deepEqual(
    events.map(([, detail]) => detail.room.title),
    ["new"],
  );
  assert.equal(feed.lastSeq, 11);
});

test("a resync replaces the feed with the server's full list and reloads the room", async () => {
  const { feed, events } = recordedFeed();
  feed.add(image(1, 1));
  feed.add(image(5, 5));
  const requested = [];
  const original = globalThis.fetch;
  globalThis.fetch = async (url) => {
    requested.push(String(url));
    const body = String(url).includes("/images")
      ? { items: [image(5, 5), image(6, 8)], next_after: null }
      : { title: "Room", last_seq: 8 };
    return new Response(JSON.stringify(body), { status: 200 });
  };
  try {
    events.length = 0;
    await feed.resync();
  } finally {
    globalThis.fetch = original;
  }
  assert.deepEqual(feed.sorted().map((i) => i.id), [6, 5]);
  assert.deepEqual(
    events.map(([type]) => type),
    ["add", "remove", "room"],
  );
  assert.equal(feed.lastSeq, 8);
  assert.equal(feed.roomSeq, 8);
  assert.ok(requested[0].startsWith(`/api/rooms/${feed.token}/images?`));
});

test("refusals are judged on their code, not their text", () => {
  const refusal = (code, message = "whatever the text says") => ({ message, data: { message, code } });
  assert.deepEqual(refusalVerdict(refusal("room_not_found")), { permanent: true, passcode: false });
  assert.deepEqual(refusalVerdict(refusal("invalid_auth")), { permanent: true, passcode: false });
  assert.deepEqual(refusalVerdict(refusal("passcode_required")), { permanent: true, passcode: true });
  assert.deepEqual(refusalVerdict(refusal("database_unavailable", "room not found")), {
    permanent: false,
    passcode: false,
  });
  // No code (a transport error, or an older server): retried.
  assert.deepEqual(refusalVerdict({ message: "passcode required: join the room first" }), {
    permanent: false,
    passcode: false,
  });
  assert.deepEqual(refusalVerdict(null), { permanent: false, passcode: false });
});
