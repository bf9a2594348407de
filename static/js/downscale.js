// @ts-check
// Getting a photo ready to send from a phone: optionally make a big camera photo smaller
// (fewer bytes over a weak event Wi-Fi, same detail on the wall), and a small preview for
// the upload list. Everything here degrades to "send the original, show a plain tile".

/** Longest side kept, in pixels: twice the 1600 px display rendition, so the server's
 *  half-scale decode of the upload still has every pixel the rendition needs. */
export const DOWNSCALE_MAX_PX = 3200;
/** JPEG quality of a downscaled photo (0-1). */
export const DOWNSCALE_QUALITY = 0.9;
/** Longest side of the local preview, in CSS pixels times a typical phone's density. */
const PREVIEW_PX = 160;

const DOWNSCALABLE = new Set(["image/jpeg", "image/png", "image/webp"]);
const BY_EXTENSION = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp" };

/** The file's type, from the browser or, when it says nothing, from the name's extension. */
function typeOf(file) {
  if (file.type) return file.type.toLowerCase();
  const extension = (file.name || "").split(".").pop().toLowerCase();
  return BY_EXTENSION[extension] || "";
}

/** `IMG_0001.png` → `IMG_0001.jpg` (the bytes sent are JPEG after downscaling). */
function jpegName(name) {
  const base = (name || "photo").replace(/\.[^./\\]*$/, "");
  return `${base || "photo"}.jpg`;
}

function makeCanvas(width, height) {
  if (typeof OffscreenCanvas === "function") return new OffscreenCanvas(width, height);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

function encodeJpeg(canvas, quality) {
  if (typeof canvas.convertToBlob === "function") {
    return canvas.convertToBlob({ type: "image/jpeg", quality });
  }
  return new Promise((resolve, reject) => {
    canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error("JPEG encoding failed"))),
      "image/jpeg",
      quality,
    );
  });
}

/** Draw `bitmap` at width x height on a white background (JPEG has no transparency). */
function draw(bitmap, width, height) {
  const canvas = makeCanvas(width, height);
  // Both canvas kinds give a 2D context for "2d"; tsc's union of their overloads loses that.
  const context = /** @type {CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null} */ (
    canvas.getContext("2d", { alpha: false })
  );
  if (!context) throw new Error("no 2D canvas context"); // callers keep the original file
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, width, height);
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, width, height);
  return canvas;
}

/**
 * Fit width x height inside a square of `max` pixels, keeping the aspect ratio (never upscales,
 * never below 1 pixel).
 * @param {number} width
 * @param {number} height
 * @param {number} max
 * @returns {{width: number, height: number}}
 */
export function fitInside(width, height, max) {
  const scale = Math.min(1, max / Math.max(width, height));
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

/**
 * The size to downscale a width x height image to, or null when its longest side is already
 * at most `maxPx` (it is sent as it is).
 * @param {number} width
 * @param {number} height
 * @param {number} maxPx
 * @returns {{width: number, height: number} | null}
 */
export function downscaleTarget(width, height, maxPx) {
  if (Math.max(width, height) <= maxPx) return null;
  return fitInside(width, height, maxPx);
}

/**
 * @typedef {object} PreparedUpload
 * @property {Blob} blob the bytes to send
 * @property {string} name the file name to send
 * @property {boolean} downscaled
 * @property {number|null} width upright pixel width sent (null when not decoded in full)
 * @property {number|null} height
 * @property {Blob|null} preview a small JPEG for the upload list
 */

/**
 * Decode `file` upright (EXIF orientation applied), or null when the browser cannot.
 * `options`: more createImageBitmap options (e.g. resizeWidth for a small copy).
 */
async function decode(file, options = {}) {
  if (typeof createImageBitmap !== "function") return null;
  try {
    return await createImageBitmap(file, { imageOrientation: "from-image", ...options });
  } catch {
    return null; // e.g. HEIC in Chromium, or a damaged file: the server will judge it.
  }
}

async function previewFrom(bitmap) {
  try {
    const size = fitInside(bitmap.width, bitmap.height, PREVIEW_PX);
    return await encodeJpeg(draw(bitmap, size.width, size.height), 0.8);
  } catch {
    return null;
  }
}

/**
 * Get a picked file ready to upload.
 *
 * With `downscale` on, a JPEG, PNG or WebP whose longest side exceeds `maxPx` is decoded
 * upright, drawn at most `maxPx` on its longest side and encoded as JPEG at `quality`; the
 * result is used only when it is smaller than the file. Anything else (other types, decoding
 * failures, a result that is not smaller) keeps the original file.
 *
 * Resolves to {blob, name, downscaled, width, height, preview}: `blob` the bytes to send (keep
 * it: a retry must send the very same bytes), `name` the file name to send, `width`/`height`
 * the upright pixel size sent (null when not decoded in full: not downscalable, downscaling
 * off, or the browser could not decode it), `preview` a small JPEG Blob for the upload list
 * (or null). Never rejects.
 *
 * @param {File} file
 * @param {{downscale?: boolean, maxPx?: number, quality?: number}} [options]
 * @returns {Promise<PreparedUpload>}
 */
export async function prepareUpload(
  file,
  { downscale = true, maxPx = DOWNSCALE_MAX_PX, quality = DOWNSCALE_QUALITY } = {},
) {
  /** @type {PreparedUpload} */
  const original = { blob: file, name: file.name || "photo", downscaled: false, width: null, height: null, preview: null };
  if (!downscale || !DOWNSCALABLE.has(typeOf(file))) {
    // Only a preview is needed: let the decoder make it small instead of holding every pixel.
    const small = await decode(file, { resizeWidth: PREVIEW_PX, resizeQuality: "medium" });
    if (small) {
      original.preview = await previewFrom(small);
      small.close();
    }
    return original;
  }
  const bitmap = await decode(file);
  if (!bitmap) return original;
  try {
    original.width = bitmap.width;
    original.height = bitmap.height;
    original.preview = await previewFrom(bitmap);
    const size = downscaleTarget(bitmap.width, bitmap.height, maxPx);
    if (!size) return original;
    let blob;
    try {
      blob = await encodeJpeg(draw(bitmap, size.width, size.height), quality);
    } catch {
      return original; // Out of memory on a small phone, say: send the file as it is.
    }
    if (!blob || blob.size >= file.size) return original;
    return {
      blob,
      name: jpegName(file.name),
      downscaled: true,
      width: size.width,
      height: size.height,
      preview: original.preview,
    };
  } finally {
    bitmap.close();
  }
}
