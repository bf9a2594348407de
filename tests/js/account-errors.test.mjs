// The sign-in and sign-up pages' wording of a throttled answer (static/js/account-errors.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { retryText } from "../../static/js/account-errors.js";

test("a throttled answer says when to try again, in seconds or whole minutes", () => {
  assert.equal(retryText({ status: 429, retryAfter: 1 }), " Try again in 1 second.");
  assert.equal(retryText({ status: 429, retryAfter: 42.2 }), " Try again in 43 seconds.");
  assert.equal(retryText({ status: 429, retryAfter: 3599 }), " Try again in 60 minutes.");
  assert.equal(retryText({ status: 429, retryAfter: 0 }), " Try again in 1 second.");
});

test("other answers, and a throttle without Retry-After, add nothing", () => {
  assert.equal(retryText({ status: 429, retryAfter: null }), "");
  assert.equal(retryText({ status: 403, retryAfter: 30 }), "");
  assert.equal(retryText({ status: 401 }), "");
});
