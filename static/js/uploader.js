// Upload queue: one image per request, two requests at a time, with per-file progress,
// the server's message on failure, automatic retry after 429/503 (Retry-After) and a
// manual retry button. XMLHttpRequest because fetch cannot report upload progress.

import { errorFromResponse, networkError, roomApi } from "./api.js";
import { formatBytes, h } from "./ui.js";

const MAX_AUTO_RETRIES = 3;

/**
 * @param {{token: string, list: HTMLElement, summary: HTMLElement,
 *          participantKey: () => string|null, concurrency?: number,
 *          onUploaded?: (image, duplicate: boolean) => void,
 *          onAuthError?: (error) => void}} options
 */
export class UploadQueue {
  constructor({ token, list, summary, participantKey, concurrency = 2, onUploaded, onAuthError }) {
    this.token = token;
    this.list = list;
    this.summary = summary;
    this.participantKey = participantKey;
    this.concurrency = concurrency;
    this.onUploaded = onUploaded;
    this.onAuthError = onAuthError;
    this.items = [];
    this.active = 0;
    window.addEventListener("beforeunload", (event) => {
      if (this.items.some((item) => item.state === "queued" || item.state === "uploading")) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  /** Queue files (a FileList or array) with one caption for all of them. */
  add(files, caption = "") {
    for (const file of files) {
      const item = new UploadItem(file, caption.trim() || null, this);
      this.items.push(item);
      this.list.prepend(item.element);
    }
    this._updateSummary();
    this._pump();
  }

  /** Drop one row (a failed upload the guest gave up on). */
  remove(item) {
    this.items = this.items.filter((other) => other !== item);
    item.dispose();
    this._updateSummary();
  }

  /** Remove finished rows (done or failed) from the list. */
  clearFinished() {
    this.items = this.items.filter((item) => {
      if (item.state === "done" || item.state === "error") {
        item.dispose();
        return false;
      }
      return true;
    });
    this._updateSummary();
  }

  _pump() {
    while (this.active < this.concurrency) {
      const next = this.items.find((item) => item.state === "queued" && !item.waiting);
      if (!next) break;
      this.active += 1;
      next.start().finally(() => {
        this.active -= 1;
        this._updateSummary();
        this._pump();
      });
    }
    this._updateSummary();
  }

  _updateSummary() {
    const count = (state) => this.items.filter((item) => item.state === state).length;
    const done = count("done");
    const failed = count("error");
    const pending = count("queued") + count("uploading");
    const parts = [];
    if (pending) parts.push(`Sharing ${pending} photo${pending === 1 ? "" : "s"}…`);
    if (done) parts.push(`${done} shared`);
    if (failed) parts.push(`${failed} failed`);
    this.summary.querySelector(".upload-summary-text").textContent = parts.join(" · ");
    this.summary.hidden = this.items.length === 0;
    this.summary.querySelector(".upload-clear").hidden = pending === this.items.length;
    this.summary.dataset.pending = String(pending);
  }
}

class UploadItem {
  constructor(file, caption, queue) {
    this.file = file;
    this.caption = caption;
    this.queue = queue;
    this.state = "queued";
    this.waiting = false;
    this.autoRetries = 0;
    this.previewUrl = null;

    // A square holding the local preview; a plain tile when the browser can't show the file.
    this.preview = h("span", { class: "upload-preview is-broken", "aria-hidden": "true" });
    if (file.type.startsWith("image/")) {
      this.previewUrl = URL.createObjectURL(file);
      this._showPreview(this.previewUrl);
    }
    this.progress = h("progress", { class: "upload-progress", max: "100", value: "0" });
    this.progress.setAttribute("aria-label", `Upload progress of ${file.name || "photo"}`);
    this.message = h("p", { class: "upload-message" }, "Waiting…");
    this.retryButton = h(
      "button",
      { type: "button", class: "btn btn-small btn-secondary", hidden: true, onclick: () => this.retry() },
      "Retry",
    );
    this.removeButton = h(
      "button",
      {
        type: "button",
        class: "upload-remove",
        hidden: true,
        "aria-label": `Remove ${file.name || "photo"} from the list`,
        title: "Remove",
        onclick: () => this.queue.remove(this),
      },
      "×",
    );
    this.element = h(
      "li",
      { class: "upload", "data-testid": "upload-item", dataset: { state: "queued" } },
      this.preview,
      h(
        "div",
        { class: "upload-body" },
        h(
          "div",
          { class: "upload-head" },
          h("span", { class: "upload-name" }, file.name || "Photo"),
          h("span", { class: "upload-size" }, formatBytes(file.size)),
        ),
        this.progress,
        this.message,
      ),
      this.retryButton,
      this.removeButton,
    );
  }

  _setState(state, message, canRetry = false) {
    this.state = state;
    this.element.dataset.state = state;
    if (message !== undefined) this.message.textContent = message;
    // Retrying helps only when the failure was the network's or the server's, not the file's.
    this.retryButton.hidden = !(state === "error" && canRetry);
    this.removeButton.hidden = state !== "error";
  }

  async start() {
    this._setState("uploading", "Uploading…");
    this.progress.removeAttribute("value");
    try {
      const { image, duplicate } = await this._send();
      this.progress.value = 100;
      this.element.dataset.imageId = String(image.id);
      this._setState("done", duplicate ? "Already in the room" : "Shared with the room");
      this._usePreview(image.thumb_url);
      if (this.queue.onUploaded) this.queue.onUploaded(image, duplicate);
    } catch (error) {
      this.progress.value = 0;
      if (error.retriable && error.status !== 0 && this.autoRetries < MAX_AUTO_RETRIES) {
        this.autoRetries += 1;
        this._waitAndRequeue(error.retryAfter ?? 2 * this.autoRetries, error.message);
        return;
      }
      this._setState("error", error.message, error.retriable || error.status >= 500);
      if ((error.status === 401 || error.status === 403) && this.queue.onAuthError) {
        this.queue.onAuthError(error);
      }
    }
  }

  _waitAndRequeue(seconds, reason) {
    this._setState("queued");
    this.waiting = true;
    let left = Math.max(1, Math.ceil(seconds));
    const tick = () => {
      this.message.textContent = `${reason} Retrying in ${left} s…`;
      if (left-- <= 0) {
        this.waiting = false;
        this.message.textContent = "Waiting…";
        this.queue._pump();
        return;
      }
      setTimeout(tick, 1000);
    };
    tick();
  }

  retry() {
    if (this.state !== "error") return;
    this.autoRetries = 0;
    this._setState("queued", "Waiting…");
    this.queue._pump();
  }

  _send() {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      form.append("file", this.file, this.file.name || "photo");
      if (this.caption) form.append("caption", this.caption);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", roomApi(this.queue.token, "/images"));
      xhr.setRequestHeader("Accept", "application/json");
      const key = this.queue.participantKey();
      if (key) xhr.setRequestHeader("X-Participant-Key", key);
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.round((event.loaded / event.total) * 100);
        this.progress.value = Math.min(percent, 99);
        this.message.textContent =
          percent >= 100 ? "Processing…" : `Uploading… ${percent}%`;
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 200 || xhr.status === 201) {
          try {
            resolve({ image: JSON.parse(xhr.responseText), duplicate: xhr.status === 200 });
          } catch {
            reject(errorFromResponse(500, "", null));
          }
        } else {
          reject(errorFromResponse(xhr.status, xhr.responseText, xhr.getResponseHeader("Retry-After")));
        }
      });
      xhr.addEventListener("error", () => reject(networkError()));
      xhr.addEventListener("abort", () => reject(networkError()));
      xhr.send(form);
    });
  }

  _showPreview(url) {
    const img = h("img", { src: url, alt: "", decoding: "async" });
    // E.g. HEIC in a browser that can't display it: the upload itself still works.
    img.addEventListener("error", () => img.remove(), { once: true });
    img.addEventListener("load", () => this.preview.classList.remove("is-broken"), { once: true });
    this.preview.replaceChildren(img);
  }

  /** Swap the local preview for the server's thumbnail and free the file's memory. */
  _usePreview(url) {
    if (url) this._showPreview(url);
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = null;
  }

  dispose() {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.element.remove();
  }
}
