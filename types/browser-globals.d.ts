// Globals the pages' classic scripts define before the modules run.

interface Window {
  /** The Socket.IO client (static/vendor/socket.io.min.js, loaded by the live pages). */
  io?: typeof import("socket.io-client").io;
}

interface Navigator {
  /** The Network Information API, where the browser has it (Chromium on Android). */
  connection?: EventTarget & { saveData?: boolean; effectiveType?: string };
}
