// Downscale sizing (static/js/downscale.js): the size a photo is drawn at before upload.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DOWNSCALE_MAX_PX, downscaleTarget, fitInside } from "../../static/js/downscale.js";

test("a landscape photo gets the maximum on its long side, the short side in proportion", () => {
  const size = fitInside(6000, 4000, DOWNSCALE_MAX_PX);
  assert.equal(size.width, DOWNSCALE_MAX_PX);
  assert.equal(size.height, Math.round((4000 * DOWNSCALE_MAX_PX) / 6000));
});

test("a portrait photo is fitted by its height", () => {
  const size = fitInside(3024, 4032, 1600);
  assert.equal(size.height, 1600);
  assert.equal(size.width, Math.round((3024 * 1600) / 4032));
});

test("fitting never upscales and never goes below one pixel", () => {
  assert.deepEqual(fitInside(800, 600, 1600), { width: 800, height: 600 });
  assert.deepEqual(fitInside(100_000, 10, 1000), { width: 1000, height: 1 });
});

test("a photo within the limit is not downscaled; one pixel more is", () => {
  assert.equal(downscaleTarget(DOWNSCALE_MAX_PX, 2000, DOWNSCALE_MAX_PX), null);
  assert.equal(downscaleTarget(2000, DOWNSCALE_MAX_PX, DOWNSCALE_MAX_PX), null);
  const size = downscaleTarget(DOWNSCALE_MAX_PX + 1, 2000, DOWNSCALE_MAX_PX);
  assert.deepEqual(size, fitInside(DOWNSCALE_MAX_PX + 1, 2000, DOWNSCALE_MAX_PX));
  assert.equal(size?.width, DOWNSCALE_MAX_PX);
});
