// @ts-check
// Wording shared by the sign-in and sign-up pages for the API's throttling answers.

/**
 * " Try again in N minutes." for a throttled answer (429 with Retry-After), else "".
 * @param {{status?: number, retryAfter?: number|null}} error an ApiError
 * @returns {string}
 */
export function retryText(error) {
  if (error.status !== 429 || error.retryAfter == null) return "";
  const seconds = Math.max(1, Math.ceil(error.retryAfter));
  if (seconds < 90) return ` Try again in ${seconds} second${seconds === 1 ? "" : "s"}.`;
  const minutes = Math.ceil(seconds / 60);
  return ` Try again in ${minutes} minutes.`;
}
