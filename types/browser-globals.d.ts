// Globals the pages' classic scripts define before the modules run.

interface Window {
  /** The Socket.IO client (static/vendor/socket.io.min.js, loaded by the live pages). */
  io?: typeof import("socket.io-client").io;
  /** Swagger UI (static/vendor/swagger-ui/swagger-ui-bundle.js, loaded by /docs). */
  SwaggerUIBundle?: (options: {
    url: string;
    domNode: Element;
    deepLinking?: boolean;
    validatorUrl?: string | null;
    tryItOutEnabled?: boolean;
  }) => unknown;
}

interface Navigator {
  /** The Network Information API, where the browser has it (Chromium on Android). */
  connection?: EventTarget & { saveData?: boolean; effectiveType?: string };
}
