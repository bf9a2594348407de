// @ts-check
// What a passcode room's wall says about its passcode, under the QR code: "Passcode 4821" when
// the host lets the wall show it (wall_show_passcode), else "Passcode needed · ask the host".
// A room without a passcode, or a closed one (nobody joins any more), says nothing. The
// passcode itself never comes with room_updated (every socket gets it): the wall reads the room
// over HTTP with its own credentials (host key or its participant cookie), which answers with
// `passcode` only then. Exported for every wall view that tells people how to join.

import { h } from "./ui.js";

/**
 * The passcode line a wall shows, or null when it shows none.
 * @param {object} settings  the room's settings (roomSettings() of room-settings.js)
 * @param {string|null} passcode  the passcode read with the wall's credentials; null when unknown
 * @returns {{testId: string, label: string, value: string} | null}
 *   testId "wall-passcode" (value: the passcode) or "wall-passcode-needed" (value: what to do)
 */
export function passcodeLine(settings, passcode) {
  if (!settings.passcode_required || settings.closed) return null;
  if (settings.wall_show_passcode && passcode) {
    return { testId: "wall-passcode", label: "Passcode", value: passcode };
  }
  return { testId: "wall-passcode-needed", label: "Passcode needed", value: "ask the host" };
}

/**
 * A new `<p>` element for passcodeLine(settings, passcode), or null: "Passcode 4821" (class
 * "wall-passcode is-shown", the passcode in a monospace `.wall-passcode-value`) or "Passcode
 * needed · ask the host" (class "wall-passcode").
 */
export function passcodeNote(settings, passcode) {
  const line = passcodeLine(settings, passcode);
  if (!line) return null;
  const shown = line.testId === "wall-passcode";
  return h(
    "p",
    { class: shown ? "wall-passcode is-shown" : "wall-passcode", dataset: { testid: line.testId } },
    h("span", { class: "wall-passcode-label" }, line.label),
    shown ? " " : " · ",
    h("span", { class: "wall-passcode-value" }, line.value),
  );
}

/** Show passcodeNote(settings, passcode) in `slot` (emptied and hidden when there is none). */
export function renderPasscode(slot, settings, passcode) {
  const note = passcodeNote(settings, passcode);
  slot.replaceChildren(...(note ? [note] : []));
  slot.hidden = !note;
}

/**
 * The passcode as this wall may know it, kept current: update(settings) on every settings
 * change reads the room again (`read`) when the room has a passcode and the host lets the wall
 * show it, since a changed passcode arrives as a room_updated without it; otherwise forgets it.
 * Only the answer to the latest read counts.
 */
export class WallPasscode {
  /**
   * @param {{read: () => Promise<object>, onChange: (passcode: string|null) => void}} options
   *   read: resolves to the room view as the wall's credentials get it (GET /api/rooms/{token});
   *   onChange: told the passcode (null: unknown or not to be shown) after every update.
   */
  constructor({ read, onChange }) {
    this.read = read;
    this.onChange = onChange;
    /** @type {string|null} */
    this.passcode = null;
    this.reads = 0;
  }

  /** Follow `settings` (roomSettings()): read the passcode again, or forget it. */
  async update(settings) {
    const read = ++this.reads;
    if (!settings.passcode_required || !settings.wall_show_passcode || settings.closed) {
      this.passcode = null;
      this.onChange(null);
      return;
    }
    let passcode = this.passcode;
    try {
      const view = await this.read();
      passcode = typeof view?.passcode === "string" ? view.passcode : null;
    } catch {
      // Unreachable for a moment: keep what is shown; the next change or resync reads again.
    }
    if (read !== this.reads) return;
    this.passcode = passcode;
    this.onChange(passcode);
  }
}
