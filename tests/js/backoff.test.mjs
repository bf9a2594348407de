// Retry delays: the upload queue's backoff (static/js/uploader.js) and the live connection's
// refused-connection retries (static/js/live.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { RETRY_REFUSED_MS, refusedRetryDelay } from "../../static/js/live.js";
import { retryDelayMs } from "../../static/js/uploader.js";

const BACKOFF = { baseMs: 1_000, maxMs: 60_000 };
const low = () => 0;
const high = () => 0.999_999;

test("upload retries back off exponentially with equal jitter", () => {
  for (let attempt = 1; attempt <= 6; attempt += 1) {
    const ceiling = BACKOFF.baseMs * 2 ** (attempt - 1);
    assert.equal(retryDelayMs(attempt, null, BACKOFF, low), ceiling / 2);
    assert.equal(retryDelayMs(attempt, null, BACKOFF, high), Math.round(ceiling / 2 + 0.999_999 * (ceiling / 2)));
  }
});

test("upload retries never wait longer than the maximum", () => {
  assert.equal(retryDelayMs(30, null, BACKOFF, high), Math.round(BACKOFF.maxMs / 2 + 0.999_999 * (BACKOFF.maxMs / 2)));
  assert.ok(retryDelayMs(30, null, BACKOFF, high) <= BACKOFF.maxMs);
  assert.equal(retryDelayMs(30, null, BACKOFF, low), BACKOFF.maxMs / 2);
});

test("a Retry-After is a floor, spread by at most a second past it", () => {
  assert.equal(retryDelayMs(1, 7, BACKOFF, low), 7_000);
  assert.equal(retryDelayMs(1, 7, BACKOFF, high), Math.round(7_000 + 0.999_999 * 1_000));
  // Even when exponential backoff alone would be shorter.
  assert.ok(retryDelayMs(1, 30, BACKOFF, high) >= 30_000);
  // A small base spreads less than a second.
  assert.equal(retryDelayMs(1, 2, { baseMs: 100, maxMs: 1_000 }, high), Math.round(2_000 + 0.999_999 * 100));
});

test("refused live connections are retried after growing delays, then the last one", () => {
  RETRY_REFUSED_MS.forEach((delay, refusals) => assert.equal(refusedRetryDelay(refusals), delay));
  const last = RETRY_REFUSED_MS[RETRY_REFUSED_MS.length - 1];
  assert.equal(refusedRetryDelay(RETRY_REFUSED_MS.length), last);
  assert.equal(refusedRetryDelay(100), last);
  for (let i = 1; i < RETRY_REFUSED_MS.length; i += 1) assert.ok(RETRY_REFUSED_MS[i] > RETRY_REFUSED_MS[i - 1]);
});
