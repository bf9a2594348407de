// The wall's spotlight layout: one photo large (the newest, or the one the idle cycle walks
// to) with a cross-fade, and a strip of the most recent photos under it.

import { altText, byline } from "./gallery.js";
import { h, timeAgo } from "./ui.js";

const STRIP_SIZE = 8;
const FADE_MS = 900;

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
   * @param {{figure: HTMLElement, strip: HTMLElement, feed: import("./live.js").RoomFeed}} parts
   */
  constructor({ figure, strip, feed }) {
    this.figure = figure;
    this.strip = strip;
    this.feed = feed;
    this.current = null;
    this.generation = 0; // bumps on every change; a slower preload of an older choice is dropped
    this.active = false;
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
    this.clear();
    this.strip.replaceChildren();
  }

  /** A new photo arrived: it takes the spotlight at once. */
  added(image) {
    if (!this.active) return;
    this.renderStrip();
    // Only the newest (a catch-up after reconnecting may add older ones).
    if (this.feed.sorted()[0].id === image.id) this.show(image);
  }

  removed(id) {
    if (!this.active) return;
    this.renderStrip();
    if (this.current && this.current.id === id) {
      const newest = this.feed.sorted()[0];
      if (newest) this.show(newest);
      else this.clear();
    }
  }

  /** Idle: move the spotlight to the next older photo, wrapping to the newest. */
  advance() {
    if (!this.active) return;
    const images = this.feed.sorted();
    if (images.length < 2) return;
    const index = this.current ? images.findIndex((image) => image.id === this.current.id) : -1;
    this.show(images[(index + 1) % images.length]);
  }

  async show(image) {
    const mine = ++this.generation;
    this.current = image;
    this.markStrip();
    const [img] = await Promise.all([preload(image.url), preload(image.thumb_url)]);
    if (mine !== this.generation || !this.active) return;

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
    const old = [...this.figure.querySelectorAll(".spot-layer")];
    this.figure.append(layer);
    this.figure.dataset.imageId = String(image.id);
    this.figure.setAttribute("aria-label", `Photo: ${altText(image)}, shared by ${byline(image)}`);
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

  clear() {
    this.generation++;
    this.current = null;
    this.figure.replaceChildren();
    delete this.figure.dataset.imageId;
    this.figure.removeAttribute("aria-label");
  }

  renderStrip() {
    const recent = this.feed.sorted().slice(0, STRIP_SIZE);
    const keep = new Set(recent.map((image) => String(image.id)));
    for (const tile of [...this.strip.children]) {
      if (!keep.has(tile.dataset.imageId)) tile.remove();
    }
    recent.forEach((image, index) => {
      let tile = this.strip.querySelector(`[data-image-id="${image.id}"]`);
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
      if (this.strip.children[index] !== tile) this.strip.insertBefore(tile, this.strip.children[index] || null);
    });
    this.markStrip();
  }

  markStrip() {
    const id = this.current ? String(this.current.id) : null;
    for (const tile of this.strip.children) tile.classList.toggle("is-current", tile.dataset.imageId === id);
  }
}
