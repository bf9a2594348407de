// @ts-check
// The page of a password reset link (/reset?token=...): asks for the new password, posts it
// with the token, says how it went.

import { ApiError, api } from "./api.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("reset-form"));
const input = /** @type {HTMLInputElement} */ (document.getElementById("reset-password"));
const errorBox = /** @type {HTMLElement} */ (document.getElementById("reset-error"));
const done = /** @type {HTMLElement} */ (document.getElementById("reset-done"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

// Taken off the address bar: the link works once and should not linger in the history.
const token = new URLSearchParams(location.search).get("token") || "";
history.replaceState(null, "", location.pathname);

/** @param {string} message shown under the field, or "" to clear it */
function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
  input.setAttribute("aria-invalid", message ? "true" : "false");
}

/**
 * What to tell for a refused request.
 * @param {unknown} error
 * @returns {string}
 */
function refusal(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Try again.";
  if (error.code === "token_used") return "This link was already used. Ask for a new one if you need to.";
  if (error.code === "token_expired") return "This link has expired. Ask for a new one.";
  if (error.code === "token_not_found") return "This link is not valid. Check that it was copied whole.";
  return error.message;
}

if (!token) showError("This link has no token. Open the link from the mail again.");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (input.value.length < 8) {
    showError("A password has at least 8 characters.");
    input.focus();
    return;
  }
  showError("");
  submit.disabled = true;
  try {
    await api("/api/password-reset/confirm", { method: "POST", json: { token, password: input.value } });
    form.hidden = true;
    done.hidden = false;
  } catch (error) {
    showError(refusal(error));
  } finally {
    submit.disabled = false;
  }
});
