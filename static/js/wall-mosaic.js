// @ts-check
// The wall's grid layout: as many of the newest photos as fit at a readable size, sharp at 4K
// (the display rendition, not the thumbnail); when idle it pages through older photos, and a
// new photo brings the first page back with the newcomer in front.

import { altText } from "./gallery.js";
import { h } from "./ui.js";
import { captionFor } from "./wall-spotlight.js";

const TILE_ASPECT = 4 / 3; // width / height of a tile
const ROWS_LANDSCAPE = 3; // a full page on a landscape screen: three rows of tiles
const PAGE_FADE_MS = 450;

/**
 * The columns and rows that give `count` tiles the largest size in a `width` x `height` area.
 * @returns {{cols: number, rows: number}}
 */
export function bestFit(count, width, height) {
  let best = { cols: 1, rows: 1, size: 0 };
  for (let cols = 1; cols <= Math.max(1, count); cols++) {
    const rows = Math.ceil(count / cols);
    const tileWidth = Math.min(width / cols, (height / rows) * TILE_ASPECT);
    if (tileWidth > best.size) best = { cols, rows, size: tileWidth };
  }
  return { cols: best.cols, rows: best.rows };
}

export class Mosaic {
  /**
   * @param {{stage: HTMLElement, list: HTMLElement, pageLabel: HTMLElement,
   *          feed: import("./live.js").RoomFeed}} parts
   */
  constructor({ stage, list, pageLabel, feed }) {
    this.stage = stage;
    this.list = list;
    this.pageLabel = pageLabel;
    this.feed = feed;
    this.page = 0;
    this.active = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.fadeTimer = undefined;
    this.resize = new ResizeObserver(() => this.active && this.render());
  }

  /** Photos one page holds at the stage's current size (at least 2). */
  capacity() {
    const width = this.stage.clientWidth || window.innerWidth;
    const height = this.stage.clientHeight || window.innerHeight;
    if (width >= height) {
      const rowHeight = height / ROWS_LANDSCAPE;
      const cols = Math.max(2, Math.round(width / (rowHeight * TILE_ASPECT)));
      return cols * ROWS_LANDSCAPE;
    }
    const cols = 2;
    const rows = Math.max(2, Math.round(height / (width / cols / TILE_ASPECT)));
    return cols * rows;
  }

  pageCount() {
    return Math.max(1, Math.ceil(this.feed.images.size / this.capacity()));
  }

  activate() {
    this.active = true;
    this.page = 0;
    this.resize.observe(this.stage);
    this.render();
  }

  deactivate() {
    this.active = false;
    this.resize.disconnect();
    clearTimeout(this.fadeTimer);
    this.list.replaceChildren();
    this.list.classList.remove("is-turning");
    this.pageLabel.textContent = "";
  }

  /** A new photo: back to the first page, where it is the first tile. */
  added(image) {
    if (!this.active) return;
    if (this.page !== 0) this.turnTo(0);
    else this.render(image.id);
  }

  removed() {
    if (!this.active) return;
    this.page = Math.min(this.page, this.pageCount() - 1);
    this.render();
  }

  /** Idle: show the next page (wrapping to the newest); nothing to do when all fit on one. */
  advance() {
    if (!this.active) return;
    const pages = this.pageCount();
    if (pages > 1) this.turnTo((this.page + 1) % pages);
  }

  /** Fade the page out, swap its photos, fade in (the CSS makes it instant with reduced motion). */
  turnTo(page) {
    this.page = page;
    clearTimeout(this.fadeTimer);
    const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    if (reduced || !this.list.children.length) {
      this.render();
      return;
    }
    this.list.classList.add("is-turning");
    this.fadeTimer = setTimeout(() => {
      this.render();
      this.list.classList.remove("is-turning");
    }, PAGE_FADE_MS);
  }

  /** Show the current page; `newId`: a photo that just arrived (animated in). */
  render(newId = null) {
    if (!this.active) return;
    const capacity = this.capacity();
    const images = this.feed.sorted();
    const shown = images.slice(this.page * capacity, (this.page + 1) * capacity);
    const { cols, rows } = bestFit(shown.length, this.stage.clientWidth || 16, this.stage.clientHeight || 9);
    this.list.style.setProperty("--cols", String(cols));
    this.list.style.setProperty("--rows", String(rows));
    this.list.dataset.page = String(this.page);

    /** @type {Set<string | undefined>} */
    const keep = new Set(shown.map((image) => String(image.id)));
    for (const tile of /** @type {HTMLElement[]} */ ([...this.list.children])) {
      if (!keep.has(tile.dataset.imageId)) tile.remove();
    }
    shown.forEach((image, index) => {
      let tile = this.list.querySelector(`[data-image-id="${image.id}"]`);
      if (!tile) tile = this.tile(image, image.id === newId);
      if (this.list.children[index] !== tile) this.list.insertBefore(tile, this.list.children[index] || null);
    });
    const pages = Math.ceil(images.length / capacity);
    this.pageLabel.textContent = pages > 1 ? `${this.page + 1} / ${pages}` : "";
  }

  tile(image, isNew) {
    const tile = h(
      "li",
      { class: isNew ? "mosaic-tile is-new" : "mosaic-tile", "data-testid": "image", dataset: { imageId: String(image.id) } },
      h(
        "figure",
        { class: "mosaic-figure" },
        h("img", {
          class: "mosaic-img",
          // The display rendition: a tile on a 4K wall is wider than the 400 px thumbnail.
          src: image.url,
          alt: altText(image),
          width: image.width || null,
          height: image.height || null,
          decoding: "async",
        }),
        captionFor(image, "mosaic-caption"),
      ),
    );
    if (isNew) setTimeout(() => tile.classList.remove("is-new"), 1200);
    return tile;
  }
}
