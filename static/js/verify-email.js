// @ts-check
// The page of an address verification link (/verify?token=...): posts the token, says whether
// the address is now confirmed.

import { ApiError, api } from "./api.js";

const status = /** @type {HTMLElement} */ (document.getElementById("verify-status"));

/** The link's token, taken off the address bar (it works once and should not linger). */
function linkToken() {
  const token = new URLSearchParams(location.search).get("token") || "";
  history.replaceState(null, "", location.pathname);
  return token;
}

/**
 * What to tell for a refused token.
 * @param {unknown} error
 * @returns {string}
 */
function refusal(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Try the link again.";
  if (error.code === "token_used") return "This link was already used: your address is confirmed.";
  if (error.code === "token_expired") return "This link has expired. Sign in and ask for a new one.";
  if (error.code === "token_not_found") return "This link is not valid. Check that it was copied whole.";
  return error.message;
}

async function verify() {
  const token = linkToken();
  if (!token) {
    status.textContent = "This link has no token. Open the link from the mail again.";
    return;
  }
  try {
    /** @type {{email: string}} */
    const account = await api("/api/accounts/verify", { method: "POST", json: { token } });
    status.textContent = `Thank you: ${account.email} is confirmed.`;
  } catch (error) {
    status.textContent = refusal(error);
  }
}

verify();
