// @ts-check
// "My uploads": every photo this guest sent to the room, with where it stands. Rows come from
// two places: the upload queue (this visit: preparing, uploading n %, retrying in N s,
// failed…) and the server's list of the guest's images (`GET .../images?mine=true`, earlier
// visits and pending approvals). A queue row that has been stored takes over the server row
// of the same image.

import { trashIcon } from "./gallery.js";
import { refusalMessage, transientReason } from "./messages.js";
import { formatBytes, h, timeElement } from "./ui.js";

const STATE_LABELS = {
  preparing: "Getting ready…",
  held: "Ready to share. Add a caption if you like.",
  queued: "Waiting to upload…",
  offline: "You're offline. It will upload as soon as you're back online.",
  pending: "Waiting for the host's approval",
  done: "Shared with the room · on the wall",
  declined: "The host didn't approve this photo.",
};

/**
 * @param {{list: HTMLElement, section: HTMLElement, count: HTMLElement,
 *          summary: HTMLElement, summaryText: HTMLElement, retryAll: HTMLButtonElement,
 *          queue: import("./uploader.js").UploadQueue,
 *          onOpen: (image) => void, onDelete: (image) => void,
 *          me: () => object|null}} options
 */
export class MyUploads {
  constructor({ list, section, count, summary, summaryText, retryAll, queue, onOpen, onDelete, me }) {
    this.list = list;
    this.section = section;
    this.count = count;
    this.summary = summary;
    this.summaryText = summaryText;
    this.retryAllButton = retryAll;
    this.queue = queue;
    this.onOpen = onOpen;
    this.onDelete = onDelete;
    this.me = me;
    /** queue item → Row */
    this.itemRows = new Map();
    /** image id → Row, for images known only from the server list */
    this.imageRows = new Map();
    /** image id → "pending" | "approved", as last heard */
    this.status = new Map();
    this._ticker = null;
    this._lastSummary = "";

    queue.addEventListener("added", (event) => this._addItem(event.detail.item));
    queue.addEventListener("change", (event) => this._updateItem(event.detail.item));
    queue.addEventListener("removed", (event) => this._removeItem(event.detail.item));
    queue.addEventListener("uploaded", (event) => {
      const { image } = event.detail;
      // The same bytes shared earlier by someone else come back as their image: not ours.
      if (!this.isMine(image)) return;
      this.status.set(image.id, image.status === "pending" ? "pending" : "approved");
      const serverRow = this.imageRows.get(image.id);
      if (serverRow) {
        serverRow.element.remove();
        this.imageRows.delete(image.id);
      }
      this._updateCount();
    });
    retryAll.addEventListener("click", () => queue.retryAll());
  }

  /** Whether image `id` is one of the guest's own (for the gallery's delete buttons). */
  owns(id) {
    return this.status.has(Number(id));
  }

  /** Whether `image` was uploaded by the guest as they are now. */
  isMine(image) {
    const me = this.me();
    return Boolean(me && image && image.participant_id === me.id);
  }

  /** The ids known now, to pass to setServerImages for a list fetched from now on. */
  knownIds() {
    return new Set(this.status.keys());
  }

  /**
   * Show the server's list of the guest's images (complete, upload order), fetched when only
   * `knownBefore` were known: those missing from it were deleted, and a pending one that
   * vanished was turned down by the host. (Images learnt of since may be newer than the list.)
   */
  setServerImages(images, knownBefore) {
    const present = new Set(images.map((image) => image.id));
    for (const image of images) {
      // An approval heard live is newer than any list: never go back to pending.
      if (image.status === "pending" && this.status.get(image.id) === "approved") continue;
      this.status.set(image.id, image.status === "pending" ? "pending" : "approved");
      if (image.status !== "pending") this.queue.markApproved(image.id);
    }
    for (const [id, status] of [...this.status]) {
      if (present.has(id) || !knownBefore.has(id)) continue;
      this.status.delete(id);
      this._vanished(id, status === "pending");
    }
    // Newest first, below this visit's queue rows.
    for (const image of [...images].sort((a, b) => b.id - a.id)) {
      if (this.queue.itemForImage(image.id)) {
        this._updateItem(this.queue.itemForImage(image.id));
        continue;
      }
      let row = this.imageRows.get(image.id);
      if (!row) {
        row = new Row(this, { image });
        this.imageRows.set(image.id, row);
      }
      row.image = { ...image, status: this.status.get(image.id) === "approved" ? "approved" : image.status };
      this.list.append(row.element); // re-appending keeps the order
      row.render();
    }
    this._updateCount();
  }

  /** The room announced image `image` (image_added): if it is ours and pending, it's approved. */
  approved(image) {
    if (!this.status.has(image.id)) return;
    this.status.set(image.id, "approved");
    this.queue.markApproved(image.id);
    const row = this.imageRows.get(image.id);
    if (row) {
      row.image = { ...row.image, ...image, status: "approved" };
      row.render();
    }
    this._updateSummary();
  }

  /** Image `id` was deleted (by the guest or the host). */
  removed(id) {
    id = Number(id);
    const known = this.status.delete(id);
    if (!known && !this.queue.itemForImage(id)) return;
    this._vanished(id, false);
    this._updateCount();
  }

  _vanished(id, declined) {
    const item = this.queue.itemForImage(id);
    if (item) {
      const row = this.itemRows.get(item);
      if (declined && row) {
        row.declined = true;
        row.render();
      } else {
        this.queue.remove(item);
      }
    }
    const row = this.imageRows.get(id);
    if (row) {
      if (declined) {
        row.declined = true;
        row.render();
      } else {
        row.element.remove();
        this.imageRows.delete(id);
      }
    }
  }

  /** Forget a declined server row (its dismiss button). */
  dismiss(row) {
    row.element.remove();
    if (row.item) this.queue.remove(row.item);
    if (row.image) this.imageRows.delete(row.image.id);
    this._updateCount();
  }

  _addItem(item) {
    const row = new Row(this, { item });
    this.itemRows.set(item, row);
    this.list.prepend(row.element);
    row.render();
    this._updateCount();
  }

  _updateItem(item) {
    const row = this.itemRows.get(item);
    if (!row) return;
    row.render();
    if (item.state === "retrying") this._startTicker();
    this._updateSummary();
  }

  _removeItem(item) {
    const row = this.itemRows.get(item);
    if (!row) return;
    const hadFocus = row.element.contains(document.activeElement);
    const next = row.element.nextElementSibling || row.element.previousElementSibling;
    row.element.remove();
    row.dispose();
    this.itemRows.delete(item);
    if (hadFocus) (next?.querySelector("button:not([hidden])") || this.section).focus();
    this._updateCount();
  }

  _startTicker() {
    if (this._ticker) return;
    this._ticker = setInterval(() => {
      let waiting = false;
      for (const [item, row] of this.itemRows) {
        if (item.state === "retrying") {
          waiting = true;
          row.render();
        }
      }
      if (!waiting) {
        clearInterval(this._ticker);
        this._ticker = null;
      }
    }, 1000);
  }

  _updateCount() {
    const rows = this.itemRows.size + this.imageRows.size;
    this.count.textContent = rows ? String(rows) : "";
    this.section.hidden = rows === 0;
    this._updateSummary();
  }

  /** One line for screen readers and a glance: only changes when a count changes. */
  _updateSummary() {
    const items = [...this.itemRows.keys()];
    const count = (...states) => items.filter((item) => states.includes(item.state)).length;
    const sending = count("preparing", "queued", "uploading");
    const waiting = count("retrying", "offline");
    const failed = count("failed");
    const pending = count("pending");
    const shared = count("done");
    const held = count("held");
    const parts = [];
    if (held) parts.push(`${held} ready to share`);
    if (sending) parts.push(`Sharing ${sending} photo${sending === 1 ? "" : "s"}…`);
    if (waiting) parts.push(`${waiting} waiting to retry`);
    if (shared) parts.push(`${shared} shared with the room`);
    if (pending) parts.push(`${pending} waiting for approval`);
    if (failed) parts.push(`${failed} failed`);
    const text = parts.join(" · ");
    if (text !== this._lastSummary) {
      this._lastSummary = text;
      this.summaryText.textContent = text;
    }
    this.summary.classList.toggle("is-empty", !text);
    const retriable = this.queue.retriableCount;
    this.retryAllButton.hidden = retriable === 0;
    this.retryAllButton.textContent = retriable > 1 ? `Retry all (${retriable})` : "Retry all";
  }
}

/** One line of the list: a queue item, or an image known from the server. */
class Row {
  /**
   * @param {MyUploads} view
   * @param {{item?: import("./uploader.js").UploadItem|null, image?: any}} source
   */
  constructor(view, { item = null, image = null }) {
    this.view = view;
    this.item = item;
    this.image = image;
    this.declined = false;
    this._previewSource = null;

    const label = item ? item.name : image.caption || "Photo";
    this.preview = h("span", { class: "upload-preview is-broken", "aria-hidden": "true" });
    this.openButton = h(
      "button",
      {
        type: "button",
        class: "upload-preview upload-open",
        hidden: true,
        "aria-label": `Open ${label}`,
        onclick: () => this.currentImage && view.onOpen(this.currentImage),
      },
    );
    this.nameLabel = h("span", { class: "upload-name" }, label);
    this.sizeLabel = h("span", { class: "upload-size" });
    this.progress = h("progress", { class: "upload-progress", max: "100", value: "0", hidden: true });
    this.progress.setAttribute("aria-label", `Upload progress of ${label}`);
    this.message = h("p", { class: "upload-message", "data-testid": "upload-message" });
    this.captionInput = h("input", {
      class: "input input-small upload-caption",
      type: "text",
      maxlength: "500",
      placeholder: "Caption (optional)",
      "aria-label": `Caption for ${label}`,
      hidden: true,
      oninput: (event) => item && view.queue.setCaption(item, event.target.value),
    });
    if (item && item.caption) this.captionInput.value = item.caption;
    this.retryButton = h(
      "button",
      {
        type: "button",
        class: "btn btn-small btn-secondary upload-retry",
        "data-testid": "upload-retry",
        hidden: true,
        "aria-label": `Retry ${label}`,
        onclick: () => item && view.queue.retry(item),
      },
      "Retry",
    );
    this.deleteButton = h(
      "button",
      {
        type: "button",
        class: "upload-delete",
        "data-testid": "upload-delete",
        hidden: true,
        "aria-label": `Delete ${label}`,
        title: "Delete photo",
        onclick: () => this.currentImage && view.onDelete(this.currentImage),
      },
      trashIcon(),
    );
    this.removeButton = h(
      "button",
      {
        type: "button",
        class: "upload-remove",
        "data-testid": "upload-remove",
        hidden: true,
        title: "Remove from the list",
        onclick: () => {
          if (this.declined || !item) view.dismiss(this);
          else view.queue.remove(item);
        },
      },
      "×",
    );
    this.element = h(
      "li",
      { class: "upload", "data-testid": "upload-item" },
      this.preview,
      this.openButton,
      h(
        "div",
        { class: "upload-body" },
        h("div", { class: "upload-head" }, this.nameLabel, this.sizeLabel),
        this.progress,
        this.message,
        this.captionInput,
        this.retryButton,
      ),
      h("div", { class: "upload-actions" }, this.deleteButton, this.removeButton),
    );
  }

  /** The stored image behind this row, if any. */
  get currentImage() {
    return (this.item && this.item.image) || this.image;
  }

  get state() {
    if (this.declined) return "declined";
    if (this.item && !["pending", "done"].includes(this.item.state)) return this.item.state;
    const image = this.currentImage;
    if (!image) return this.item ? this.item.state : "done";
    const status = this.view.status.get(image.id) || image.status;
    return status === "pending" ? "pending" : "done";
  }

  render() {
    const state = this.state;
    const item = this.item;
    const image = this.currentImage;
    const element = this.element;
    element.dataset.state = state;
    if (image) element.dataset.imageId = String(image.id);
    if (item) {
      element.dataset.localId = String(item.localId);
      element.dataset.attempts = String(item.sends);
    }

    this._renderPreview(image);
    this.sizeLabel.textContent = item
      ? formatBytes(item.size) + (item.downscaled ? " · resized" : "")
      : "";
    if (!item && image) this.sizeLabel.replaceChildren(timeElement(image.created_at));

    const uploading = state === "uploading";
    this.progress.hidden = !uploading;
    if (uploading && item) {
      // Indeterminate until the first progress event, then the percentage sent.
      if (item.progress > 0) this.progress.value = Math.min(item.progress, 99);
      else this.progress.removeAttribute("value");
    }
    this.message.textContent = this._message(state);

    this.captionInput.hidden = state !== "held";
    const failedRetriable = state === "failed" && item && item.retriable;
    this.retryButton.hidden = !(failedRetriable || state === "retrying" || state === "offline");
    this.retryButton.textContent = state === "failed" ? "Retry" : "Retry now";
    const mine = image && (this.view.owns(image.id) || this.view.isMine(image));
    this.deleteButton.hidden = !(mine && (state === "pending" || state === "done"));
    const cancellable = ["preparing", "held", "queued", "retrying", "offline", "failed", "declined"];
    this.removeButton.hidden = !cancellable.includes(state);
    const label = this.nameLabel.textContent;
    this.removeButton.setAttribute(
      "aria-label",
      state === "failed" || state === "declined" ? `Remove ${label} from the list` : `Cancel ${label}`,
    );
  }

  /**
   * @param {string} state
   * @returns {string}
   */
  _message(state) {
    // Only a queue item is ever uploading, retrying or failed: those cases have one.
    const item = /** @type {import("./uploader.js").UploadItem} */ (this.item);
    switch (state) {
      case "uploading":
        if (item.progress >= 100) return "Processing…";
        return item.progress > 0 ? `Uploading… ${item.progress}%` : "Uploading…";
      case "retrying": {
        const seconds = Math.max(0, Math.ceil((item.retryAt - Date.now()) / 1000));
        return `${transientReason(item.error)} Retrying in ${seconds} s…`;
      }
      case "failed":
        return refusalMessage(item.error, this.view.me());
      case "done": {
        const image = this.currentImage;
        if (image && !this.view.owns(image.id) && !this.view.isMine(image)) {
          return `Already in the room, shared by ${image.uploader_name || "someone else"}`;
        }
        return item && item.duplicate ? "Already shared · on the wall" : STATE_LABELS.done;
      }
      default:
        return STATE_LABELS[state] || "";
    }
  }

  _renderPreview(image) {
    // Prefer the server's thumbnail once there is one; else the local preview.
    let source = null;
    if (image && image.thumb_url) source = image.thumb_url;
    else if (this.item && this.item.previewBlob) source = this.item.previewBlob;
    if (source === this._previewSource) {
      this._syncOpenButton(image);
      return;
    }
    this._previewSource = source;
    if (this._objectUrl) URL.revokeObjectURL(this._objectUrl);
    this._objectUrl = null;
    let url = null;
    if (typeof source === "string") url = source;
    else if (source) url = this._objectUrl = URL.createObjectURL(source);
    const target = image ? this.openButton : this.preview;
    if (url) {
      // The open button carries the label; the picture itself is decoration here.
      const img = h("img", { src: url, alt: "", decoding: "async" });
      img.addEventListener("error", () => img.remove(), { once: true });
      img.addEventListener("load", () => target.classList.remove("is-broken"), { once: true });
      target.replaceChildren(img);
    }
    this._syncOpenButton(image);
  }

  /** Free the local preview's memory. */
  dispose() {
    if (this._objectUrl) URL.revokeObjectURL(this._objectUrl);
    this._objectUrl = null;
  }

  _syncOpenButton(image) {
    this.openButton.hidden = !image;
    this.preview.hidden = Boolean(image);
  }
}
