// A minimal Node.js socket.io 4 server: the reference for ImageShark's live path in
// bench/live.py (`--server node`).
//
// It speaks only the part of ImageShark's public interface that the load generator uses:
//
//   GET  /healthz                      -> 200
//   POST /api/rooms                    -> 201 {token, title, created_at, last_seq: 0, host_key}
//   POST /api/rooms/{token}/images     -> multipart/form-data with a `file` part; emits
//                                         `image_added` to the room, then answers 201 with the
//                                         image object (the field names of ImageShark's
//                                         web/images/views.py `image_view`)
//   /socket.io/                        -> Engine.IO v4 / Socket.IO v5; the handshake's
//                                         `auth.token` names the room to join
//
// What it deliberately does NOT do, so that only the live path is compared: no database and
// no persistence beyond a room marker and a counter in Redis, no image pipeline (the uploaded
// file is read into memory and dropped: no disk, no decoding, no renditions, no checksum),
// no participants, passcodes, moderation, rate limits or quotas, no presence or catch-up
// events on connect, and no access control beyond knowing the room token.
//
// Environment: PORT (or the `--port N` argument), REDIS_URL (optional; with it rooms and
// sequence numbers live in Redis and broadcasts go through @socket.io/redis-adapter, so
// several replicas behave as one), IMAGESHARK_REDIS_PREFIX (key prefix, default
// "imageshark"). Listens on 127.0.0.1 only. Exits on SIGTERM or SIGINT.

import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import process from "node:process";

import { createAdapter } from "@socket.io/redis-adapter";
import busboy from "busboy";
import { createClient } from "redis";
import { Server } from "socket.io";

const MAX_UPLOAD_BYTES = 25 * 1024 * 1024; // ImageShark's default upload limit
const MAX_JSON_BYTES = 64 * 1024;

/** The listening port: `--port N` on the command line, else $PORT, else 8000. */
function listenPort() {
  const index = process.argv.indexOf("--port");
  const raw = index >= 0 ? process.argv[index + 1] : process.env.PORT;
  const port = Number.parseInt(raw ?? "8000", 10);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`invalid port: ${raw}`);
  }
  return port;
}

/** A URL-safe random string of `bytes` random bytes (as Python's secrets.token_urlsafe). */
function urlsafeToken(bytes) {
  return randomBytes(bytes).toString("base64url");
}

/** Now as Python's datetime.isoformat() of an aware UTC time prints it (microseconds). */
function isoNow() {
  return new Date().toISOString().replace("Z", "000+00:00");
}

// ---- room storage: Redis when REDIS_URL is set (shared by every replica), else memory ---------

/**
 * Rooms and their sequence numbers.
 * createRoom(token) -> Promise<void>; roomExists(token) -> Promise<boolean>;
 * nextIds(token) -> Promise<{id, seq}> (a process-wide image id and the room's next seq).
 */
class MemoryRooms {
  constructor() {
    this.seqs = new Map(); // token -> last seq
    this.lastImageId = 0;
  }

  async createRoom(token) {
    this.seqs.set(token, 0);
  }

  async roomExists(token) {
    return this.seqs.has(token);
  }

  async nextIds(token) {
    const seq = this.seqs.get(token) + 1;
    this.seqs.set(token, seq);
    this.lastImageId += 1;
    return { id: this.lastImageId, seq };
  }
}

class RedisRooms {
  /** @param client a connected node-redis client; @param prefix the key prefix */
  constructor(client, prefix) {
    this.client = client;
    this.prefix = prefix;
  }

  async createRoom(token) {
    await this.client.set(`${this.prefix}:room:${token}`, "1");
  }

  async roomExists(token) {
    return (await this.client.exists(`${this.prefix}:room:${token}`)) === 1;
  }

  async nextIds(token) {
    // One round trip: the room's next seq and a cluster-wide image id.
    const [seq, id] = await this.client
      .multi()
      .incr(`${this.prefix}:seq:${token}`)
      .incr(`${this.prefix}:image_id`)
      .exec();
    return { id: Number(id), seq: Number(seq) };
  }
}

// ---- HTTP ---------------------------------------------------------------------------------------

/** Answer `status` with `body` as JSON. */
function sendJson(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

function sendError(res, status, code, message) {
  sendJson(res, status, { error: { code, message } });
}

/** The request body parsed as JSON (an empty body is `{}`); rejects if too large or invalid. */
function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve(text ? JSON.parse(text) : {});
      } catch (error) {
        reject(error);
      }
    });
    req.on("error", reject);
  });
}

/**
 * The multipart request's `file` part, read whole into memory (a Buffer), or null if there is
 * none. Nothing is written to disk and the bytes are never decoded: this server is a reference
 * for the live path only, not for ImageShark's image pipeline.
 */
function readUploadedFile(req) {
  return new Promise((resolve, reject) => {
    let parser;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fileSize: MAX_UPLOAD_BYTES } });
    } catch (error) {
      reject(error); // not multipart/form-data
      return;
    }
    let file = null;
    parser.on("file", (name, stream) => {
      if (name !== "file") {
        stream.resume();
        return;
      }
      const chunks = [];
      stream.on("data", (chunk) => chunks.push(chunk));
      stream.on("end", () => {
        file = Buffer.concat(chunks);
      });
    });
    parser.on("close", () => resolve(file));
    parser.on("error", reject);
    req.pipe(parser);
  });
}

/** The image object ImageShark answers and broadcasts (web/images/views.py `image_view`). */
function imageView(id, seq) {
  const base = `/media/${urlsafeToken(16)}`; // a storage key as ImageShark's: 22 characters
  return {
    id,
    seq,
    caption: null,
    url: `${base}/display.jpg`,
    thumb_url: `${base}/thumb.jpg`,
    // Made up (the benchmark's JPEGs are 64x48 and are not decoded here).
    width: 64,
    height: 48,
    thumb_width: 64,
    thumb_height: 48,
    uploader_name: null, // the benchmark uploads anonymously
    participant_id: null,
    created_at: isoNow(),
    status: "approved",
  };
}

/**
 * The HTTP handler for everything except /socket.io/ (which engine.io intercepts).
 * @param rooms a MemoryRooms or RedisRooms
 * @param broadcast (token, event, payload) -> void: emit to every socket in the room
 */
function httpHandler(rooms, broadcast) {
  const uploadPath = /^\/api\/rooms\/([A-Za-z0-9_-]{22,64})\/images$/;

  async function createRoom(req, res) {
    let body;
    try {
      body = await readJson(req);
    } catch {
      sendError(res, 400, "invalid_json", "The body must be a JSON object.");
      return;
    }
    const title = typeof body?.title === "string" ? body.title.trim().slice(0, 120) : "";
    const token = urlsafeToken(18); // 24 characters, as ImageShark's room tokens
    await rooms.createRoom(token);
    sendJson(res, 201, {
      token,
      title,
      created_at: isoNow(),
      last_seq: 0,
      host_key: urlsafeToken(32),
    });
  }

  async function uploadImage(req, res, token) {
    if (!(await rooms.roomExists(token))) {
      req.resume();
      sendError(res, 404, "room_not_found", "No such room.");
      return;
    }
    let file;
    try {
      file = await readUploadedFile(req);
    } catch {
      sendError(res, 400, "malformed_upload", "Expected multipart/form-data with a file.");
      return;
    }
    if (file === null) {
      sendError(res, 400, "missing_file", "The form has no `file` part.");
      return;
    }
    if (file.length === 0) {
      sendError(res, 400, "empty_file", "The file is empty.");
      return;
    }
    const { id, seq } = await rooms.nextIds(token);
    const image = imageView(id, seq);
    // As ImageShark's upload: the event is published before the response is sent.
    broadcast(token, "image_added", image);
    sendJson(res, 201, image);
  }

  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    let handled;
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      sendJson(res, 200, { status: "ok" });
      return;
    } else if (path === "/api/rooms" && req.method === "POST") {
      handled = createRoom(req, res);
    } else {
      const match = req.method === "POST" ? uploadPath.exec(path) : null;
      if (match === null) {
        sendError(res, 404, "not_found", "Not found.");
        return;
      }
      handled = uploadImage(req, res, match[1]);
    }
    handled.catch((error) => {
      console.error("request failed:", error);
      if (!res.headersSent) {
        sendError(res, 500, "internal", "Internal error.");
      } else {
        res.destroy();
      }
    });
  };
}

// ---- start ----------------------------------------------------------------------------------------

async function main() {
  const port = listenPort();
  const redisUrl = process.env.REDIS_URL;
  const prefix = process.env.IMAGESHARK_REDIS_PREFIX || "imageshark";

  const redisClients = [];
  let rooms;
  if (redisUrl) {
    const pubClient = createClient({ url: redisUrl });
    const subClient = pubClient.duplicate();
    for (const client of [pubClient, subClient]) {
      client.on("error", (error) => console.error("redis:", error.message));
    }
    await Promise.all([pubClient.connect(), subClient.connect()]);
    redisClients.push(pubClient, subClient);
    rooms = new RedisRooms(pubClient, prefix);
  } else {
    rooms = new MemoryRooms();
  }

  // The API handler goes on before Socket.IO attaches: engine.io then takes /socket.io/ and
  // hands every other request to it.
  let io = null;
  const httpServer = createServer(
    httpHandler(rooms, (token, event, payload) => io.to(token).emit(event, payload)),
  );
  io = new Server(httpServer, {
    path: "/socket.io/",
    serveClient: false,
    transports: ["websocket", "polling"],
    perMessageDeflate: false,
    httpCompression: false,
    pingInterval: 25000,
    pingTimeout: 20000,
  });
  if (redisClients.length) {
    // A broadcast reaches this replica's sockets directly and the others' through Redis.
    io.adapter(createAdapter(redisClients[0], redisClients[1], { key: `${prefix}:socket.io` }));
  }

  // Admission: the handshake's auth.token must name a room; the socket joins it.
  io.use((socket, next) => {
    const token = socket.handshake.auth?.token;
    if (typeof token !== "string") {
      next(new Error("room_not_found"));
      return;
    }
    rooms.roomExists(token).then(
      (exists) => next(exists ? undefined : new Error("room_not_found")),
      (error) => {
        console.error("room lookup failed:", error);
        next(new Error("service_unavailable"));
      },
    );
  });
  io.on("connection", (socket) => {
    socket.join(socket.handshake.auth.token);
  });

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    const forced = setTimeout(() => process.exit(1), 10000);
    forced.unref();
    try {
      // Closes every Socket.IO connection and the HTTP server.
      await new Promise((resolve) => io.close(() => resolve()));
      await Promise.all(redisClients.map((client) => client.close().catch(() => {})));
    } finally {
      console.log(`stopped (${signal})`);
      process.exit(0);
    }
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, "127.0.0.1", resolve);
  });
  console.log(
    `node reference listening on http://127.0.0.1:${port} ` +
      `(socket.io, ${redisUrl ? "redis adapter" : "in memory"})`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
