// The wall, for a projector: the newest photo large, recent ones in a strip, the QR code in
// a corner. New photos take the spotlight with a cross-fade; when nothing new arrives for a
// while, the spotlight walks through recent photos so the wall stays alive.

import { readRoomData } from "./api.js";
import { altText, byline } from "./gallery.js";
import { RoomFeed } from "./live.js";
import { bindLiveIndicator, h, timeAgo } from "./ui.js";

const STRIP_SIZE = 8;
const IDLE_BEFORE_SHOWCASE_MS = 20_000;
const SHOWCASE_STEP_MS = 8_000;
const SHOWCASE_POOL = 20;
const FADE_MS = 900;

const room = readRoomData();
const $ = (id) => document.getElementById(id);
const wall = $("wall");
const spotlight = $("spotlight");
const strip = $("strip");

$("wall-url").textContent = room.join_url.replace(/^https?:\/\//, "");

const feed = new RoomFeed({ token: room.token, name: "Wall", lastSeq: room.last_seq });
bindLiveIndicator($("live"), feed);

let current = null; // image in the spotlight
let generation = 0; // bumps on every spotlight change; stale preloads are dropped
let showcaseTimer = null;
let lastArrival = Date.now();

// ---- Spotlight -----------------------------------------------------------------------------

function preload(url) {
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  return img.decode().then(
    () => img,
    () => img, // Show it anyway (alt text); a broken image must not stall the wall.
  );
}

async function spotlightImage(image) {
  const mine = ++generation;
  current = image;
  markStrip();
  const [img] = await Promise.all([preload(image.url), preload(image.thumb_url)]);
  if (mine !== generation) return;

  img.className = "spot-img";
  img.alt = altText(image);
  // The same photo, blurred, fills the letterbox bars around a contained image.
  const backdrop = h("img", { class: "spot-backdrop", src: image.thumb_url, alt: "", "aria-hidden": "true" });
  const caption = h(
    "figcaption",
    { class: "spot-caption" },
    image.caption ? h("p", { class: "spot-text" }, image.caption) : null,
    h(
      "p",
      { class: "spot-byline" },
      h("span", {}, "Shared by ", h("strong", { class: "spot-name" }, byline(image))),
      h("span", { "aria-hidden": "true" }, "·"),
      h("span", { class: "spot-time", dataset: { created: image.created_at } }, timeAgo(image.created_at)),
    ),
  );
  const layer = h("div", { class: "spot-layer", dataset: { imageId: String(image.id) } }, backdrop, img, caption);

  const old = [...spotlight.querySelectorAll(".spot-layer")];
  spotlight.append(layer);
  spotlight.dataset.imageId = String(image.id);
  spotlight.setAttribute("aria-label", `Newest photo: ${altText(image)}, shared by ${byline(image)}`);
  // Next frame, so the browser has laid out the layer at opacity 0 and the fade runs.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      layer.classList.add("is-active");
      for (const layerOut of old) {
        layerOut.classList.remove("is-active");
        layerOut.classList.add("is-leaving");
        setTimeout(() => layerOut.remove(), FADE_MS + 100);
      }
    }),
  );
}

function clearSpotlight() {
  generation++;
  current = null;
  spotlight.replaceChildren();
  delete spotlight.dataset.imageId;
}

// ---- Strip ---------------------------------------------------------------------------------

function renderStrip() {
  const recent = feed.sorted().slice(0, STRIP_SIZE);
  const keep = new Set(recent.map((image) => String(image.id)));
  for (const tile of [...strip.children]) {
    if (!keep.has(tile.dataset.imageId)) tile.remove();
  }
  recent.forEach((image, index) => {
    let tile = strip.querySelector(`[data-image-id="${image.id}"]`);
    if (!tile) {
      tile = h(
        "li",
        { class: "strip-tile is-new", "data-testid": "image", dataset: { imageId: String(image.id) } },
        h("img", {
          src: image.thumb_url,
          alt: altText(image),
          width: image.thumb_width || null,
          height: image.thumb_height || null,
          decoding: "async",
        }),
      );
      setTimeout(() => tile.classList.remove("is-new"), 1200);
    }
    if (strip.children[index] !== tile) strip.insertBefore(tile, strip.children[index] || null);
  });
  markStrip();
}

function markStrip() {
  for (const tile of strip.children) {
    tile.classList.toggle("is-current", current !== null && tile.dataset.imageId === String(current.id));
  }
}

// ---- State ---------------------------------------------------------------------------------

function updateState() {
  const count = feed.images.size;
  wall.dataset.state = count ? "showing" : "empty";
  $("photo-count").textContent = count === 1 ? "1 photo" : `${count} photos`;
  $("photo-count").hidden = count === 0;
  $("wall-invite").textContent = count ? "Scan to add yours" : "Scan to share your photos";
}

feed.addEventListener("add", (event) => {
  renderStrip();
  updateState();
  const { image, initial } = event.detail;
  if (initial) return; // The first load spotlights once, at "ready".
  lastArrival = Date.now();
  // Only the newest takes the spotlight (a catch-up after reconnecting may add older ones).
  if (feed.sorted()[0].id === image.id) spotlightImage(image);
});

feed.addEventListener("remove", (event) => {
  renderStrip();
  updateState();
  if (current && current.id === event.detail.id) {
    const newest = feed.sorted()[0];
    if (newest) spotlightImage(newest);
    else clearSpotlight();
  }
});

feed.addEventListener("ready", () => {
  renderStrip();
  updateState();
  const newest = feed.sorted()[0];
  if (newest) spotlightImage(newest);
});

feed.addEventListener("presence", (event) => {
  const people = event.detail.count;
  $("presence").textContent = people === 1 ? "1 person connected" : `${people} people connected`;
  $("presence").hidden = false;
});

// When nothing new arrives for a while, walk through recent photos; a new photo interrupts.
function startShowcase() {
  clearInterval(showcaseTimer);
  showcaseTimer = setInterval(() => {
    if (Date.now() - lastArrival < IDLE_BEFORE_SHOWCASE_MS) return;
    const pool = feed.sorted().slice(0, SHOWCASE_POOL);
    if (pool.length < 2 || !current) return;
    const index = pool.findIndex((image) => image.id === current.id);
    spotlightImage(pool[(index + 1) % pool.length]);
  }, SHOWCASE_STEP_MS);
}

// Keep the caption's "3 minutes ago" current.
setInterval(() => {
  for (const element of spotlight.querySelectorAll(".spot-time")) {
    element.textContent = timeAgo(element.dataset.created);
  }
}, 30_000);

// ---- Projector niceties --------------------------------------------------------------------

const fullscreenButton = $("fullscreen");
function syncFullscreenButton() {
  fullscreenButton.hidden = !document.fullscreenEnabled || Boolean(document.fullscreenElement);
}
fullscreenButton.addEventListener("click", () => {
  document.documentElement.requestFullscreen().catch(() => {});
});
document.addEventListener("fullscreenchange", syncFullscreenButton);
document.addEventListener("keydown", (event) => {
  if ((event.key === "f" || event.key === "F") && !event.ctrlKey && !event.metaKey && !event.altKey) {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (document.fullscreenEnabled) document.documentElement.requestFullscreen().catch(() => {});
  }
});
syncFullscreenButton();

// Hide the mouse pointer and controls when the mouse rests.
let idleTimer = null;
function wake() {
  document.body.classList.remove("is-idle");
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => document.body.classList.add("is-idle"), 3000);
}
for (const type of ["mousemove", "mousedown", "keydown", "touchstart"]) {
  document.addEventListener(type, wake, { passive: true });
}
wake();

// Keep the projector's screen from sleeping (where the browser allows it).
let wakeLock = null;
async function holdWakeLock() {
  if (!("wakeLock" in navigator) || document.visibilityState !== "visible" || wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => (wakeLock = null));
  } catch {
    wakeLock = null; // Not allowed here (e.g. no user gesture yet, or battery saver).
  }
}
document.addEventListener("visibilitychange", holdWakeLock);
document.addEventListener("click", holdWakeLock);
holdWakeLock();

startShowcase();
feed.start();
