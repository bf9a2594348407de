// The direct flow's pure pieces (static/js/direct-upload.js): what is declared, the form or
// PUT sent to the store, the poll's backoff, the state's outcome, and which refusals ask again.
import assert from "node:assert/strict";
import { test } from "node:test";

const { ApiError } = await import("../../static/js/api.js");
const direct = await import("../../static/js/direct-upload.js");

test("the declaration names the given type and the blob's size, and the caption when there is one", () => {
  const blob = new Blob([new Uint8Array(1234)], { type: "image/jpeg" });
  assert.deepEqual(direct.declaredUpload({ blob, type: "image/jpeg", name: "a.jpg", caption: null }), {
    filename: "a.jpg",
    content_type: "image/jpeg",
    size: 1234,
  });
  const captioned = direct.declaredUpload({ blob, type: "image/jpeg", name: "", caption: "hi" });
  assert.equal(captioned.caption, "hi");
  assert.equal(captioned.filename, "photo");
});

/** The first bytes of a file: `text` as Latin-1, after `prefix`. */
function head(text, prefix = []) {
  return new Uint8Array([...prefix, ...[...text].map((c) => c.charCodeAt(0))]);
}

test("the leading bytes name each accepted type, and nothing else", () => {
  assert.equal(direct.sniffedType(head("\xe0\0\x10JFIF", [0xff, 0xd8, 0xff])), "image/jpeg");
  assert.equal(direct.sniffedType(head("\x89PNG\r\n\x1a\n\0\0\0\rIHDR")), "image/png");
  assert.equal(direct.sniffedType(head("GIF89a\x01\0")), "image/gif");
  assert.equal(direct.sniffedType(head("RIFF\x24\0\0\0WEBPVP8 ")), "image/webp");
  assert.equal(direct.sniffedType(head("\0\0\0\x18ftypheic\0\0\0\0mif1heic")), "image/heif");
  assert.equal(direct.sniffedType(head("\0\0\0\x1cftypavif\0\0\0\0avifmif1")), "image/avif");
  assert.equal(direct.sniffedType(head("\0\0\0\x1cftypmif1\0\0\0\0mif1avis")), "image/avif");
  assert.equal(direct.sniffedType(head("%PDF-1.7")), null);
  assert.equal(direct.sniffedType(head("PK\x03\x04")), null);
  assert.equal(direct.sniffedType(new Uint8Array(0)), null);
});

test("the declared type is the browser's when accepted, else the bytes', else the browser's", () => {
  const jpeg = head("\xe0", [0xff, 0xd8, 0xff]);
  const heic = head("\0\0\0\x18ftypheic\0\0\0\0mif1heic");
  assert.equal(direct.declaredType("image/heic", heic), "image/heic");
  assert.equal(direct.declaredType("IMAGE/PNG", jpeg), "image/png");
  // Some phones give a HEIC photo no type, or a JPEG `image/jpg`.
  assert.equal(direct.declaredType("", heic), "image/heif");
  assert.equal(direct.declaredType("image/jpg", jpeg), "image/jpeg");
  assert.equal(direct.declaredType("application/pdf", head("%PDF-1.7")), "application/pdf");
  assert.equal(direct.declaredType("", head("plain text")), "application/octet-stream");
  for (const type of ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heif", "image/avif"]) {
    assert.ok(direct.DECLARED_TYPES.has(type), type);
  }
});

test("a POST target is a form with every field in order and the file last", async () => {
  const blob = new Blob([new Uint8Array(10)], { type: "image/jpeg" });
  const fields = { key: "photos/direct/u1", "Content-Type": "image/jpeg", policy: "p", "x-amz-signature": "s" };
  const { body, headers } = direct.targetRequest({ method: "POST", fields }, blob, "a.jpg");
  assert.ok(body instanceof FormData);
  assert.deepEqual(headers, {});
  const entries = [...body.entries()];
  assert.deepEqual(entries.map(([name]) => name), [...Object.keys(fields), "file"]);
  const file = /** @type {File} */ (entries.at(-1)?.[1]);
  assert.equal(file.name, "a.jpg");
  assert.equal(file.size, 10);
});

test("a PUT target is the blob itself with the given headers", () => {
  const blob = new Blob(["abc"], { type: "image/png" });
  const { body, headers } = direct.targetRequest({ method: "PUT", headers: { "Content-Type": "image/png" } }, blob, "a");
  assert.equal(body, blob);
  assert.deepEqual(headers, { "Content-Type": "image/png" });
});

test("polls wait longer each time, up to the ceiling", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(direct.pollDelayMs);
  assert.equal(delays[0], direct.POLL.firstMs);
  for (let index = 1; index < delays.length; index += 1) assert.ok(delays[index] >= delays[index - 1]);
  assert.equal(delays.at(-1), direct.POLL.maxMs);
});

test("the state's outcome: processing, done (own or already shared), failed with its status", () => {
  const asked = Date.parse("2026-12-03T12:00:10Z");
  assert.deepEqual(direct.uploadOutcome({ status: "processing" }, asked), { kind: "processing" });
  const fresh = { id: 1, created_at: "2026-12-03T12:00:11+00:00", status: "approved" };
  assert.deepEqual(direct.uploadOutcome({ status: "done", image: fresh }, asked), { kind: "done", image: fresh, duplicate: false });
  const older = { ...fresh, created_at: "2026-12-03T11:59:00+00:00" };
  assert.equal(/** @type {any} */ (direct.uploadOutcome({ status: "done", image: older }, asked)).duplicate, true);
  assert.equal(/** @type {any} */ (direct.uploadOutcome({ status: "done", image: older }, null)).duplicate, false);
  const failed = /** @type {any} */ (direct.uploadOutcome({ status: "failed", error: { code: "file_too_large", message: "Too big." } }, asked));
  assert.equal(failed.kind, "failed");
  assert.ok(failed.error instanceof ApiError);
  assert.deepEqual([failed.error.status, failed.error.code, failed.error.message], [413, "file_too_large", "Too big."]);
  const corrupt = /** @type {any} */ (direct.uploadOutcome({ status: "failed", error: { code: "corrupt_image", message: "m" } }, asked));
  assert.equal(corrupt.error.status, 422);
  const busy = /** @type {any} */ (direct.uploadOutcome({ status: "failed", error: { code: "busy", message: "m" } }, asked));
  assert.equal(busy.error.status, 503);
  const odd = /** @type {any} */ (direct.uploadOutcome({ nope: true }, asked));
  assert.equal(odd.error.code, "bad_response");
});

test("expired or unused URLs become passing failures; the store's size refusal stays final", () => {
  const expired = direct.transferError(new ApiError(410, "upload_url_expired", "gone"), "{}", false);
  assert.deepEqual([expired.status, expired.code], [503, "upload_url_expired"]);
  const notReceived = direct.transferError(new ApiError(409, "upload_not_received", "none"), "{}", false);
  assert.equal(notReceived.status, 503);
  const xml = "<Error><Code>EntityTooLarge</Code></Error>";
  const large = direct.transferError(new ApiError(400, "http_400", "bad"), xml, true);
  assert.deepEqual([large.status, large.code], [413, "file_too_large"]);
  const denied = direct.transferError(new ApiError(403, "http_403", "no"), "<Error><Code>AccessDenied</Code></Error>", true);
  assert.deepEqual([denied.status, denied.code], [503, "upload_refused_by_store"]);
  const tooLargeJson = direct.transferError(new ApiError(413, "file_too_large", "big"), "{}", false);
  assert.equal(tooLargeJson.status, 413);
});

test("a JSON answer is parsed, or thrown as the ApiError it is", () => {
  assert.deepEqual(direct.jsonAnswer(201, '{"upload_id": "u"}', null), { upload_id: "u" });
  assert.throws(() => direct.jsonAnswer(429, '{"error": {"code": "too_many", "message": "m"}}', "3"), (error) => {
    return error instanceof ApiError && error.status === 429 && error.retryAfter === 3;
  });
  assert.throws(() => direct.jsonAnswer(200, "<html>", null), (error) => error instanceof ApiError && error.code === "bad_response");
});
