// The browser tests' harness: a real tessera process (the binary cargo built, named by
// TESSERA_BIN), a counting proxy in front of it that can also play an outage, a second
// origin for cross-site attacks, and Debian's Chromium driven by playwright-core.
//
// Why a proxy: it gives the browser one origin that survives a tessera restart, counts every
// request that reaches the server (POST /v1/refresh above all), and can answer 503 or cut
// connections on demand — without any test hook inside tessera.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SHOTS = process.env.TESSERA_SCREENSHOTS ?? join(ROOT, "test-output");
const BIN = process.env.TESSERA_BIN;
const CHROMIUM = process.env.TESSERA_CHROMIUM ?? "/usr/bin/chromium";
export const PASSWORD = "correct horse battery staple";

if (!BIN || !existsSync(BIN)) {
  throw new Error(`TESSERA_BIN must name the tessera binary (got ${BIN}); run these tests through \`cargo test --test browser\``);
}
if (!existsSync(CHROMIUM)) {
  throw new Error(`no Chromium at ${CHROMIUM}: install Debian's \`chromium\` package (scripts/test does) or set TESSERA_CHROMIUM`);
}

const cleanups = [];
/** Stops every process and server the harness started. */
export async function cleanup() {
  while (cleanups.length) await cleanups.pop()().catch(() => {});
}

/**
 * A tessera server. `env` holds TESSERA_* settings; the data directory is fresh (or `dir`,
 * to restart on the same store). `log` collects stderr, where audit events appear as lines
 * with target `audit`.
 */
export async function startTessera(env = {}, dir) {
  dir ??= mkdtempSync(join(tmpdir(), "tessera-browser-"));
  mkdirSync(dir, { recursive: true });
  const child = spawn(BIN, ["serve", "--listen", "127.0.0.1:0"], {
    cwd: dir,
    env: { PATH: process.env.PATH, RUST_LOG: "info", NO_COLOR: "1", TESSERA_STORE__DATA_DIR: join(dir, "data"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const server = { child, dir, log: "", port: 0, exited: false };
  child.stderr.setEncoding("utf8").on("data", (d) => (server.log += d));
  child.on("exit", () => (server.exited = true));
  server.port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("tessera did not start in 30 s:\n" + server.log)), 30_000);
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code) => reject(new Error(`tessera exited with ${code}:\n${server.log}`)));
  });
  server.stop = () => stopProcess(child);
  /** The audit log lines (target `audit`) of one kind of event. */
  server.audit = (event) => server.log.split("\n").filter((l) => / audit: /.test(l) && l.includes(`event="${event}"`));
  cleanups.push(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
  });
}

/**
 * A reverse proxy on its own port in front of `server` (changeable with `proxy.target`).
 * `proxy.requests` lists what reached tessera; `proxy.fault = {path, mode}` makes matching
 * requests fail: mode 503 answers 503, mode "drop" cuts the connection (a network error).
 */
export async function startProxy(server) {
  const proxy = { target: server, requests: [], fault: null, refused: [] };
  const http = createServer((req, res) => {
    const path = req.url.split("?")[0];
    const fault = proxy.fault && (!proxy.fault.path || proxy.fault.path == path) ? proxy.fault : null;
    if (fault) {
      proxy.refused.push({ method: req.method, path, at: Date.now() });
      if (fault.mode == "drop") return req.socket.destroy();
      res.writeHead(503, { "content-type": "application/problem+json", connection: "close" });
      return res.end(JSON.stringify({ type: "urn:tessera:problem:unavailable", title: "Service unavailable", status: 503, detail: "injected by the test proxy" }));
    }
    const entry = { method: req.method, path, at: Date.now(), headers: req.headers, cookie: req.headers.cookie ?? "", status: 0, setCookie: [] };
    proxy.requests.push(entry);
    const upstream = httpRequest(
      { host: "127.0.0.1", port: proxy.target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        entry.status = up.statusCode;
        entry.setCookie = up.headers["set-cookie"] ?? [];
        // One request per connection: Chromium silently resends a request whose reused
        // keep-alive connection dies, which would double-count attempts in an outage.
        const headers = up.rawHeaders.filter((_, i, all) => !/^(connection|keep-alive)$/i.test(all[i - (i % 2)]));
        res.writeHead(up.statusCode, [...headers, "Connection", "close"]);
        up.pipe(res);
      },
    );
    upstream.on("error", () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  proxy.port = http.address().port;
  proxy.origin = `http://127.0.0.1:${proxy.port}`;
  /** Requests that reached tessera with this method and path. */
  proxy.count = (method, path) => proxy.requests.filter((r) => r.method == method && r.path == path);
  cleanups.push(() => new Promise((r) => { http.closeAllConnections(); http.close(r); }));
  return proxy;
}

/** A static server for a page on another origin: `files` maps paths to [type, body]. */
export async function startStatic(files, host = "127.0.0.1") {
  const http = createServer((req, res) => {
    const file = files[req.url.split("?")[0]];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": file[0] });
    res.end(file[1]);
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => { http.closeAllConnections(); http.close(r); }));
  return `http://${host}:${http.address().port}`;
}

let browser;
/** Headless Debian Chromium (one per test file), with a fresh profile. */
export async function launch() {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  cleanups.push(async () => {
    await browser?.close();
    browser = undefined;
  });
  return browser;
}

/** A fresh browser context (its own cookies and storage, like a new browser profile). */
export async function newContext() {
  const b = await launch();
  return b.newContext({ viewport: { width: 900, height: 760 }, locale: "en-US", timezoneId: "UTC" });
}

/**
 * Opens a page and records what a person would call a problem: uncaught exceptions, unhandled
 * promise rejections, and console errors. `page.problems` lists them.
 */
export async function openPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("uncaught: " + e.message));
  page.on("console", (m) => {
    if (m.type() == "error" || m.type() == "warning") page.problems.push(`console.${m.type()}: ${m.text()}`);
  });
  return page;
}

/** Every form control on the page that has no accessible label. */
export function unlabelledInputs(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => el.type != "hidden")
      .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")))
      .map((el) => el.outerHTML),
  );
}

export function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  return page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: true });
}

/** Signs up through /signup; the page then lands on /account. */
export async function signUpThroughPage(page, origin, username, password = PASSWORD) {
  await page.goto(origin + "/signup");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Repeat the password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(origin + "/account");
  await page.getByText("Signed in as " + username).waitFor();
}

/** Logs in through /login (optionally with a query) and waits to leave the page. */
export async function logInThroughPage(page, origin, username, password = PASSWORD, query = "") {
  await page.goto(origin + "/login" + query);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Writes a file under the screenshot directory (the test run's record). */
export function record(name, text) {
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(SHOTS, name), text);
}

/** The refresh token in a Cookie header or a list of Set-Cookie values (either cookie name). */
export function refreshCookie(cookies) {
  const all = Array.isArray(cookies) ? cookies.map((c) => c.split(";")[0]) : cookies.split(/;\s*/);
  const found = all.map((c) => c.match(/^__(?:Secure|Host)-tessera-refresh=(.+)$/)).find((m) => m && m[1]);
  return found?.[1];
}
