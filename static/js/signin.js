// @ts-check
// Sign-in page: e-mail and password to POST /api/session (the session cookie comes back),
// then on to the form's `data-next` (a same-origin path the server checked; /rooms otherwise).

import { api } from "./api.js";
import { retryText } from "./account-errors.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("signin-form"));
const email = /** @type {HTMLInputElement} */ (document.getElementById("signin-email"));
const password = /** @type {HTMLInputElement} */ (document.getElementById("signin-password"));
const errorBox = /** @type {HTMLElement} */ (document.getElementById("signin-error"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/**
 * Show `message` (or clear it) under the form, marking both fields: a refused pair does not
 * say which of the two was wrong.
 * @param {string} message
 */
function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
  for (const field of [email, password]) field.setAttribute("aria-invalid", message ? "true" : "false");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!email.value.trim() || !password.value) {
    showError("Enter your e-mail address and your password.");
    (email.value.trim() ? password : email).focus();
    return;
  }
  showError("");
  submit.disabled = true;
  try {
    await api("/api/session", { method: "POST", json: { email: email.value.trim(), password: password.value } });
    window.location.assign(form.dataset.next || "/rooms");
  } catch (error) {
    showError(error.code === "invalid_credentials"
      ? "That e-mail address and password don't match an account."
      : error.message + retryText(error));
    submit.disabled = false;
    password.focus();
  }
});
