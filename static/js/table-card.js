// @ts-check
// Table cards page: the Print button opens the browser's print dialog (the page's print
// stylesheet lays the four cards out on one A4 sheet). Without this script the button stays
// hidden and the browser's own Print menu does the same.

const button = /** @type {HTMLElement} */ (document.getElementById("print-cards"));
button.addEventListener("click", () => window.print());
button.hidden = false;
