// @ts-check
// The thumbnail grid used by the host and participant pages, and the photo viewer
// (lightbox) that opens the display rendition.

import { roomApi } from "./api.js";
import { h, timeElement } from "./ui.js";

/** Alt text for an image: its caption, else who shared it. */
export function altText(image) {
  if (image.caption) return image.caption;
  return image.uploader_name ? `Photo shared by ${image.uploader_name}` : "Shared photo";
}

export function byline(image) {
  return image.uploader_name ? image.uploader_name : "Someone";
}

/** A grid of image cards, newest first, bound to a RoomFeed. */
export class Gallery {
  /**
   * @param {HTMLElement} container  the grid element (a <ul>)
   * @param {import("./live.js").RoomFeed} feed
   * @param {{canDelete?: (image: any) => boolean, onDelete?: (image: any) => void,
   *          onOpen?: (image: any) => void, empty?: HTMLElement}} [options]
   */
  constructor(container, feed, { canDelete = () => false, onDelete, onOpen, empty } = {}) {
    this.container = container;
    this.feed = feed;
    this.canDelete = canDelete;
    this.onDelete = onDelete;
    this.onOpen = onOpen;
    this.empty = empty;
    feed.addEventListener("add", (event) => this.insert(event.detail.image, !event.detail.initial));
    feed.addEventListener("remove", (event) => this.removeCard(event.detail.id));
    feed.addEventListener("ready", () => this._updateEmpty());
  }

  card(id) {
    return this.container.querySelector(`[data-image-id="${Number(id)}"]`);
  }

  /** Re-evaluate which cards show a delete button (e.g. after the host key was accepted). */
  refreshPermissions() {
    for (const image of this.feed.images.values()) {
      const card = this.card(image.id);
      if (card) card.replaceWith(this._build(image, false));
    }
  }

  insert(image, animate) {
    if (this.card(image.id)) return;
    const card = this._build(image, animate);
    // Newest first: most insertions go to the top, so check that case before scanning.
    const first = /** @type {HTMLElement|null} */ (this.container.firstElementChild);
    if (!first || Number(first.dataset.imageId) < image.id) {
      this.container.prepend(card);
    } else {
      let before = null;
      for (const other of /** @type {HTMLElement[]} */ ([...this.container.children])) {
        if (Number(other.dataset.imageId) < image.id) {
          before = other;
          break;
        }
      }
      this.container.insertBefore(card, before);
    }
    this._updateEmpty();
  }

  removeCard(id) {
    const card = this.card(id);
    if (card) {
      // Keep keyboard focus in the grid when the focused card disappears.
      const hadFocus = card.contains(document.activeElement);
      const next = card.nextElementSibling || card.previousElementSibling;
      card.remove();
      if (hadFocus && next) next.querySelector("button")?.focus();
    }
    this._updateEmpty();
  }

  _updateEmpty() {
    if (this.empty) this.empty.hidden = this.container.children.length > 0;
  }

  _build(image, animate) {
    const img = h("img", {
      src: image.thumb_url,
      alt: altText(image),
      width: image.thumb_width || null,
      height: image.thumb_height || null,
      loading: "lazy",
      decoding: "async",
    });
    const open = h(
      "button",
      {
        type: "button",
        class: "photo-open",
        "aria-label": `Open photo: ${altText(image)}`,
        onclick: () => this.onOpen && this.onOpen(image),
      },
      img,
    );
    const meta = h(
      "figcaption",
      { class: "photo-meta" },
      image.caption ? h("span", { class: "photo-caption" }, image.caption) : null,
      h(
        "span",
        { class: "photo-byline" },
        h("span", { class: "photo-name" }, byline(image)),
        " · ",
        timeElement(image.created_at),
      ),
    );
    const remove = this.canDelete(image)
      ? h(
          "button",
          {
            type: "button",
            class: "photo-delete",
            "data-testid": "delete-image",
            "aria-label": `Delete photo: ${altText(image)}`,
            title: "Delete photo",
            onclick: () => this.onDelete && this.onDelete(image),
          },
          trashIcon(),
        )
      : null;
    return h(
      "li",
      {
        class: animate ? "photo is-new" : "photo",
        "data-testid": "image",
        dataset: { imageId: String(image.id) },
      },
      h("figure", { class: "photo-figure" }, open, meta),
      remove,
    );
  }
}

export function trashIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(ns, "path");
  path.setAttribute(
    "d",
    "M9 3h6a1 1 0 0 1 1 1v1h4v2H4V5h4V4a1 1 0 0 1 1-1zm-3 6h12l-.9 11.1A2 2 0 0 1 15.1 22H8.9a2 2 0 0 1-2-1.9L6 9zm4 3v7h1.5v-7H10zm3.5 0v7H15v-7h-1.5z",
  );
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** Where the full-resolution JPEG of an image is downloaded from (an attachment). */
export function downloadUrl(token, image) {
  return roomApi(token, `/images/${image.id}/download`);
}

/**
 * A full-screen photo viewer over the feed's images (newest first), with previous/next
 * buttons, arrow keys and swipes, Escape to close (focus goes back where it was), and a
 * "Download full quality" link (`.download`; the shown image is `.current`). Closes by itself
 * when the shown image is deleted. Toasts shown while it is open appear inside it.
 * `download(image)`: the link's URL (default: the room's full-resolution download).
 */
export class Lightbox {
  /**
   * @param {import("./live.js").RoomFeed} feed
   * @param {{canDelete?: (image: any) => boolean, onDelete?: (image: any) => void,
   *          download?: (image: any) => string}} [options]
   */
  constructor(feed, { canDelete = () => false, onDelete, download } = {}) {
    this.feed = feed;
    this.canDelete = canDelete;
    this.onDelete = onDelete;
    this.downloadUrl = download || ((image) => downloadUrl(feed.token, image));
    this.current = null;
    /** @type {HTMLElement|null} */
    this.returnFocus = null;

    this.img = h("img", { class: "lightbox-img", alt: "" });
    this.caption = h("p", { class: "lightbox-caption" });
    this.meta = h("p", { class: "lightbox-meta" });
    this.prevButton = h(
      "button",
      { type: "button", class: "lightbox-nav prev", "aria-label": "Newer photo", onclick: () => this.step(-1) },
      "‹",
    );
    this.nextButton = h(
      "button",
      { type: "button", class: "lightbox-nav next", "aria-label": "Older photo", onclick: () => this.step(1) },
      "›",
    );
    this.deleteButton = h(
      "button",
      {
        type: "button",
        class: "btn btn-danger btn-small",
        "data-testid": "lightbox-delete",
        onclick: () => this.current && this.onDelete && this.onDelete(this.current),
      },
      trashIcon(),
      h("span", {}, "Delete"),
    );
    this.download = h(
      "a",
      { class: "btn btn-ghost-dark btn-small", download: "", "data-testid": "lightbox-download" },
      "Download full quality",
    );
    const close = h(
      "button",
      { type: "button", class: "lightbox-close", "aria-label": "Close", onclick: () => this.close() },
      "×",
    );
    this.dialog = h(
      "dialog",
      { class: "lightbox", "aria-label": "Photo viewer", "data-testid": "lightbox" },
      close,
      h("div", { class: "lightbox-stage" }, this.prevButton, this.img, this.nextButton),
      h(
        "div",
        { class: "lightbox-bar" },
        h("div", { class: "lightbox-text" }, this.caption, this.meta),
        h("div", { class: "lightbox-actions" }, this.download, this.deleteButton),
      ),
    );
    this.dialog.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft") this.step(-1);
      else if (event.key === "ArrowRight") this.step(1);
    });
    this.dialog.addEventListener("click", (event) => {
      if (event.target === this.dialog) this.close();
    });
    this.dialog.addEventListener("close", () => {
      this._holdToasts(false);
      this.current = null;
      this.img.removeAttribute("src");
      // Back to the thumbnail that opened it (if it is still there), for keyboard users.
      if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
      this.returnFocus = null;
    });
    let startX = null;
    this.dialog.addEventListener("touchstart", (e) => (startX = e.touches[0].clientX), { passive: true });
    this.dialog.addEventListener("touchend", (e) => {
      if (startX == null) return;
      const dx = e.changedTouches[0].clientX - startX;
      startX = null;
      if (Math.abs(dx) > 60) this.step(dx > 0 ? -1 : 1);
    });
    document.body.append(this.dialog);

    feed.addEventListener("remove", (event) => {
      if (this.current && this.current.id === event.detail.id) this.close();
    });
  }

  open(image) {
    this.show(image);
    if (!this.dialog.open) {
      this.returnFocus = /** @type {HTMLElement|null} */ (document.activeElement);
      this.dialog.showModal();
      this._holdToasts(true);
    }
  }

  // A modal dialog hides and silences the page outside it: while the viewer is open, the
  // page's toast region (ui.js looks it up by id) lives inside it, so messages are seen and
  // announced there.
  _holdToasts(inside) {
    let region = document.getElementById("toasts");
    if (!region) {
      if (!inside) return;
      region = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    }
    (inside ? this.dialog : document.body).append(region);
  }

  show(image) {
    this.current = image;
    this.img.src = image.url;
    this.img.alt = altText(image);
    this.caption.textContent = image.caption || "";
    this.caption.hidden = !image.caption;
    this.meta.replaceChildren(
      image.status === "pending" ? "Waiting for the host's approval · " : "",
      `Shared by ${byline(image)} · `,
      timeElement(image.created_at),
    );
    this.download.href = this.downloadUrl(image);
    this.deleteButton.hidden = !this.canDelete(image);
    const list = this.feed.sorted();
    const index = list.findIndex((i) => i.id === image.id);
    this.prevButton.disabled = index <= 0;
    this.nextButton.disabled = index < 0 || index >= list.length - 1;
  }

  step(delta) {
    if (!this.current) return;
    const list = this.feed.sorted();
    const index = list.findIndex((i) => i.id === this.current.id);
    const next = list[index + delta];
    if (next) this.show(next);
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}
