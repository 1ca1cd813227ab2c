// A single-page app behind one origin with tessera, as tessera recommends: this server serves
// the app (public/), forwards tessera's paths (/v1/, /.well-known/, /tessera.js) to tessera,
// and has one protected endpoint of its own, GET /api/hello, which asks tessera's /v1/me who
// the caller is. No dependencies: `node server.mjs`.
//
//   TESSERA_URL  where tessera listens (default http://127.0.0.1:8080)
//   PORT         where this server listens on 127.0.0.1 (default 3000; 0 picks a free port)

import { createServer, request } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

const TESSERA = new URL(process.env.TESSERA_URL ?? "http://127.0.0.1:8080");
const PUBLIC = fileURLToPath(new URL("./public/", import.meta.url));
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };
const SECURITY = {
  "content-security-policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** Forwards the request to tessera unchanged (Host included, so cookies and Origin checks
 *  see this origin) and streams the answer back. */
function forward(req, res) {
  const up = request({ host: TESSERA.hostname, port: TESSERA.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.rawHeaders);
    answer.pipe(res);
  });
  up.on("error", () => problem(res, 502, "tessera cannot be reached"));
  req.pipe(up);
}

/** GET /api/hello: the caller's own credentials (cookies or Authorization) go to tessera's
 *  /v1/me; its answer decides. */
function hello(req, res) {
  const headers = {};
  for (const name of ["cookie", "authorization", "tessera-transport"]) if (req.headers[name]) headers[name] = req.headers[name];
  const up = request({ host: TESSERA.hostname, port: TESSERA.port, method: "GET", path: "/v1/me", headers }, (answer) => {
    let body = "";
    answer.setEncoding("utf8").on("data", (d) => (body += d));
    answer.on("end", () => {
      if (answer.statusCode != 200) return problem(res, answer.statusCode == 401 ? 401 : 503, "tessera said " + answer.statusCode);
      const me = JSON.parse(body);
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ message: `Hello, ${me.user.username}!`, mode: me.auth.mode, at: new Date().toISOString() }));
    });
  });
  up.on("error", () => problem(res, 503, "tessera cannot be reached"));
  up.end();
}

function problem(res, status, detail) {
  if (res.headersSent) return res.destroy();
  res.writeHead(status, { "content-type": "application/problem+json" });
  res.end(JSON.stringify({ type: "about:blank", title: status == 401 ? "Unauthorized" : "Unavailable", status, detail }));
}

async function file(req, res) {
  const path = req.url.split("?")[0];
  const name = path == "/" ? "index.html" : path.slice(1);
  if (!/^[\w-]+\.(html|js|css)$/.test(name)) return problem(res, 404, "no such file");
  try {
    const body = await readFile(join(PUBLIC, name));
    res.writeHead(200, { "content-type": TYPES[extname(name)], "cache-control": "no-cache", ...SECURITY });
    res.end(body);
  } catch {
    problem(res, 404, "no such file");
  }
}

const server = createServer((req, res) => {
  if (/^\/(v1\/|\.well-known\/|tessera\.js)/.test(req.url)) return forward(req, res);
  if (req.url.split("?")[0] == "/api/hello" && req.method == "GET") return hello(req, res);
  if (req.url == "/favicon.ico") return res.writeHead(204).end();
  if (req.method == "GET") return file(req, res);
  problem(res, 405, "method not allowed");
});
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`spa-demo listening on http://127.0.0.1:${server.address().port} (tessera at ${TESSERA.origin})`);
});
