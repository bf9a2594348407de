// @ts-check
// The host's approval queue (rooms with moderation "approve"): photos waiting, oldest first,
// each with Approve and Reject; "Approve all" for the lot. It reloads on every
// moderation_queue event; an approval made in another tab arrives as image_added and drops
// the photo from this list.
//
// Reject can be undone: the photo leaves the list at once with an "Undo" toast, and the reject
// request is sent only when the toast expires (REJECT_UNDO_MS), or at once with keepalive when
// the page is hidden or closed. Deferring on the client needs no server change, and a rejected
// photo's files are deleted by the server, so a server-side un-reject would have to keep them.

import { ApiError, fetchImagesAfter } from "./api.js";
import { altText, byline } from "./gallery.js";
import { ALREADY_APPROVED } from "./messages.js";
import { h, timeElement, toast } from "./ui.js";

/**
 * An element of this page's template (it renders every id looked up here).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** How long a rejected photo can be brought back, in milliseconds, before the reject is sent. */
export const REJECT_UNDO_MS = 8000;

function undoRegion() {
  let region = /** @type {HTMLElement} */ (document.getElementById("undo-toasts"));
  if (!region) {
    region = h("div", { id: "undo-toasts", class: "undo-toasts" });
    document.body.append(region);
  }
  return region;
}

export class ApprovalQueue {
  /**
   * @param {{token: string, hostApi: (path: string, options?: object) => Promise<any>,
   *          headers: () => object, onApproved: (image: object) => void,
   *          onCount: (count: number) => void}} options
   *   hostApi: calls the room's API (path relative to the room) with the host key;
   *   headers: the host's Authorization header, for paging through the queue;
   *   onApproved: an approved image (with its seq), to show at once;
   *   onCount: the number of photos waiting, whenever it changes.
   */
  constructor({ token, hostApi, headers, onApproved, onCount }) {
    this.token = token;
    this.hostApi = hostApi;
    this.headers = headers;
    this.onApproved = onApproved;
    this.onCount = onCount;
    this.section = $("queue");
    this.list = /** @type {HTMLUListElement} */ ($("queue-list"));
    this.items = new Map(); // id → pending image
    this.moderated = false;
    this.busy = false; // "Approve all" running
    this._loading = null;
    this._again = false;
    this.rejecting = new Map(); // id → {image, timer, note}: rejected, still undoable
    $("approve-all").addEventListener("click", () => this.approveAll());
    window.addEventListener("pagehide", () => this.flushRejects());
  }

  /** Show or hide the section: visible while moderation is on or photos still wait. */
  setModerated(moderated) {
    this.moderated = moderated;
    this.updateChrome();
  }

  /** Reload the queue from the server (calls during a load are coalesced into one more). */
  async refresh() {
    if (this._loading) {
      this._again = true;
      return this._loading;
    }
    this._loading = (async () => {
      try {
        do {
          this._again = false;
          const images = await fetchImagesAfter(this.token, 0, { path: "/pending", headers: this.headers() });
          this.replace(images);
        } while (this._again);
      } finally {
        this._loading = null;
      }
    })();
    return this._loading;
  }

  /** Make the list show exactly `images` (oldest first). */
  replace(images) {
    const ids = new Set(images.map((image) => image.id));
    for (const id of [...this.items.keys()]) if (!ids.has(id)) this.drop(id);
    for (const image of images) {
      if (this.items.has(image.id) || this.rejecting.has(image.id)) continue;
      this.items.set(image.id, image);
      const item = this.build(image);
      const after = /** @type {HTMLElement[]} */ ([...this.list.children]).find((other) => Number(other.dataset.imageId) > image.id);
      this.list.insertBefore(item, after || null);
    }
    this.updateChrome();
  }

  /** Remove a photo from the list (approved, rejected, or deleted); keeps keyboard focus nearby. */
  drop(id) {
    if (!this.items.delete(id)) return;
    const item = this.list.querySelector(`[data-image-id="${id}"]`);
    const hadFocus = Boolean(item && item.contains(document.activeElement));
    const next = item && (item.nextElementSibling || item.previousElementSibling);
    if (item) item.remove();
    this.updateChrome();
    if (hadFocus) {
      // The next photo's buttons; else the queue's heading, or the photos' when it hides.
      const target = next ? next.querySelector("button") : this.section.hidden ? $("photos-title") : $("queue-title");
      target?.focus();
    }
  }

  updateChrome() {
    const count = this.items.size;
    this.section.hidden = !this.moderated && count === 0;
    $("queue-count").textContent = count ? String(count) : "";
    $("queue-empty").hidden = count > 0;
    $("approve-all").hidden = count < 2 && !this.busy;
    this.onCount(count);
  }

  build(image) {
    const who = byline(image);
    const actions = h(
      "div",
      { class: "queue-actions" },
      h(
        "button",
        { type: "button", class: "btn btn-primary btn-small", "data-testid": "approve", onclick: () => this.approve(image) },
        "Approve",
        h("span", { class: "sr-only" }, ` photo by ${who}`),
      ),
      h(
        "button",
        { type: "button", class: "btn btn-ghost btn-small", "data-testid": "reject", onclick: () => this.reject(image) },
        "Reject",
        h("span", { class: "sr-only" }, ` photo by ${who}`),
      ),
    );
    return h(
      "li",
      { class: "queue-item", "data-testid": "pending-image", dataset: { imageId: String(image.id) } },
      h(
        "a",
        { class: "queue-thumb", href: image.url, target: "_blank", rel: "noopener", title: "Open the photo in a new tab" },
        h("img", {
          src: image.thumb_url,
          alt: `${altText(image)} (opens in a new tab)`,
          width: image.thumb_width || null,
          height: image.thumb_height || null,
          decoding: "async",
        }),
      ),
      h(
        "div",
        { class: "queue-info" },
        image.caption ? h("p", { class: "queue-caption" }, image.caption) : null,
        h("p", { class: "queue-byline" }, h("strong", {}, who), " · ", timeElement(image.created_at)),
      ),
      actions,
    );
  }

  /** Mark a photo's buttons as working. Not `disabled`: that would drop keyboard focus. */
  setItemBusy(id, busy) {
    const item = this.list.querySelector(`[data-image-id="${id}"]`);
    if (!item) return;
    item.classList.toggle("is-busy", busy);
    for (const button of item.querySelectorAll("button")) {
      if (busy) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    }
  }

  isBusy(id) {
    const item = this.list.querySelector(`[data-image-id="${id}"]`);
    return Boolean(item && item.classList.contains("is-busy"));
  }

  /** Approve one photo; resolves true when it is approved (or already was). */
  async approve(image, { quiet = false } = {}) {
    if (this.isBusy(image.id)) return false;
    this.setItemBusy(image.id, true);
    try {
      const approved = await this.hostApi(`/images/${image.id}/approve`, { method: "POST" });
      this.drop(image.id);
      if (approved) this.onApproved(approved);
      if (!quiet) toast("Approved: the photo is on the wall.", "success");
      return true;
    } catch (error) {
      this.setItemBusy(image.id, false);
      if (error instanceof ApiError && error.status === 404) {
        this.drop(image.id); // Deleted meanwhile.
        return true;
      }
      toast(error.message, "error", 6000);
      return false;
    }
  }

  /** Reject a photo: it leaves the list now; the request waits REJECT_UNDO_MS for an undo. */
  reject(image) {
    if (this.isBusy(image.id) || this.rejecting.has(image.id)) return;
    const undo = h(
      "button",
      { type: "button", class: "btn btn-secondary btn-small", "data-testid": "undo-reject", onclick: () => this.undoReject(image.id) },
      "Undo",
    );
    const note = h(
      "div",
      { class: "undo-toast", role: "status", "data-testid": "undo-toast" },
      h("span", {}, `Rejected the photo by ${byline(image)}.`),
      undo,
    );
    undoRegion().append(note);
    const timer = setTimeout(() => this.sendReject(image.id), REJECT_UNDO_MS);
    this.rejecting.set(image.id, { image, timer, note });
    this.drop(image.id);
    if (!document.activeElement || document.activeElement === document.body) undo.focus();
  }

  /** Bring a rejected photo back into the list; nothing was sent yet. */
  undoReject(id) {
    const entry = this.rejecting.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.note.remove();
    this.rejecting.delete(id);
    this.replace([...this.items.values(), entry.image]);
    /** @type {HTMLButtonElement|null} */ (this.list.querySelector(`[data-image-id="${id}"] button`))?.focus();
    toast("Kept: the photo is waiting again.", "info");
  }

  /** Send a deferred reject now. `keepalive`: from pagehide, so the request outlives the page. */
  async sendReject(id, { keepalive = false } = {}) {
    const entry = this.rejecting.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.note.remove();
    this.rejecting.delete(id);
    try {
      await this.hostApi(`/images/${id}/reject`, { method: "POST", keepalive });
    } catch (error) {
      if (keepalive) return;
      if (error instanceof ApiError && (error.status === 404 || error.code === "not_pending")) {
        if (error.code === "not_pending") toast(ALREADY_APPROVED, "info");
        return;
      }
      toast(error.message, "error", 6000);
      this.replace([...this.items.values(), entry.image]); // Still waiting: show it again.
    }
  }

  /** Send every pending reject at once (the page is going away). */
  flushRejects() {
    for (const id of [...this.rejecting.keys()]) this.sendReject(id, { keepalive: true });
  }

  /** Approve every photo listed now, oldest first, one request at a time. */
  async approveAll() {
    if (this.busy) return;
    const images = [...this.items.values()].sort((a, b) => a.id - b.id);
    if (!images.length) return;
    this.busy = true;
    const button = /** @type {HTMLButtonElement} */ ($("approve-all"));
    button.disabled = true;
    let done = 0;
    try {
      for (const image of images) {
        button.textContent = `Approving ${done + 1} of ${images.length}…`;
        if (!(await this.approve(image, { quiet: true }))) break;
        done += 1;
      }
    } finally {
      this.busy = false;
      button.disabled = false;
      button.textContent = "Approve all";
      this.updateChrome();
    }
    if (done) toast(done === 1 ? "1 photo approved." : `${done} photos approved.`, "success");
  }
}
