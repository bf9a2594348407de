// @ts-check
// Sign-up page: POST /api/accounts, then sign in with the same pair (signing up does not sign
// in) and go to the dashboard. The API's refusals are shown at the field they are about.

import { api } from "./api.js";
import { retryText } from "./account-errors.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("signup-form"));
const minPassword = Number(form.dataset.minPassword) || 8;
/** @type {Record<string, HTMLInputElement>} */
const fields = {
  email: /** @type {HTMLInputElement} */ (document.getElementById("signup-email")),
  name: /** @type {HTMLInputElement} */ (document.getElementById("signup-name")),
  password: /** @type {HTMLInputElement} */ (document.getElementById("signup-password")),
};
const formError = /** @type {HTMLElement} */ (document.getElementById("signup-error"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/** The field an API error code is about: invalid_email → email, and so on. */
const FIELD_OF_CODE = { invalid_email: "email", invalid_name: "name", invalid_password: "password" };

/**
 * Show `message` at `field` (one of `fields`' keys), or under the form when null; "" clears all.
 * @param {string} message
 * @param {string|null} [field]
 */
function showError(message, field = null) {
  for (const [key, input] of Object.entries(fields)) {
    const box = /** @type {HTMLElement} */ (document.getElementById(`error-${key}`));
    const here = Boolean(message) && key === field;
    box.textContent = here ? message : "";
    box.hidden = !here;
    input.setAttribute("aria-invalid", here ? "true" : "false");
  }
  const general = Boolean(message) && field === null;
  formError.textContent = general ? message : "";
  formError.hidden = !general;
  if (field && message) fields[field].focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = fields.email.value.trim();
  const name = fields.name.value.trim();
  const password = fields.password.value;
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
    showError("Enter your e-mail address, like name@example.com.", "email");
    return;
  }
  if (password.length < minPassword) {
    showError(`Choose a password of at least ${minPassword} characters.`, "password");
    return;
  }
  showError("");
  submit.disabled = true;
  try {
    /** @type {{email: string, password: string, name?: string}} */
    const body = { email, password };
    if (name) body.name = name;
    await api("/api/accounts", { method: "POST", json: body });
    await api("/api/session", { method: "POST", json: { email, password } });
    window.location.assign("/rooms");
  } catch (error) {
    submit.disabled = false;
    if (error.code === "signup_closed") {
      showError("This service doesn't take new accounts at the moment.");
    } else if (error.code === "invalid_credentials") {
      // The answer to an address that already has an account looks like a new one (no user
      // enumeration); signing in with this password then fails.
      showError("Couldn't sign you in with this e-mail address and password. If you already have an account, sign in instead.");
    } else {
      showError(error.message + retryText(error), FIELD_OF_CODE[error.code] || null);
    }
  }
});
