// Silent refresh in a real browser, hybrid mode, cookie transport, 2-second access tokens:
// two tabs idle through many expiries with one refresh per token and no reuse detection; a
// 401 in two tabs at once costs one refresh; a failing refresh ends in one `signed-out`
// after a capped number of attempts, never a loop; the server back, logging in works.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import {
  PASSWORD,
  cleanup,
  logInThroughPage,
  newContext,
  openPage,
  refreshCookie,
  signUpThroughPage,
  sleep,
  startProxy,
  startTessera,
} from "./harness.mjs";

after(cleanup);

const SHORT = { TESSERA_AUTH__MODE: "hybrid", TESSERA_JWT__ACCESS_TTL: "2s", TESSERA_REFRESH__REUSE_GRACE: "1s" };

/** The status `GET /v1/me` gets from inside the page, with the page's cookies. */
const meStatus = (page) => page.evaluate(async () => (await fetch("/v1/me")).status);

test("two tabs idle through at least 5 expiries: one refresh per token, no reuse, both signed in", async () => {
  const tessera = await startTessera(SHORT);
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const first = await openPage(ctx);
  await signUpThroughPage(first, proxy.origin, "idle");
  const second = await openPage(ctx);
  await second.goto(proxy.origin + "/account");
  await second.getByText("Signed in as idle").waitFor();

  const start = Date.now();
  const from = proxy.requests.length;
  await sleep(12_000); // six lifetimes of a 2 s access token
  const window = proxy.requests.slice(from);
  const refreshes = window.filter((r) => r.method == "POST" && r.path == "/v1/refresh");

  assert.ok(refreshes.length >= 5, `at least 5 refreshes in 12 s, got ${refreshes.length}`);
  assert.ok(refreshes.every((r) => r.status == 200), "every refresh succeeded: " + refreshes.map((r) => r.status));
  // A chain, never a fork: each refresh presents the token the previous one issued, so every
  // access-token lifetime was refreshed exactly once, by one tab.
  for (let i = 1; i < refreshes.length; i++) {
    assert.equal(refreshCookie(refreshes[i].cookie), refreshCookie(refreshes[i - 1].setCookie), `refresh ${i} presents its predecessor's successor`);
  }
  const presented = refreshes.map((r) => refreshCookie(r.cookie));
  assert.equal(new Set(presented).size, refreshes.length, "no refresh token presented twice");
  // And not more often than the tokens need: at most one per second with 2 s tokens.
  assert.ok(refreshes.length <= (Date.now() - start) / 1000 + 1, `${refreshes.length} refreshes is too many`);
  assert.deepEqual(window.filter((r) => r.status == 401).map((r) => r.path), [], "no request was refused meanwhile");

  assert.deepEqual(tessera.audit("refresh_reuse_detected"), [], "no reuse detection in the audit log");
  assert.ok(tessera.audit("login_succeeded").length >= 1, "the audit log is being read");
  for (const page of [first, second]) {
    assert.equal(page.url(), proxy.origin + "/account");
    assert.equal(await meStatus(page), 200);
    assert.deepEqual(page.problems, []);
  }

  // The refreshing tab closes: the other takes over and stays signed in.
  const before = proxy.count("POST", "/v1/refresh").length;
  await first.close();
  await sleep(4_000);
  assert.ok(proxy.count("POST", "/v1/refresh").length >= before + 2, "the remaining tab refreshes");
  assert.equal(await meStatus(second), 200);
  assert.deepEqual(tessera.audit("refresh_reuse_detected"), []);
  await ctx.close();
});

test("a 401 in two tabs at once costs one refresh", async () => {
  const tessera = await startTessera(SHORT);
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const first = await openPage(ctx);
  await signUpThroughPage(first, proxy.origin, "racer");
  const tabs = [first, await openPage(ctx)];
  for (const tab of tabs) await tab.goto(proxy.origin + "/signup"); // a page that does not refresh by itself
  // Clients that never refresh ahead of time (a negative margin), so both see the 401.
  for (const tab of tabs) {
    await tab.evaluate(async () => {
      const { Tessera } = await import("/tessera.js");
      window.t = new Tessera({ name: "racers", refreshMargin: -600_000 });
      await window.t.start();
    });
  }
  await sleep(2_500); // the access cookie has expired
  const before = proxy.count("POST", "/v1/refresh").length;
  const statuses = await Promise.all(
    tabs.map((tab) => tab.evaluate(() => Promise.all([1, 2, 3].map(async () => (await window.t.fetch("/v1/sessions")).status)))),
  );
  assert.deepEqual(statuses, [[200, 200, 200], [200, 200, 200]]);
  assert.equal(proxy.count("POST", "/v1/refresh").length - before, 1, "six refused requests in two tabs, one refresh");
  assert.deepEqual(tessera.audit("refresh_reuse_detected"), []);
  await ctx.close();
});

/**
 * A client of our own in a page loaded while the server was up (/signup, whose own client
 * never refreshes by itself), signed in as a new user; `window.events` records what it emits.
 */
async function signedInClient(page, origin, username) {
  await page.goto(origin + "/signup");
  await page.evaluate(
    async ([username, password]) => {
      const { Tessera } = await import("/tessera.js");
      window.events = [];
      window.t = new Tessera({ name: "probe" });
      t.on("signed-out", (d) => events.push({ reason: d.reason, code: d.error?.code }));
      t.on("refreshed", () => events.push({ reason: "refreshed" }));
      await t.signUp(username, password);
      await t.logIn(username, password);
    },
    [username, PASSWORD],
  );
}

async function resumesThenLogsIn(page, origin, username) {
  await page.goto(origin + "/login?return_to=%2Faccount");
  await page.waitForURL(origin + "/account");
  await page.getByText("Signed in as " + username).waitFor();
  await page.getByRole("button", { name: "Log out", exact: true }).click();
  await page.waitForURL(/\/login/);
  await logInThroughPage(page, origin, username, PASSWORD, "?return_to=%2Faccount");
  await page.waitForURL(origin + "/account");
  await page.getByText("Signed in as " + username).waitFor();
}

const signedOut = (page) => page.waitForFunction(() => events.some((e) => e.reason != "refreshed"), null, { timeout: 15_000 });

test("refresh answering 503: capped attempts, one signed-out, no loop", async () => {
  const tessera = await startTessera(SHORT);
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const page = await openPage(ctx);
  await signedInClient(page, proxy.origin, "unlucky");
  proxy.fault = { path: "/v1/refresh", mode: 503 };
  await signedOut(page);
  assert.equal(proxy.refused.length, 4, "one attempt and 3 retries");
  const gaps = proxy.refused.slice(1).map((r, i) => r.at - proxy.refused[i].at);
  assert.ok(gaps.every((g, i) => g >= 450 * 2 ** i), "backoff doubles: " + gaps);
  await sleep(5_000);
  assert.equal(proxy.refused.length, 4, "no loop");
  assert.deepEqual(await page.evaluate(() => events.filter((e) => e.reason != "refreshed")), [{ reason: "failed", code: "unavailable" }]);
  assert.deepEqual(page.problems.filter((m) => !/status of 503/.test(m)), [], "no unhandled rejection");

  // Refresh works again. The server never refused the refresh token, so the session resumes
  // on the next page; logging out and in works too.
  proxy.fault = null;
  await resumesThenLogsIn(page, proxy.origin, "unlucky");
  const n = proxy.count("POST", "/v1/refresh").length;
  await sleep(2_500);
  assert.ok(proxy.count("POST", "/v1/refresh").length > n, "refreshing again");
  assert.equal(await meStatus(page), 200);
  await ctx.close();
});

test("server stopped: capped attempts, signed-out; server back: logging in works", async () => {
  let tessera = await startTessera(SHORT);
  const proxy = await startProxy(tessera);
  const ctx = await newContext();
  const page = await openPage(ctx);
  await signedInClient(page, proxy.origin, "stranded");
  const before = proxy.count("POST", "/v1/refresh").length;
  await tessera.stop();
  await signedOut(page);
  const attempts = proxy.count("POST", "/v1/refresh").length - before;
  assert.equal(attempts, 4, "one attempt and 3 retries");
  await sleep(5_000);
  assert.equal(proxy.count("POST", "/v1/refresh").length - before, attempts, "no loop");
  assert.deepEqual(await page.evaluate(() => events.filter((e) => e.reason != "refreshed")), [{ reason: "failed", code: "network" }]);
  assert.deepEqual(page.problems.filter((m) => !/ERR_EMPTY_RESPONSE/.test(m)), [], "no unhandled rejection");

  // The same store, a new process.
  tessera = await startTessera(SHORT, tessera.dir);
  proxy.target = tessera;
  await resumesThenLogsIn(page, proxy.origin, "stranded");
  assert.equal(await meStatus(page), 200);
  await ctx.close();
});
