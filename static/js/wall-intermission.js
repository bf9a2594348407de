// @ts-check
// The wall's "scan to join" intermission: every `wall_intermission_minutes` minutes (0: off)
// the QR code fills the screen for `wall_intermission_seconds`, with the address to type and
// the room's code beside it, for the guests who walked in after the first photos. Photos come
// first: an intermission that falls due while the wall may not show it (photos waiting for the
// spotlight, the wall blanked, the room closed) waits until it may. What it covers is the
// caller's to hold (wall.js holds the spotlight's queue while it is up).
//
// The overlay's `data-state` says where the schedule is: "off", "waiting" (for the next one),
// "due" (fell due, held back) or "showing"; its `hidden` attribute is off only while showing.

export class Intermission {
  /**
   * @param {{overlay: HTMLElement, canStart: () => boolean, onShow?: () => void,
   *   onHide?: () => void}} options
   *   overlay: the full-screen element shown and hidden; canStart: whether one may start now;
   *   onShow / onHide: told when it appears and when it goes (also when cut short).
   */
  constructor({ overlay, canStart, onShow = () => {}, onHide = () => {} }) {
    this.overlay = overlay;
    this.canStart = canStart;
    this.onShow = onShow;
    this.onHide = onHide;
    this.everyMs = 0;
    this.durationMs = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.setState("off");
  }

  get showing() {
    return this.state === "showing";
  }

  setState(state) {
    this.state = state;
    this.overlay.dataset.state = state;
  }

  /**
   * Follow the settings: one every `everyMs` (0: off), each up for `durationMs`. The wait
   * starts again only when the period changes (other settings changes leave it running);
   * turned off, one on screen goes at once; a new duration counts from the next one.
   */
  configure(everyMs, durationMs) {
    this.durationMs = durationMs;
    if (everyMs === this.everyMs) return;
    this.everyMs = everyMs;
    if (!everyMs) this.end();
    else if (!this.showing) this.wait();
  }

  /** Something that held a due one back changed: start it if it may start now. */
  poke() {
    if (this.state === "due" && this.canStart()) this.show();
  }

  /** Take it off the screen now (the wall was blanked, the room closed); the wait restarts. */
  interrupt() {
    if (this.showing) this.end();
  }

  wait() {
    clearTimeout(this.timer);
    this.setState("waiting");
    this.timer = setTimeout(() => {
      this.setState("due");
      this.poke();
    }, this.everyMs);
  }

  show() {
    clearTimeout(this.timer);
    this.setState("showing");
    this.overlay.hidden = false;
    this.onShow();
    this.timer = setTimeout(() => this.end(), this.durationMs);
  }

  end() {
    clearTimeout(this.timer);
    const wasShowing = this.showing;
    this.overlay.hidden = true;
    if (this.everyMs) this.wait();
    else this.setState("off");
    if (wasShowing) this.onHide();
  }
}
