// @ts-check
// The wall's spotlight layout: one photo large with a cross-fade, and a strip of the most
// recent photos under it. New photos queue for the spotlight, in upload order, and each stays
// large for at least the wall's minimum time; a long queue (a burst) is shown faster, down to
// a floor; a queue over its cap is caught up by a mosaic of what was waiting, then the newest.
// With the queue empty, the idle cycle walks through the room's photos. While something else
// covers the wall (its "scan to join" intermission) the queue is held: photos that arrive wait,
// a running turn pauses, and each gets its full time once the wall is back.

import { altText, byline } from "./gallery.js";
import { h, timeAgo } from "./ui.js";

const STRIP_SIZE = 8;
const FADE_MS = 900;
/** Longest queue shown at the full minimum time; a longer one shares it out (a burst). */
const BURST_QUEUE = 10;
/** Shortest turn of a photo in a burst, when the minimum time is longer than this. */
const BURST_FLOOR_MS = 1500;
export const DEFAULT_QUEUE_CAP = 30;
const CATCHUP_TILES = 30;

/** Resolve to a decoded <img> for `url` (or the undecodable one: a broken photo must not stall the wall). */
export function preload(url) {
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  return img.decode().then(
    () => img,
    () => img,
  );
}

/** The caption block shared by the spotlight and the grid tiles (hidden by CSS when captions are off). */
export function captionFor(image, className) {
  return h(
    "figcaption",
    { class: className, "data-testid": "caption" },
    image.caption ? h("p", { class: "caption-text" }, image.caption) : null,
    h(
      "p",
      { class: "caption-byline" },
      h("span", {}, "Shared by ", h("strong", { class: "caption-name" }, byline(image))),
      h("span", { "aria-hidden": "true" }, "·"),
      h("span", { class: "caption-time", dataset: { created: image.created_at } }, timeAgo(image.created_at)),
    ),
  );
}

export class Spotlight {
  /**
   * @param {{figure: HTMLElement, strip: HTMLElement, feed: import("./live.js").RoomFeed,
   *   minSeconds?: number, queueCap?: number, onDrained?: () => void}} parts
   *   minSeconds: least time each queued photo stays large (seconds); queueCap: most photos
   *   waiting before the wall catches up; onDrained: called when the last queued photo's turn
   *   ends (the idle cycle starts its wait again).
   */
  constructor({ figure, strip, feed, minSeconds = 5, queueCap = DEFAULT_QUEUE_CAP, onDrained = () => {} }) {
    this.figure = figure;
    this.strip = strip;
    this.feed = feed;
    this.current = null;
    this.generation = 0; // bumps on every change; a slower preload of an older choice is dropped
    this.active = false;
    /** @type {number} the least time a queued photo stays large, in ms (set by minSeconds) */
    this.minMs;
    this.minSeconds = minSeconds;
    this.queueCap = Math.max(1, queueCap);
    this.onDrained = onDrained;
    this.queue = []; // images waiting for their turn, oldest first
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.turnTimer = null;
    this.busy = false; // a turn (a queued photo or the catch-up mosaic) is running
    this.held = false; // hold(): no turn starts or ends until release()
    this.turnDone = null; // what the running turn's timer calls when it ends
    this.turnEndsAt = 0; // when it ends (ms since the epoch)
    this.pausedMs = null; // the rest of a turn paused by hold(), in ms
    this.publishQueue();
  }

  /** Change the least time a queued photo stays large (seconds), e.g. the host changed it. */
  set minSeconds(seconds) {
    this.minMs = seconds * 1000;
    this.figure.dataset.minSeconds = String(seconds);
  }

  /** How long the next turn lasts (ms): the minimum, shared out when a burst is waiting. */
  turnMs() {
    if (this.queue.length <= BURST_QUEUE) return this.minMs;
    return Math.min(this.minMs, Math.max(BURST_FLOOR_MS, (this.minMs * BURST_QUEUE) / this.queue.length));
  }

  publishQueue() {
    this.figure.dataset.queue = String(this.queue.length);
  }

  /** Show the newest photo and the strip. */
  activate() {
    this.active = true;
    this.renderStrip();
    const newest = this.feed.sorted()[0];
    if (newest) this.show(newest);
    else this.clear();
  }

  /** Empty the layout (another one takes over): its tiles must not linger in the page. */
  deactivate() {
    this.active = false;
    this.resetQueue();
    this.clear();
    this.strip.replaceChildren();
  }

  resetQueue() {
    this.stopTimer();
    this.busy = false;
    this.queue = [];
    this.publishQueue();
  }

  /** A new photo arrived: it waits for its turn (at once when nothing else is waiting). */
  added(image) {
    if (!this.active) return;
    this.renderStrip();
    if (this.queue.some((queued) => queued.id === image.id) || (this.current && this.current.id === image.id)) return;
    // Upload order, even when a catch-up after reconnecting brings older ones late.
    const at = this.queue.findIndex((queued) => queued.id > image.id);
    if (at < 0) this.queue.push(image);
    else this.queue.splice(at, 0, image);
    if (this.queue.length > this.queueCap && !this.held) {
      this.catchUp();
      return;
    }
    this.publishQueue();
    if (!this.busy && !this.held) this.nextTurn();
  }

  /**
   * Hold the queue while something else covers the wall: photos that arrive wait, and a
   * running turn pauses (its photo gets the rest of its time after release()).
   */
  hold() {
    if (this.held) return;
    this.held = true;
    if (this.turnTimer !== null) {
      this.pausedMs = Math.max(0, this.turnEndsAt - Date.now());
      clearTimeout(this.turnTimer);
      this.turnTimer = null;
    }
  }

  /** The wall is back: a paused turn runs its rest, else the next queued photo's turn starts. */
  release() {
    if (!this.held) return;
    this.held = false;
    if (this.pausedMs !== null) {
      const ms = this.pausedMs;
      this.pausedMs = null;
      this.startTimer(this.turnDone, ms);
      return;
    }
    if (!this.active || this.busy) return;
    if (this.queue.length > this.queueCap) this.catchUp();
    else if (this.queue.length) this.nextTurn();
  }

  /** End the running turn after `ms` with `done` (held: once released, after the same `ms`). */
  startTimer(done, ms) {
    this.stopTimer();
    this.turnDone = done;
    if (this.held) {
      this.pausedMs = ms;
      return;
    }
    this.turnEndsAt = Date.now() + ms;
    this.turnTimer = setTimeout(() => {
      this.turnTimer = null;
      done();
    }, ms);
  }

  stopTimer() {
    if (this.turnTimer !== null) clearTimeout(this.turnTimer);
    this.turnTimer = null;
    this.pausedMs = null;
  }

  removed(id) {
    if (!this.active) return;
    this.renderStrip();
    const before = this.queue.length;
    this.queue = this.queue.filter((image) => image.id !== id);
    if (this.queue.length !== before) this.publishQueue();
    // Nor does it stay in a catch-up mosaic on screen.
    for (const tile of this.figure.querySelectorAll(`.catchup-tile[data-image-id="${id}"]`)) tile.remove();
    if (this.current && this.current.id === id) {
      this.stopTimer();
      this.busy = false;
      if (this.queue.length && !this.held) this.nextTurn();
      else {
        const newest = this.feed.sorted()[0];
        if (newest) this.show(newest);
        else this.clear();
      }
    }
  }

  /** Idle: move the spotlight to the next older photo, wrapping to the newest. */
  advance() {
    if (!this.active || this.busy || this.held) return;
    const images = this.feed.sorted();
    if (images.length < 2) return;
    const index = this.current ? images.findIndex((image) => image.id === this.current.id) : -1;
    this.show(images[(index + 1) % images.length]);
  }

  /** Give the next queued photo its turn; with none left, hand back to the idle cycle. */
  async nextTurn() {
    this.stopTimer();
    const image = this.queue.shift();
    this.publishQueue();
    if (!image) {
      this.busy = false;
      this.onDrained();
      return;
    }
    this.busy = true;
    const ms = this.turnMs();
    const shown = await this.show(image);
    if (!this.active || !this.busy) return;
    if (!shown) return; // a newer choice (a removal) took over and runs its own turn
    this.startTimer(() => this.nextTurn(), ms);
  }

  /**
   * Over the cap: show what was waiting as a mosaic for one turn, then the newest (the
   * queue is emptied, so it never grows past the cap).
   */
  catchUp() {
    this.stopTimer();
    const waiting = this.queue;
    const newest = waiting[waiting.length - 1];
    this.queue = [];
    this.publishQueue();
    this.busy = true;
    this.generation++;
    this.current = null;
    const tiles = waiting.slice(-CATCHUP_TILES).map((image) =>
      h(
        "li",
        { class: "catchup-tile", dataset: { imageId: String(image.id) } },
        h("img", { src: image.thumb_url, alt: altText(image), decoding: "async" }),
      ),
    );
    const grid = h("ul", { class: "catchup-grid" }, ...tiles);
    // Through the CSSOM: the page's CSP refuses inline style attributes.
    grid.style.setProperty("--cols", String(Math.ceil(Math.sqrt(tiles.length))));
    const layer = h(
      "div",
      { class: "spot-layer spot-catchup", dataset: { count: String(waiting.length) } },
      h("p", { class: "catchup-title" }, `${waiting.length} new photos`),
      grid,
    );
    this.swapIn(layer);
    this.figure.dataset.showing = "catchup";
    delete this.figure.dataset.imageId;
    this.figure.setAttribute("aria-label", `${waiting.length} new photos`);
    this.markStrip();
    this.startTimer(() => {
      if (!this.active) return;
      // The newest goes first; anything that arrived during the mosaic follows it.
      if (newest && this.feed.get(newest.id) && !this.queue.some((image) => image.id === newest.id)) {
        this.queue.unshift(newest);
      }
      this.nextTurn();
    }, Math.max(this.minMs, BURST_FLOOR_MS));
  }

  /** Put `layer` on top and fade the layers under it out. */
  swapIn(layer) {
    const old = [...this.figure.querySelectorAll(".spot-layer")];
    this.figure.append(layer);
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

  /** Show `image` large; resolves to whether it was shown (false: a newer choice won). */
  async show(image) {
    const mine = ++this.generation;
    this.current = image;
    this.markStrip();
    const [img] = await Promise.all([preload(image.url), preload(image.thumb_url)]);
    if (mine !== this.generation || !this.active) return false;

    img.className = "spot-img";
    img.alt = altText(image);
    // The same photo, blurred, fills the letterbox bars around a contained image.
    const backdrop = h("img", { class: "spot-backdrop", src: image.thumb_url, alt: "", "aria-hidden": "true" });
    const layer = h(
      "div",
      { class: "spot-layer", dataset: { imageId: String(image.id) } },
      backdrop,
      img,
      captionFor(image, "spot-caption"),
    );
    this.swapIn(layer);
    delete this.figure.dataset.showing;
    this.figure.dataset.imageId = String(image.id);
    this.figure.setAttribute("aria-label", `Photo: ${altText(image)}, shared by ${byline(image)}`);
    return true;
  }

  clear() {
    this.generation++;
    this.current = null;
    this.figure.replaceChildren();
    delete this.figure.dataset.imageId;
    delete this.figure.dataset.showing;
    this.figure.removeAttribute("aria-label");
  }

  renderStrip() {
    const recent = this.feed.sorted().slice(0, STRIP_SIZE);
    /** @type {Set<string | undefined>} */
    const keep = new Set(recent.map((image) => String(image.id)));
    for (const tile of /** @type {HTMLElement[]} */ ([...this.strip.children])) {
      if (!keep.has(tile.dataset.imageId)) tile.remove();
    }
    recent.forEach((image, index) => {
      let tile = /** @type {HTMLElement|null} */ (this.strip.querySelector(`[data-image-id="${image.id}"]`));
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
        const added = tile;
        setTimeout(() => added.classList.remove("is-new"), 1200);
      }
      if (this.strip.children[index] !== tile) this.strip.insertBefore(tile, this.strip.children[index] || null);
    });
    this.markStrip();
  }

  markStrip() {
    const id = this.current ? String(this.current.id) : null;
    for (const tile of /** @type {HTMLElement[]} */ ([...this.strip.children])) tile.classList.toggle("is-current", tile.dataset.imageId === id);
  }
}
