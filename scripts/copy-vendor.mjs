// Copies the browser builds of our npm dependencies into static/vendor (git-ignored),
// so the pages load them from our own origin with no CDN.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "static", "vendor");
mkdirSync(join(vendor, "swagger-ui"), { recursive: true });
for (const [from, to] of [
  ["node_modules/socket.io-client/dist/socket.io.min.js", "socket.io.min.js"],
  ["node_modules/socket.io-client/dist/socket.io.min.js.map", "socket.io.min.js.map"],
  // The API reference page (/docs): Swagger UI's browser bundle and its stylesheet.
  ["node_modules/swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"],
  ["node_modules/swagger-ui-dist/swagger-ui.css", "swagger-ui/swagger-ui.css"],
  ["node_modules/swagger-ui-dist/LICENSE", "swagger-ui/LICENSE"],
]) {
  copyFileSync(join(root, from), join(vendor, to));
}
console.log(`browser dependencies copied to ${vendor}`);
