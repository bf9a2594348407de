// @ts-check
// The guest's upload preferences, kept in this browser: whether large photos are made smaller
// before sending (the page's default unless the guest chose), and whether each photo waits
// for a caption.

const PREFIX = "imageshark.upload-option.";

/**
 * The guest's remembered choice, or null when they never chose.
 * @param {string} name  storage name, e.g. "downscale"
 * @returns {boolean|null}
 */
export function rememberedOption(name) {
  return read(name, null);
}

function read(name, fallback) {
  try {
    const value = localStorage.getItem(PREFIX + name);
    return value == null ? fallback : value === "1";
  } catch {
    return fallback;
  }
}

function write(name, value) {
  try {
    localStorage.setItem(PREFIX + name, value ? "1" : "0");
  } catch {
    // Private mode: the choice lasts for this visit only.
  }
}

/**
 * Tie a checkbox to a remembered boolean: the box starts as remembered (or `fallback`) and
 * every change is stored. Returns a function that reads the current value.
 * @param {HTMLInputElement} checkbox
 * @param {string} name  storage name, e.g. "downscale"
 * @param {boolean} fallback  value before the guest ever chose
 * @returns {() => boolean}
 */
export function bindOption(checkbox, name, fallback) {
  checkbox.checked = read(name, fallback);
  checkbox.addEventListener("change", () => write(name, checkbox.checked));
  return () => checkbox.checked;
}
